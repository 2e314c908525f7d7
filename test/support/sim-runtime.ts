// An UpgradeRuntime backed by a SimPair: the reconciler's tests run whole
// upgrades against it in milliseconds, and count every side effect so a
// repeated one shows.
import type { Step } from '../../src/core/actions.js';
import type { StepOutcome } from '../../src/core/journal.js';
import type { UpgradeRuntime } from '../../src/reconciler/reconciler.js';
import { type Fault, SimPair } from './sim-pair.js';

export class SimRuntime implements UpgradeRuntime {
  readonly fromVersion = '1.0.0';
  readonly targetVersion: string;
  readonly sim: SimPair;
  /** "STEP@node" -> how many times it changed something. */
  readonly effects = new Map<string, number>();
  /** restoreDatabase as the reconciler passed it to each RESTORE, in order. */
  readonly restores: { node: string | null; restoreDatabase: boolean }[] = [];
  /** What a step that changed the pair says it did (the executor's detail). */
  describe: (step: Step, node: string | null) => string = (step, node) =>
    `${step}${node ? ` on ${node}` : ''} changed the pair`;
  /** Faults to inject, by execution number. */
  faults: (Fault | null)[] = [];
  #executions = 0;
  closed = false;

  constructor(targetVersion = '2.0.0', broken = false) {
    this.targetVersion = targetVersion;
    this.sim = new SimPair(this.fromVersion, broken ? new Set([targetVersion]) : new Set());
  }

  async observe() {
    this.sim.tick();
    return this.sim.observe();
  }

  async execute(
    step: Step,
    node: string | null,
    _ctx: unknown,
    restoreDatabase: boolean,
  ): Promise<StepOutcome> {
    if (step === 'RESTORE') this.restores.push({ node, restoreDatabase });
    const before = JSON.stringify(this.sim);
    const fault = this.faults[this.#executions++] ?? null;
    const outcome = this.sim.apply(step, node, this.targetVersion, fault);
    if (JSON.stringify(this.sim) !== before) {
      const key = `${step}${node ? `@${node}` : ''}`;
      this.effects.set(key, (this.effects.get(key) ?? 0) + 1);
      if (outcome.ok) return { ok: true, detail: this.describe(step, node) };
    }
    return outcome;
  }

  async downtime() {
    return { httpLongestMs: 0, httpTotalMs: 0 };
  }

  async close() {
    this.closed = true;
  }
}
