// The upgrade state machine (task list 2.1). Pure: no I/O, no clock — the
// caller passes the time and the actor, and gets back either the next context
// with a record of the transition, or a refusal. What happens on the nodes
// because of a phase (rsync resumed, temporary files removed, a rollback) is
// the planner's to decide from the phase and what it observes, not the
// machine's: the reconciler commits the record with
// src/store/journal-store.ts commitTransition.
//
// The transition table is data (TRANSITION_RULES). Each rule may name a guard;
// guards are kept in a table of their own so tests can prove every one of
// them is load-bearing (test/unit/machine-guards.test.ts removes each in turn
// and expects a property to fail).
import { isTerminal, type Phase } from './phases.js';

/** Phases in which the upgrade is moving forward. */
export const IN_PROGRESS_PHASES = [
  'PREPARE',
  'BACKUP',
  'UPGRADE_BACKUP',
  'VIP_SWITCH',
  'UPGRADE_MASTER',
  'VERIFY',
] as const satisfies readonly Phase[];

export interface UpgradeContext {
  readonly phase: Phase;
  /** Roll back by itself on a failure once a verified backup exists. */
  readonly autoRollback: boolean;
  /** Consecutive /health passes a node needs before traffic may reach it (task list 4.2.8). */
  readonly requiredHealthPasses: number;
  /** The node upgraded first: the one not holding the VIP at the start. */
  readonly backupNode: string;
  /** The node holding the VIP at the start; upgraded last. */
  readonly masterNode: string;
  readonly backupVerified: boolean;
  readonly backupNodePassed: boolean;
  readonly vipMoved: boolean;
  readonly masterNodePassed: boolean;
  /** Where a rollback in progress ends: the reason it was started. */
  readonly rollbackOutcome: Phase | null;
  /** The last failure or request that moved the upgrade off its path. */
  readonly reason: string | null;
}

export interface VerificationChecks {
  readonly bothNodesHealthy: boolean;
  readonly replicationHealthy: boolean;
  readonly vipOnHealthyNode: boolean;
  readonly configConsistent: boolean;
  readonly rsyncResumed: boolean;
}

export type UpgradeEvent =
  | { type: 'START' }
  | { type: 'PREPARED' }
  | { type: 'BACKUP_VERIFIED' }
  | { type: 'BACKUP_NODE_HEALTHY'; node: string; consecutivePasses: number }
  | { type: 'VIP_MOVED'; holder: string }
  | { type: 'MASTER_NODE_HEALTHY'; node: string; consecutivePasses: number }
  | { type: 'VERIFIED'; checks: VerificationChecks }
  | { type: 'STEP_FAILED'; error: string }
  | { type: 'ROLLBACK_REQUESTED'; reason: string }
  | { type: 'ROLLBACK_DONE' }
  | { type: 'ROLLBACK_FAILED'; error: string }
  | { type: 'CANCEL_REQUESTED'; reason: string }
  | { type: 'TIMED_OUT'; limit: string }
  | { type: 'NODE_UNREACHABLE'; node: string; error: string };

export type EventType = UpgradeEvent['type'];

export const EVENT_TYPES: readonly EventType[] = [
  'START',
  'PREPARED',
  'BACKUP_VERIFIED',
  'BACKUP_NODE_HEALTHY',
  'VIP_MOVED',
  'MASTER_NODE_HEALTHY',
  'VERIFIED',
  'STEP_FAILED',
  'ROLLBACK_REQUESTED',
  'ROLLBACK_DONE',
  'ROLLBACK_FAILED',
  'CANCEL_REQUESTED',
  'TIMED_OUT',
  'NODE_UNREACHABLE',
];

/** Guards: conditions a transition needs besides its phase and event. */
export const GUARDS = {
  /** Traffic may move only to a node that passed N consecutive checks. */
  backupNodePassedHealth: (ctx: UpgradeContext, e: UpgradeEvent) =>
    e.type === 'BACKUP_NODE_HEALTHY' &&
    e.node === ctx.backupNode &&
    e.consecutivePasses >= ctx.requiredHealthPasses,
  /** The old master is touched only once the VIP serves from the upgraded node. */
  vipOnUpgradedNode: (ctx: UpgradeContext, e: UpgradeEvent) =>
    e.type === 'VIP_MOVED' && e.holder === ctx.backupNode,
  masterNodePassedHealth: (ctx: UpgradeContext, e: UpgradeEvent) =>
    e.type === 'MASTER_NODE_HEALTHY' &&
    e.node === ctx.masterNode &&
    e.consecutivePasses >= ctx.requiredHealthPasses,
  /** COMPLETE means every post-upgrade check of task list 4.5 passed. */
  allVerificationsPassed: (_ctx: UpgradeContext, e: UpgradeEvent) =>
    e.type === 'VERIFIED' && Object.values(e.checks).every((ok) => ok === true),
  /** A rollback needs something verified to roll back to. */
  hasVerifiedBackup: (ctx: UpgradeContext) => ctx.backupVerified,
  /** Automatic rollback: on, and a verified backup exists. */
  canAutoRollback: (ctx: UpgradeContext) => ctx.autoRollback && ctx.backupVerified,
} as const;

