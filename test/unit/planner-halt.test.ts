// Halting instead of looping (issue 12): split brain at any phase, step run
// budgets, and waits that would last forever. Each scenario that looped
// before fails here on a bound (a count of steps), never on a timeout.
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Action, Step } from '../../src/core/actions.js';
import {
  emptyJournal,
  enterPhase,
  recordStep,
  recordWait,
  runsOf,
} from '../../src/core/journal.js';
import { initialContext } from '../../src/core/machine.js';
import { isTerminal } from '../../src/core/phases.js';
import {
  plan,
  SWITCHOVER_RUN_BUDGET,
  splitBrain,
  stepRunBudget,
  waitBoundMs,
} from '../../src/core/planner.js';
import { FROM, runSim, TO } from '../support/run-sim.js';
import { type Fault, SimPair } from '../support/sim-pair.js';

const base = { autoRollback: true, brokenTarget: false, faults: [] };

/** The round at which a clean upgrade enters a phase (the event that leads there, plus one). */
function roundEntering(event: string): number {
  const clean = runSim(base);
  const i = clean.trace.findIndex((a) => a.kind === 'event' && a.event.type === event);
  if (i < 0) throw new Error(`a clean upgrade never sent ${event}`);
  return i + 1;
}

const faultsAt = (round: number, f: Fault): (Fault | null)[] => {
  const faults: (Fault | null)[] = new Array(round).fill(null);
  faults[round] = f;
  return faults;
};

const count = (trace: readonly Action[], s: Step, node?: string) =>
  trace.filter((a) => a.kind === 'step' && a.step === s && (node === undefined || a.node === node))
    .length;

const halts = (trace: readonly Action[]) =>
  trace.filter((a): a is Extract<Action, { kind: 'halt' }> => a.kind === 'halt');

