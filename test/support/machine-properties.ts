// Properties of the upgrade state machine, written against any Machine so the
// same checks can be run on the real one (machine.test.ts) and on copies with
// one guard removed (machine-guards.test.ts), where at least one must fail.
import fc from 'fast-check';
import {
  EVENT_TYPES,
  IN_PROGRESS_PHASES,
  initialContext,
  type Machine,
  type UpgradeContext,
  type UpgradeEvent,
} from '../../src/core/machine.js';
import { isTerminal, type Phase } from '../../src/core/phases.js';

export const NODES = { backup: 'node-b', master: 'node-a' } as const;
const at = new Date('2026-01-01T00:00:00Z');
const meta = { at, actor: 'test' };

/**
 * Every (from, to) pair the task list allows, written out independently of the
 * transition table: sections 2.1 and 4 of the task list, read as a graph.
 */
export const SPEC_EDGES: ReadonlySet<string> = new Set([
  'IDLE>PREPARE',
  'IDLE>CANCELLED',
  'PREPARE>BACKUP',
  'BACKUP>UPGRADE_BACKUP',
  'UPGRADE_BACKUP>VIP_SWITCH',
  'VIP_SWITCH>UPGRADE_MASTER',
  'UPGRADE_MASTER>VERIFY',
  'VERIFY>COMPLETE',
  ...['PREPARE', 'BACKUP'].flatMap((p) => [`${p}>FAILED`, `${p}>CANCELLED`]),
  ...IN_PROGRESS_PHASES.flatMap((p) => [`${p}>TIMEOUT`, `${p}>UNREACHABLE`, `${p}>FAILED`]),
  // Rollback only from phases after the backup was verified.
  ...['UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY'].map((p) => `${p}>ROLLBACK`),
  'ROLLBACK>FAILED',
  'ROLLBACK>CANCELLED',
  'ROLLBACK>TIMEOUT',
  'ROLLBACK>UNREACHABLE',
]);

const nodeArb = fc.constantFrom(NODES.backup, NODES.master, 'stranger');
const checksArb = fc.record({
  bothNodesHealthy: fc.boolean(),
  replicationHealthy: fc.boolean(),
  vipOnHealthyNode: fc.boolean(),
  configConsistent: fc.boolean(),
  rsyncResumed: fc.boolean(),
});

/** Any event, well-formed or not for the phase it arrives in. */
export const eventArb: fc.Arbitrary<UpgradeEvent> = fc.oneof(
  fc.constant({ type: 'START' } as const),
  fc.constant({ type: 'PREPARED' } as const),
  fc.constant({ type: 'BACKUP_VERIFIED' } as const),
  fc.record({
    type: fc.constant('BACKUP_NODE_HEALTHY' as const),
    node: nodeArb,
    consecutivePasses: fc.integer({ min: 0, max: 5 }),
  }),
  fc.record({ type: fc.constant('VIP_MOVED' as const), holder: nodeArb }),
  fc.record({
    type: fc.constant('MASTER_NODE_HEALTHY' as const),
    node: nodeArb,
    consecutivePasses: fc.integer({ min: 0, max: 5 }),
  }),
  fc.record({ type: fc.constant('VERIFIED' as const), checks: checksArb }),
  fc.record({ type: fc.constant('STEP_FAILED' as const), error: fc.string() }),
  fc.record({ type: fc.constant('ROLLBACK_REQUESTED' as const), reason: fc.string() }),
  fc.constant({ type: 'ROLLBACK_DONE' } as const),
  fc.record({ type: fc.constant('ROLLBACK_FAILED' as const), error: fc.string() }),
  fc.record({ type: fc.constant('CANCEL_REQUESTED' as const), reason: fc.string() }),
  fc.record({ type: fc.constant('TIMED_OUT' as const), limit: fc.constant('15m') }),
  fc.record({
    type: fc.constant('NODE_UNREACHABLE' as const),
    node: nodeArb,
    error: fc.constant('ECONNREFUSED'),
  }),
);

export interface NearMiss {
  readonly nearMiss: number;
}