export type GuardName = keyof typeof GUARDS;
export type Guard = (ctx: UpgradeContext, e: UpgradeEvent) => boolean;
export type GuardTable = Record<GuardName, Guard>;

export interface Rule {
  readonly from: readonly Phase[];
  readonly event: EventType;
  readonly guard?: GuardName;
  /** The phase entered: fixed, or chosen from the context (rollback outcome). */
  readonly to: Phase | ((ctx: UpgradeContext) => Phase);
  /** Why, for a person reading the table. */
  readonly note: string;
}

const ACTIVE: readonly Phase[] = IN_PROGRESS_PHASES;
/** Phases after the backup was verified: something has changed on a node. */
const CHANGED: readonly Phase[] = ['UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY'];
/** Before any node was changed a cancel needs no rollback. */
const UNCHANGED: readonly Phase[] = ['IDLE', 'PREPARE', 'BACKUP'];

/**
 * The transition table. The first rule whose phase, event and guard match
 * wins, so order matters where two rules share a phase and event.
 */
export const TRANSITION_RULES: readonly Rule[] = [
  { from: ['IDLE'], event: 'START', to: 'PREPARE', note: 'upgrade admitted' },
  { from: ['PREPARE'], event: 'PREPARED', to: 'BACKUP', note: 'preflight passed, rsync paused' },
  {
    from: ['BACKUP'],
    event: 'BACKUP_VERIFIED',
    to: 'UPGRADE_BACKUP',
    note: 'every backup file checksummed and verified',
  },
  {
    from: ['UPGRADE_BACKUP'],
    event: 'BACKUP_NODE_HEALTHY',
    guard: 'backupNodePassedHealth',
    to: 'VIP_SWITCH',
    note: 'backup node upgraded and healthy',
  },
  {
    from: ['VIP_SWITCH'],
    event: 'VIP_MOVED',
    guard: 'vipOnUpgradedNode',
    to: 'UPGRADE_MASTER',
    note: 'VIP and database primary now on the upgraded node',
  },
  {
    from: ['UPGRADE_MASTER'],
    event: 'MASTER_NODE_HEALTHY',
    guard: 'masterNodePassedHealth',
    to: 'VERIFY',
    note: 'old master upgraded and healthy',
  },
  {
    from: ['VERIFY'],
    event: 'VERIFIED',
    guard: 'allVerificationsPassed',
    to: 'COMPLETE',
    note: 'post-upgrade checks passed',
  },
  // Failures: roll back when we can, else stop where we are (both nodes were
  // kept serving by the step that failed).
  {
    from: ACTIVE,
    event: 'STEP_FAILED',
    guard: 'canAutoRollback',
    to: 'ROLLBACK',
    note: 'a step failed; rolling back automatically',
  },
  {
    from: ACTIVE,
    event: 'STEP_FAILED',
    to: 'FAILED',
    note: 'a step failed; no automatic rollback',
  },
  {
    from: ACTIVE,
    event: 'ROLLBACK_REQUESTED',
    guard: 'hasVerifiedBackup',
    to: 'ROLLBACK',
    note: 'rollback requested by a user',
  },
  // Cancel: before any node changed it simply stops; afterwards it rolls the
  // changed node back, which is the only safe point there is.
  {
    from: UNCHANGED,
    event: 'CANCEL_REQUESTED',
    to: 'CANCELLED',
    note: 'cancelled, nothing changed',
  },
  {
    from: CHANGED,
    event: 'CANCEL_REQUESTED',
    guard: 'hasVerifiedBackup',
    to: 'ROLLBACK',
    note: 'cancelled after changes; rolling back to the old version',
  },
  {
    from: ACTIVE,
    event: 'TIMED_OUT',
    guard: 'canAutoRollback',
    to: 'ROLLBACK',
    note: 'timed out; rolling back automatically',
  },
  { from: ACTIVE, event: 'TIMED_OUT', to: 'TIMEOUT', note: 'timed out' },
  { from: ['ROLLBACK'], event: 'TIMED_OUT', to: 'TIMEOUT', note: 'rollback timed out' },
  // An unreachable node cannot be rolled back over SSH: stop, keep the other serving.
  {
    from: [...ACTIVE, 'ROLLBACK'],
    event: 'NODE_UNREACHABLE',
    to: 'UNREACHABLE',
    note: 'node lost',
  },
  {
    from: ['ROLLBACK'],
    event: 'ROLLBACK_DONE',
    to: (ctx) => ctx.rollbackOutcome ?? 'FAILED',
    note: 'old version restored and healthy',
  },
  { from: ['ROLLBACK'], event: 'ROLLBACK_FAILED', to: 'FAILED', note: 'rollback failed' },
];

