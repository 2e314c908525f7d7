// Drives the planner and the state machine against a SimPair the way the
// reconcile loop drives them against a real pair: observe, plan, act,
// record, repeat. Checks the safety invariants at every step and returns
// the whole trace.
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from '../../src/config/settings.js';
import type { Action } from '../../src/core/actions.js';
import {
  emptyJournal,
  enterPhase,
  type JournalFacts,
  recordSight,
  recordStep,
  recordWait,
} from '../../src/core/journal.js';
import { initialContext, type UpgradeContext, upgradeMachine } from '../../src/core/machine.js';
import { isTerminal } from '../../src/core/phases.js';
import { plan } from '../../src/core/planner.js';
import { type Fault, SimPair } from './sim-pair.js';

export interface SimScenario {
  readonly autoRollback: boolean;
  readonly brokenTarget: boolean;
  /** Fault injected at round i (null = none). Rounds past the end have none. */
  readonly faults: readonly (Fault | null)[];
  readonly cancelAtRound?: number | undefined;
  readonly rollbackAtRound?: number | undefined;
  readonly settings?: Partial<UpgradeSettings>;
  /**
   * Stop before planning the first round where this holds (the journal
   * already has the round's sight): the result is the upgrade as it stood,
   * e.g. for deciding what an operator that cannot connect would do then.
   */
  readonly stopWhen?: (ctx: UpgradeContext, journal: JournalFacts, sim: SimPair) => boolean;
  /** The clock at round 0 (default 1_000_000). */
  readonly startMs?: number;
}

export interface SimResult {
  readonly ctx: UpgradeContext;
  readonly journal: JournalFacts;
  readonly sim: SimPair;
  readonly trace: Action[];
  readonly violations: string[];
  readonly phases: string[];
  readonly rolledBack: boolean;
  readonly rounds: number;
  readonly finished: boolean;
  /** Rounds the planner halted in. */
  readonly halts: readonly number[];
  /** Steps taken (outside a terminal phase) while both nodes claimed the VIP. */
  readonly stepsInSplitBrain: readonly string[];
  /** The clock when the run stopped. */
  readonly nowMs: number;
  /** Stopped by stopWhen. */
  readonly stopped: boolean;
}

export const FROM = '1.0.0';
export const TO = '2.0.0';