export interface Run {
  readonly start: { autoRollback: boolean; requiredHealthPasses: number };
  /**
   * null stands for "the next happy-path event"; a near miss for that event
   * with one detail wrong (wrong node, one pass short, one check failed), the
   * inputs a guard exists to refuse.
   */
  readonly events: readonly (UpgradeEvent | null | NearMiss)[];
}

const startArb = fc.record({
  autoRollback: fc.boolean(),
  requiredHealthPasses: fc.integer({ min: 1, max: 4 }),
});

/**
 * Runs biased towards the happy path so deep phases are reached often: the
 * next good event is mixed with arbitrary ones.
 */
export const runArb: fc.Arbitrary<Run> = fc.record({
  start: startArb,
  events: fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.constant(null) },
      { weight: 2, arbitrary: fc.record({ nearMiss: fc.nat() }) },
      { weight: 2, arbitrary: eventArb },
    ),
    { maxLength: 40, size: 'medium' },
  ),
});

/** The event that moves a context one step along the happy path. */
export function happyEvent(ctx: UpgradeContext): UpgradeEvent {
  const passes = ctx.requiredHealthPasses;
  const good = {
    bothNodesHealthy: true,
    replicationHealthy: true,
    vipOnHealthyNode: true,
    configConsistent: true,
    rsyncResumed: true,
  };
  switch (ctx.phase) {
    case 'IDLE':
      return { type: 'START' };
    case 'PREPARE':
      return { type: 'PREPARED' };
    case 'BACKUP':
      return { type: 'BACKUP_VERIFIED' };
    case 'UPGRADE_BACKUP':
      return { type: 'BACKUP_NODE_HEALTHY', node: ctx.backupNode, consecutivePasses: passes };
    case 'VIP_SWITCH':
      return { type: 'VIP_MOVED', holder: ctx.backupNode };
    case 'UPGRADE_MASTER':
      return { type: 'MASTER_NODE_HEALTHY', node: ctx.masterNode, consecutivePasses: passes };
    case 'VERIFY':
      return { type: 'VERIFIED', checks: good };
    default:
      return { type: 'ROLLBACK_DONE' };
  }
}

/** The happy-path event with one detail wrong; the same as happyEvent where nothing can be. */
export function nearMissEvent(ctx: UpgradeContext, pick: number): UpgradeEvent {
  const e = happyEvent(ctx);
  const wrongNode = pick % 2 === 0 ? ctx.masterNode : 'stranger';
  switch (e.type) {
    case 'BACKUP_NODE_HEALTHY':
      return pick % 3 === 0
        ? { ...e, consecutivePasses: e.consecutivePasses - 1 }
        : { ...e, node: wrongNode };
    case 'MASTER_NODE_HEALTHY':
      return pick % 3 === 0
        ? { ...e, consecutivePasses: e.consecutivePasses - 1 }
        : { ...e, node: pick % 2 === 0 ? ctx.backupNode : 'stranger' };
    case 'VIP_MOVED':
      return { ...e, holder: wrongNode };
    case 'VERIFIED': {
      const keys = Object.keys(e.checks) as (keyof typeof e.checks)[];
      return { ...e, checks: { ...e.checks, [keys[pick % keys.length]!]: false } };
    }
    default:
      return e;
  }
}

export interface Step {
  readonly before: UpgradeContext;
  readonly event: UpgradeEvent;
  readonly accepted: boolean;
  readonly after: UpgradeContext;
}

/** Plays a run through a machine; the history is the test's own record. */
export function play(machine: Machine, run: Run): Step[] {
  let ctx = initialContext({ backupNode: NODES.backup, masterNode: NODES.master, ...run.start });
  const steps: Step[] = [];
  for (const item of run.events) {
    const event =
      item === null
        ? happyEvent(ctx)
        : 'nearMiss' in item
          ? nearMissEvent(ctx, item.nearMiss)
          : item;
    const r = machine.transition(ctx, event, meta);
    const after = r.ok ? r.context : ctx;
    steps.push({ before: ctx, event, accepted: r.ok, after });
    ctx = after;
  }
  return steps;
}

export interface MachineProperty {
  readonly name: string;
  readonly check: (machine: Machine, run: Run) => boolean;
}