export interface TransitionRecord {
  readonly from: Phase;
  readonly to: Phase;
  readonly event: EventType;
  readonly cause: string;
  readonly actor: string;
  readonly at: Date;
}

export type TransitionResult =
  | {
      readonly ok: true;
      readonly context: UpgradeContext;
      readonly record: TransitionRecord;
    }
  | {
      readonly ok: false;
      readonly phase: Phase;
      readonly event: EventType;
      readonly reason: string;
    };

export interface TransitionMeta {
  readonly at: Date;
  readonly actor: string;
}

export function initialContext(opts: {
  backupNode: string;
  masterNode: string;
  autoRollback?: boolean;
  requiredHealthPasses?: number;
}): UpgradeContext {
  return {
    phase: 'IDLE',
    autoRollback: opts.autoRollback ?? true,
    requiredHealthPasses: opts.requiredHealthPasses ?? 3,
    backupNode: opts.backupNode,
    masterNode: opts.masterNode,
    backupVerified: false,
    backupNodePassed: false,
    vipMoved: false,
    masterNodePassed: false,
    rollbackOutcome: null,
    reason: null,
  };
}

/** The terminal phase a rollback started by this event should end in. */
function rollbackOutcomeFor(event: UpgradeEvent): Phase {
  switch (event.type) {
    case 'CANCEL_REQUESTED':
      return 'CANCELLED';
    case 'TIMED_OUT':
      return 'TIMEOUT';
    default:
      return 'FAILED';
  }
}

function causeOf(event: UpgradeEvent, note: string): string {
  switch (event.type) {
    case 'STEP_FAILED':
    case 'ROLLBACK_FAILED':
      return `${note}: ${event.error}`;
    case 'ROLLBACK_REQUESTED':
    case 'CANCEL_REQUESTED':
      return `${note}: ${event.reason}`;
    case 'TIMED_OUT':
      return `${note}: ${event.limit}`;
    case 'NODE_UNREACHABLE':
      return `${note}: ${event.node}: ${event.error}`;
    default:
      return note;
  }
}

/** Facts an event establishes, folded into the context when accepted. */
function learn(ctx: UpgradeContext, event: UpgradeEvent, to: Phase, cause: string): UpgradeContext {
  const next = { ...ctx, phase: to };
  switch (event.type) {
    case 'BACKUP_VERIFIED':
      return { ...next, backupVerified: true };
    case 'BACKUP_NODE_HEALTHY':
      return { ...next, backupNodePassed: true };
    case 'VIP_MOVED':
      return { ...next, vipMoved: true };
    case 'MASTER_NODE_HEALTHY':
      return { ...next, masterNodePassed: true };
    default:
      break;
  }
  if (to === 'ROLLBACK')
    return { ...next, rollbackOutcome: rollbackOutcomeFor(event), reason: cause };
  if (ctx.phase !== to && to !== 'COMPLETE' && !ACTIVE.includes(to))
    return { ...next, reason: cause };
  return next;
}

export interface Machine {
  readonly rules: readonly Rule[];
  transition(ctx: UpgradeContext, event: UpgradeEvent, meta: TransitionMeta): TransitionResult;
  /** Every rule matching this phase and event, guard aside: what could happen. */
  candidates(phase: Phase, event: EventType): readonly Rule[];
}

export function createMachine(
  rules: readonly Rule[] = TRANSITION_RULES,
  guards: GuardTable = GUARDS,
): Machine {
  const candidates = (phase: Phase, type: EventType) =>
    rules.filter((r) => r.event === type && r.from.includes(phase));
  return {
    rules,
    candidates,
    transition(ctx, event, meta) {
      const matching = candidates(ctx.phase, event.type);
      if (isTerminal(ctx.phase)) {
        return refuse(ctx.phase, event.type, `${ctx.phase} is final`);
      }
      if (matching.length === 0) {
        return refuse(ctx.phase, event.type, `${event.type} is not allowed in ${ctx.phase}`);
      }
      const rule = matching.find((r) => r.guard === undefined || guards[r.guard](ctx, event));
      if (!rule) {
        const failed = matching.map((r) => r.guard).join(', ');
        return refuse(ctx.phase, event.type, `${event.type} refused in ${ctx.phase}: ${failed}`);
      }
      const to = typeof rule.to === 'function' ? rule.to(ctx) : rule.to;
      const cause = causeOf(event, rule.note);
      return {
        ok: true,
        context: learn(ctx, event, to, cause),
        record: { from: ctx.phase, to, event: event.type, cause, actor: meta.actor, at: meta.at },
      };
    },
  };
}

function refuse(phase: Phase, event: EventType, reason: string): TransitionResult {
  return { ok: false, phase, event, reason };
}

/** The machine with the real table and guards. */
export const upgradeMachine: Machine = createMachine();