export function runSim(s: SimScenario, maxRounds = 3000): SimResult {
  const settings: UpgradeSettings = {
    ...BUILT_IN_DEFAULTS,
    autoRollback: s.autoRollback,
    ...s.settings,
  };
  const sim = new SimPair(FROM, s.brokenTarget ? new Set([TO]) : new Set());
  let ctx = initialContext({
    backupNode: 'node-b',
    masterNode: 'node-a',
    autoRollback: s.autoRollback,
    requiredHealthPasses: settings.healthCheckConsecutivePasses,
  });
  let now = s.startMs ?? 1_000_000;
  let j = emptyJournal(now);
  const trace: Action[] = [];
  const violations: string[] = [];
  const phases: string[] = [ctx.phase];
  const halts: number[] = [];
  const stepsInSplitBrain: string[] = [];
  let rolledBack = false;
  // After a crash the pair may be down through no action of the planner's.
  let crashed = false;
  for (let round = 0; round < maxRounds; round++) {
    sim.tick();
    const fault = s.faults[round] ?? null;
    const selfInflicted = [
      'unreachable',
      'lag',
      'stall',
      'crash',
      'database-down',
      'keepalived-down',
      'split-brain',
      'no-effect',
      'sick',
      'unread',
    ];
    if (fault && selfInflicted.includes(fault.kind)) sim.inject(fault);
    if (fault && ['crash', 'database-down', 'keepalived-down'].includes(fault.kind)) crashed = true;
    if (round === s.cancelAtRound) j = { ...j, cancelRequested: 'operator changed their mind' };
    if (round === s.rollbackAtRound)
      j = { ...j, rollbackRequested: 'operator wants the old version' };
    const observed = sim.observe();
    j = recordSight(j, observed, now);
    if (s.stopWhen?.(ctx, j, sim)) {
      return {
        ctx,
        journal: j,
        sim,
        trace,
        violations,
        phases,
        rolledBack,
        rounds: round,
        finished: false,
        halts,
        stepsInSplitBrain,
        nowMs: now,
        stopped: true,
      };
    }
    const action = plan({
      ctx,
      request: { fromVersion: FROM, targetVersion: TO },
      settings,
      observed,
      journal: j,
      nowMs: now,
    });
    trace.push(action);
    switch (action.kind) {
      case 'done':
        return {
          ctx,
          journal: j,
          sim,
          trace,
          violations,
          phases,
          rolledBack,
          rounds: round,
          finished: true,
          halts,
          stepsInSplitBrain,
          nowMs: now,
          stopped: false,
        };
      case 'halt':
        // Nothing is done while halted: the next round looks again.
        halts.push(round);
        now += 5000;
        break;
      case 'wait':
        j = recordWait(j, action.reason, now);
        now += 5000;
        break;
      case 'event': {
        const e = action.event;
        if (e.type === 'CANCEL_REQUESTED')
          j = { ...j, requestsSent: [...j.requestsSent, 'cancel'] };
        if (e.type === 'ROLLBACK_REQUESTED')
          j = { ...j, requestsSent: [...j.requestsSent, 'rollback'] };
        const r = upgradeMachine.transition(ctx, e, { at: new Date(now), actor: 'sim' });
        if (!r.ok) {
          const request = e.type === 'CANCEL_REQUESTED' || e.type === 'ROLLBACK_REQUESTED';
          if (!request)
            violations.push(`planner proposed a refused event in ${ctx.phase}: ${r.reason}`);
          break;
        }
        if (e.type === 'ROLLBACK_DONE') rolledBack = true;
        if (e.type === 'START') j = { ...j, upgradeStartedAtMs: now };
        ctx = r.context;
        phases.push(ctx.phase);
        j = enterPhase(j, now);
        now += 10;
        break;
      }
      case 'step': {
        if (sim.splitRounds > 0 && !isTerminal(ctx.phase))
          stepsInSplitBrain.push(`round ${round}: ${action.step} on ${action.node ?? 'pair'}`);
        const target = action.node ? sim.node(action.node) : null;
        if (action.step === 'STOP_SERVICES' && target) {
          const other = sim.nodes.find((n) => n !== target)!;
          if (!(sim.healthy(other) && other.holdsVip && other.dbRole === 'primary')) {
            violations.push(
              `round ${round}: stopped ${target.name} while ${other.name} was not serving behind the VIP`,
            );
          }
        }
        if (action.step === 'SWITCHOVER' && target) {
          const passes = j.healthPasses[target.name] ?? 0;
          if (passes < settings.healthCheckConsecutivePasses || !sim.healthy(target)) {
            violations.push(
              `round ${round}: VIP moved to ${target.name} with ${passes} passes, healthy=${sim.healthy(target)}`,
            );
          }
        }
        const outcome = sim.apply(
          action.step,
          action.node,
          TO,
          fault && ['transient', 'terminal', 'health-flap'].includes(fault.kind) ? fault : null,
        );
        j = recordStep(j, action.step, action.node, outcome);
        // A WAIT_REPLAY that answers "not yet" waited its own deadline (healthCheckTimeout).
        now += outcome.ok
          ? 1000
          : outcome.kind === 'waiting' && action.step === 'WAIT_REPLAY'
            ? settings.healthCheckTimeout
            : 3000;
        break;
      }
    }
    if (!crashed && !sim.clientsServed())
      violations.push(`round ${round}: no node served clients after ${JSON.stringify(action)}`);
  }
  return {
    ctx,
    journal: j,
    sim,
    trace,
    violations,
    phases,
    rolledBack,
    rounds: maxRounds,
    finished: false,
    halts,
    stepsInSplitBrain,
    nowMs: now,
    stopped: false,
  };
}

export type { Fault };