describe('split brain', () => {
  test('in ROLLBACK, lasting: no step at all (the measured SWITCHOVER/CHECK_HEALTH loop), a halt naming both nodes, then the rollback timeout ends it', () => {
    // As measured in the lab: node-b upgraded in UPGRADE_BACKUP, then both
    // nodes claim the VIP and the upgrade goes to ROLLBACK.
    const at = roundEntering('BACKUP_VERIFIED') + 4;
    const r = runSim({
      ...base,
      rollbackAtRound: at,
      faults: faultsAt(at, { kind: 'split-brain', rounds: 100_000 }),
    });
    expect(r.phases).toContain('ROLLBACK');
    // The bound: before, SWITCHOVER and CHECK_HEALTH on one node repeated
    // until the rollback timed out (hundreds of times).
    expect(count(r.trace, 'SWITCHOVER')).toBe(0);
    expect(count(r.trace, 'CHECK_HEALTH', 'node-a')).toBe(0);
    expect(r.stepsInSplitBrain).toEqual([]);
    const h = halts(r.trace);
    expect(h.length).toBeGreaterThan(0);
    expect(h[0]).toMatchObject({ code: 'SplitBrain' });
    expect(h[0]!.cause).toMatch(/node-a and node-b hold the VIP/);
    expect(h[0]!.todo).toMatch(/resumes by itself/);
    // A halt still ends somewhere sane: the rollback's own time limit.
    expect(r.finished).toBe(true);
    expect(r.phases.at(-1)).toBe('TIMEOUT');
  });

  test('in UPGRADE_BACKUP, for a while: halts, does nothing, resumes by itself and completes with one VIP holder', () => {
    const at = roundEntering('BACKUP_VERIFIED') + 2;
    const r = runSim({ ...base, faults: faultsAt(at, { kind: 'split-brain', rounds: 30 }) });
    expect(r.stepsInSplitBrain).toEqual([]);
    expect(halts(r.trace).length).toBeGreaterThanOrEqual(25);
    expect(r.phases.at(-1)).toBe('COMPLETE');
    expect(r.violations).toEqual([]);
    expect(r.sim.nodes.filter((n) => n.holdsVip).map((n) => n.name)).toEqual(['node-b']);
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual([TO, TO]);
  });

  test('two primaries are a split brain too, named', () => {
    const sim = new SimPair(FROM);
    const o = sim.observe();
    const both = { ...o, nodes: [o.nodes[0], { ...o.nodes[1], dbRole: 'primary' }] as const };
    expect(splitBrain(both)).toBe('split brain: both node-a and node-b run a primary database');
    expect(splitBrain(o)).toBeNull();
  });

  test('a keepalived that died (its VIP left behind) is started again in a split brain; nothing else runs', () => {
    const sim = new SimPair(FROM);
    const o = sim.observe();
    // a's keepalived was SIGKILLed: the VIP stays on a's interface and b takes it too.
    const observed = {
      ...o,
      nodes: [
        { ...o.nodes[0], holdsVip: true, keepalivedRunning: false },
        { ...o.nodes[1], holdsVip: true },
      ] as const,
    };
    const input = (phase: 'UPGRADE_BACKUP' | 'ROLLBACK') => ({
      ctx: {
        ...initialContext({ masterNode: 'node-a', backupNode: 'node-b' }),
        phase,
        backupVerified: true,
      },
      request: { fromVersion: FROM, targetVersion: TO },
      settings: BUILT_IN_DEFAULTS,
      observed,
      journal: { ...emptyJournal(0), upgradeStartedAtMs: 0 },
      nowMs: 1000,
    });
    expect(plan(input('UPGRADE_BACKUP'))).toMatchObject({
      kind: 'step',
      step: 'START_KEEPALIVED',
      node: 'node-a',
    });
    // Where nothing is brought back (ROLLBACK), the halt names the dead keepalived.
    const h = plan(input('ROLLBACK'));
    expect(h).toMatchObject({ kind: 'halt', code: 'SplitBrain' });
    expect((h as { cause: string }).cause).toMatch(/keepalived on node-a is not running/);
    // Both keepalived alive: a plain split brain halts, no step.
    const alive = {
      ...input('UPGRADE_BACKUP'),
      observed: {
        ...observed,
        nodes: [{ ...observed.nodes[0], keepalivedRunning: true }, observed.nodes[1]] as const,
      },
    };
    expect(plan(alive)).toMatchObject({ kind: 'halt', code: 'SplitBrain' });
  });

  test("a person's cancel is still taken while halted", () => {
    const sim = new SimPair(FROM);
    sim.inject({ kind: 'split-brain', rounds: 5 });
    const ctx = {
      ...initialContext({ masterNode: 'node-a', backupNode: 'node-b' }),
      phase: 'PREPARE' as const,
    };
    const journal = { ...emptyJournal(0), upgradeStartedAtMs: 0 };
    const input = {
      ctx,
      request: { fromVersion: FROM, targetVersion: TO },
      settings: BUILT_IN_DEFAULTS,
      observed: sim.observe(),
      nowMs: 1000,
    };
    expect(plan({ ...input, journal }).kind).toBe('halt');
    expect(plan({ ...input, journal: { ...journal, cancelRequested: 'stop' } })).toMatchObject({
      kind: 'event',
      event: { type: 'CANCEL_REQUESTED' },
    });
  });
});