const entered = (s: Step, p: Phase) => s.accepted && s.after.phase === p && s.before.phase !== p;
const acceptedBefore = (steps: Step[], i: number, pred: (s: Step) => boolean) =>
  steps.slice(0, i).some((s) => s.accepted && pred(s));

export const PROPERTIES: readonly MachineProperty[] = [
  {
    name: 'only transitions of the task list are ever taken, whatever the history',
    check: (m, run) =>
      play(m, run).every(
        (s) =>
          !s.accepted ||
          s.before.phase === s.after.phase ||
          SPEC_EDGES.has(`${s.before.phase}>${s.after.phase}`),
      ),
  },
  {
    name: 'an event with no rule for the phase is refused, whatever the history',
    check: (m, run) =>
      play(m, run).every(
        (s) => m.candidates(s.before.phase, s.event.type).length > 0 || !s.accepted,
      ),
  },
  {
    name: 'terminal phases absorb every event',
    check: (m, run) => play(m, run).every((s) => !isTerminal(s.before.phase) || !s.accepted),
  },
  {
    name: 'VIP_SWITCH is entered only after the backup node passed N consecutive health checks',
    check: (m, run) =>
      play(m, run).every(
        (s) =>
          !entered(s, 'VIP_SWITCH') ||
          (s.event.type === 'BACKUP_NODE_HEALTHY' &&
            s.event.node === s.before.backupNode &&
            s.event.consecutivePasses >= s.before.requiredHealthPasses),
      ),
  },
  {
    name: 'UPGRADE_MASTER is entered only after the VIP moved to the upgraded node',
    check: (m, run) =>
      play(m, run).every(
        (s) =>
          !entered(s, 'UPGRADE_MASTER') ||
          (s.event.type === 'VIP_MOVED' && s.event.holder === s.before.backupNode),
      ),
  },
  {
    name: 'COMPLETE only after the old master passed its checks and every verification passed',
    check: (m, run) => {
      const steps = play(m, run);
      return steps.every(
        (s, i) =>
          !entered(s, 'COMPLETE') ||
          (s.event.type === 'VERIFIED' &&
            Object.values(s.event.checks).every(Boolean) &&
            acceptedBefore(
              steps,
              i,
              (p) =>
                p.event.type === 'MASTER_NODE_HEALTHY' &&
                p.event.node === p.before.masterNode &&
                p.event.consecutivePasses >= p.before.requiredHealthPasses,
            )),
      );
    },
  },
  {
    name: 'ROLLBACK is entered only once a backup was verified',
    check: (m, run) => {
      const steps = play(m, run);
      return steps.every(
        (s, i) =>
          !entered(s, 'ROLLBACK') ||
          acceptedBefore(steps, i, (p) => p.event.type === 'BACKUP_VERIFIED'),
      );
    },
  },
  {
    name: 'with auto-rollback off, a failure or timeout never starts a rollback by itself',
    check: (m, run) =>
      play(m, run).every(
        (s) =>
          s.before.autoRollback ||
          !entered(s, 'ROLLBACK') ||
          s.event.type === 'ROLLBACK_REQUESTED' ||
          s.event.type === 'CANCEL_REQUESTED',
      ),
  },
  {
    name: 'once a backup is verified, a rollback request is honoured in every in-progress phase',
    check: (m, run) => {
      const steps = play(m, run);
      return steps.every((s, i) => {
        const inProgress = (IN_PROGRESS_PHASES as readonly Phase[]).includes(s.after.phase);
        if (!inProgress || !acceptedBefore(steps, i + 1, (p) => p.event.type === 'BACKUP_VERIFIED'))
          return true;
        const r = m.transition(s.after, { type: 'ROLLBACK_REQUESTED', reason: 'probe' }, meta);
        return r.ok && r.context.phase === 'ROLLBACK';
      });
    },
  },
];

/** Checks every property; returns the names of those that found a counterexample. */
export function failingProperties(machine: Machine, numRuns = 1000, seed = 42): string[] {
  return PROPERTIES.filter(
    (p) =>
      fc.check(
        fc.property(runArb, (run) => p.check(machine, run)),
        { numRuns, seed },
      ).failed,
  ).map((p) => p.name);
}

export { EVENT_TYPES };