describe('step run budgets (runs, not only failures)', () => {
  test('a SWITCHOVER that succeeds without effect in ROLLBACK stops at its budget and ends FAILED (the old node serves)', () => {
    const at = roundEntering('VIP_MOVED') + 2;
    const faults = faultsAt(at, { kind: 'no-effect', step: 'SWITCHOVER' });
    const r = runSim({ ...base, rollbackAtRound: at, faults });
    expect(r.phases).toContain('ROLLBACK');
    // Before: SWITCHOVER on node-a and CHECK_HEALTH on node-a alternated
    // until the rollback timed out.
    expect(count(r.trace, 'SWITCHOVER', 'node-a')).toBeLessThanOrEqual(SWITCHOVER_RUN_BUDGET);
    expect(count(r.trace, 'CHECK_HEALTH', 'node-a')).toBeLessThanOrEqual(
      stepRunBudget('CHECK_HEALTH', BUILT_IN_DEFAULTS) + 2 * 3, // plus UPGRADE_MASTER's and VERIFY's
    );
    expect(r.finished).toBe(true);
    expect(r.phases.at(-1)).toBe('FAILED');
    const failed = r.trace.find((a) => a.kind === 'event' && a.event.type === 'ROLLBACK_FAILED');
    expect(JSON.stringify(failed)).toMatch(
      /(SWITCHOVER|CHECK_HEALTH) on node-a ran \d+ times in ROLLBACK \(its budget\)/,
    );
    expect(r.violations).toEqual([]);
  });

  test('outside a rollback a spent budget is STEP_FAILED (→ ROLLBACK)', () => {
    const at = roundEntering('BACKUP_VERIFIED') + 1;
    const r = runSim({
      ...base,
      faults: faultsAt(at, { kind: 'no-effect', step: 'START_SERVICES' }),
    });
    const first = r.trace.find((a) => a.kind === 'event' && a.event.type === 'STEP_FAILED');
    expect(JSON.stringify(first)).toMatch(
      /START_SERVICES on node-b ran \d+ times in UPGRADE_BACKUP/,
    );
    expect(r.phases).toContain('ROLLBACK');
    expect(r.finished).toBe(true);
    expect(isTerminal(r.ctx.phase)).toBe(true);
    // Each phase allows the budget, no more.
    expect(count(r.trace, 'START_SERVICES', 'node-b')).toBeLessThanOrEqual(
      2 * stepRunBudget('START_SERVICES', BUILT_IN_DEFAULTS),
    );
  });

  test('runs are counted per step and node, kept in the stored journal, and start again in a new phase', () => {
    let j = emptyJournal(0);
    for (let i = 0; i < 3; i++) j = recordStep(j, 'CHECK_HEALTH', 'a', { ok: true });
    j = recordStep(j, 'CHECK_HEALTH', 'a', { ok: false, kind: 'transient', message: 'x' });
    j = recordStep(j, 'CHECK_HEALTH', 'b', { ok: true });
    const stored = JSON.parse(JSON.stringify(j)); // as the store keeps it (jsonb)
    expect(runsOf(stored, 'CHECK_HEALTH', 'a')).toBe(4);
    expect(runsOf(stored, 'CHECK_HEALTH', 'b')).toBe(1);
    expect(runsOf(enterPhase(stored, 5), 'CHECK_HEALTH', 'a')).toBe(0);
  });

  test('CHECK_HEALTH allows a node to be proven more than once in a phase', () => {
    const s = BUILT_IN_DEFAULTS;
    expect(stepRunBudget('CHECK_HEALTH', s)).toBeGreaterThanOrEqual(
      2 * s.healthCheckConsecutivePasses + 1,
    );
  });
});

describe('a wait that would last forever', () => {
  test('VERIFY waiting for a node that fails /health with nothing to bring back becomes a halt naming what is missing, after the bound', () => {
    // (A node whose services died is brought back first: test/unit/repair.test.ts.)
    const at = roundEntering('MASTER_NODE_HEALTHY') + 5; // in VERIFY, its steps done
    const r = runSim({ ...base, faults: faultsAt(at, { kind: 'sick', node: 1 }) });
    const h = halts(r.trace);
    expect(h.length).toBeGreaterThan(0);
    expect(h[0]).toMatchObject({ code: 'WaitBoundReached' });
    expect(h[0]!.cause).toMatch(/waiting for bothNodesHealthy/);
    // The halt came once the bound passed (5 s a round in the sim), not at the timeout.
    const firstHalt = r.trace.indexOf(h[0]!);
    const waitsBefore = r.trace.slice(0, firstHalt).filter((a) => a.kind === 'wait').length;
    expect(waitsBefore * 5000).toBeLessThanOrEqual(waitBoundMs(BUILT_IN_DEFAULTS) + 10_000);
    expect(r.finished).toBe(true);
  });

  test('the wait clock starts again when the wait changes or a step runs', () => {
    let j = recordWait(emptyJournal(0), 'waiting for x', 1000);
    j = recordWait(j, 'waiting for x', 9000);
    expect(j.waiting).toEqual({ reason: 'waiting for x', sinceMs: 1000 });
    expect(recordWait(j, 'waiting for y', 9000).waiting?.sinceMs).toBe(9000);
    expect(recordStep(j, 'CHECK_CONFIG', null, { ok: true }).waiting).toBeNull();
  });
});
