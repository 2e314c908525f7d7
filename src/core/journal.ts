// Facts about this upgrade that cannot be read off the nodes: when it
// started, which backups were verified, how many health checks passed in a
// row, what failed last. They live in the store (the step journal) and are
// folded from step results by the pure `recordStep` below.

import type { Step } from './actions.js';
import type { ErrorKind } from './errors.js';
import type { DbRole, PairObservation } from './observed.js';

export interface StepError {
  readonly step: Step;
  readonly node: string | null;
  readonly kind: ErrorKind;
  readonly message: string;
  /** Consecutive failures of this same step. */
  readonly attempts: number;
}

export interface JournalFacts {
  readonly upgradeStartedAtMs: number | null;
  readonly phaseEnteredAtMs: number;
  readonly backupsVerified: readonly string[];
  /** Consecutive /health passes per node since its services last started. */
  readonly healthPasses: Readonly<Record<string, number>>;
  readonly healthFailures: Readonly<Record<string, number>>;
  readonly lastError: StepError | null;
  /** When each node was first seen unreachable; absent once seen again. */
  readonly unreachableSinceMs: Readonly<Record<string, number>>;
  readonly tempFilesRemoved: boolean;
  /** Nodes whose jar and configuration were restored in this rollback. */
  readonly restored: readonly string[];
  readonly cancelRequested: string | null;
  readonly rollbackRequested: string | null;
  /** Requests already fed to the machine, so each is sent once. */
  readonly requestsSent: readonly ('cancel' | 'rollback')[];
  /** A CHECK_CONFIG step (one sync round, then the comparison) has run: compare from now on. */
  readonly configChecked?: boolean;
  /** Steps finished since the current phase was entered (for progress). */
  readonly stepsInPhase?: number;
  /** Progress when the current phase (a rollback) began. */
  readonly progressBefore?: number;
  /**
   * Attempts to bring back a component that died by itself, per
   * "<step>@<node>" (core/repair.ts), counted whatever the outcome and never
   * reset during the upgrade: a component that keeps dying halts it.
   */
  readonly bringBacks?: Readonly<Record<string, number>>;
  /**
   * Runs of each step on each node since the current phase was entered,
   * successful or not, keyed by runKey ("CHECK_HEALTH@a"). A step that
   * "succeeds" without its effect is planned again; this count is what
   * bounds it (planner.ts stepRunBudget). Stored with the journal, so an
   * operator restart does not start the count again.
   */
  readonly stepRuns?: Readonly<Record<string, number>>;
  /**
   * The wait the planner answered last and since when: the planner turns a
   * wait that lasts past its bound into a halt. Cleared by any step or phase change.
   */
  readonly waiting?: { readonly reason: string; readonly sinceMs: number } | null;
  /**
   * Each node as it was the last time it answered: what the planner knows of
   * a node it can no longer reach (core/lost-node.ts decides from it whether
   * ending UNREACHABLE leaves the pair on one version).
   */
  readonly lastSeen?: Readonly<Record<string, LastSeen>>;
  /**
   * The halt published now (Stalled=True): kept so its log line and Event
   * are written once per distinct cause, and a resume is announced once.
   */
  readonly halted?: HaltFact | null;
}

/** The bring-back steps (core/repair.ts); each attempt is counted in bringBacks. */
export const BRING_BACK_STEPS: readonly Step[] = [
  'START_DATABASE',
  'START_KEEPALIVED',
  'BRING_BACK_SERVICES',
];

export const bringBackKey = (step: Step, node: string): string => `${step}@${node}`;

/** The journal with one more attempt of a bring-back step counted (others unchanged). */
function countBringBack(j: JournalFacts, step: Step, node: string | null): JournalFacts {
  if (!node || !BRING_BACK_STEPS.includes(step)) return j;
  const key = bringBackKey(step, node);
  return { ...j, bringBacks: { ...j.bringBacks, [key]: (j.bringBacks?.[key] ?? 0) + 1 } };
}

export interface LastSeen {
  readonly installedVersion: string | null;
  readonly servicesRunning: boolean;
  readonly holdsVip: boolean;
  readonly dbRole: DbRole;
  readonly atMs: number;
  /**
   * A step that changes the node ran after this sight (an install cut off
   * half way, a stop whose answer was lost): what the node runs now is
   * not known. The next sight of the node clears it.
   */
  readonly changedSince: boolean;
}

/** Steps whose effect changes what a node runs or serves. */
const NODE_CHANGING: readonly Step[] = [
  'STOP_SERVICES',
  'INSTALL_PACKAGE',
  'START_SERVICES',
  'BRING_BACK_SERVICES',
  'RESTORE',
  'SWITCHOVER',
];

/**
 * A node-changing step ran: its node's last sight (every node's for a
 * switchover, which changes both) no longer says what the node runs.
 */
function markChanged(j: JournalFacts, step: Step, node: string | null): JournalFacts {
  if (!NODE_CHANGING.includes(step) || !j.lastSeen) return j;
  const names = step === 'SWITCHOVER' || node === null ? Object.keys(j.lastSeen) : [node];
  const next: Record<string, LastSeen> = { ...j.lastSeen };
  for (const n of names) if (next[n]) next[n] = { ...next[n]!, changedSince: true };
  return { ...j, lastSeen: next };
}

export interface HaltFact {
  readonly cause: string;
  /** The Stalled condition's reason (SplitBrain, StepBudgetSpent, ...). */
  readonly reason: string;
  /** The whole text: cause, what the operator did, what a person must do. */
  readonly message: string;
  readonly sinceMs: number;
}

/** The journal's key for one step on one node (or on the pair). */
export function runKey(step: Step, node: string | null): string {
  return `${step}@${node ?? 'pair'}`;
}

/** How many times this step ran on this node in the current phase. */
export function runsOf(j: JournalFacts, step: Step, node: string | null): number {
  return j.stepRuns?.[runKey(step, node)] ?? 0;
}

/** The journal as a new phase begins: per-phase counts and waits start again. */
export function enterPhase(j: JournalFacts, nowMs: number): JournalFacts {
  return { ...j, phaseEnteredAtMs: nowMs, lastError: null, stepRuns: {}, waiting: null };
}

/** The planner answered a wait: remember since when it has answered this same one. */
export function recordWait(j: JournalFacts, reason: string, nowMs: number): JournalFacts {
  if (j.waiting?.reason === reason) return j;
  return { ...j, waiting: { reason, sinceMs: nowMs } };
}

export function emptyJournal(nowMs: number): JournalFacts {
  return {
    upgradeStartedAtMs: null,
    phaseEnteredAtMs: nowMs,
    backupsVerified: [],
    healthPasses: {},
    healthFailures: {},
    lastError: null,
    unreachableSinceMs: {},
    tempFilesRemoved: false,
    restored: [],
    cancelRequested: null,
    rollbackRequested: null,
    requestsSent: [],
  };
}

export type StepOutcome =
  /** detail: what the drivers did, in words ("set 2026...: jar changed, database changed on a"). */
  | { readonly ok: true; readonly detail?: string }
  | { readonly ok: false; readonly kind: ErrorKind; readonly message: string };

/** The journal after one step finished (successfully or not). */
export function recordStep(
  given: JournalFacts,
  step: Step,
  node: string | null,
  outcome: StepOutcome,
): JournalFacts {
  const j = markChanged(countBringBack(given, step, node), step, node);
  const key = runKey(step, node);
  const counted: JournalFacts = {
    ...j,
    stepRuns: { ...j.stepRuns, [key]: (j.stepRuns?.[key] ?? 0) + 1 },
    waiting: null,
  };
  return recordOutcome(counted, step, node, outcome);
}

function recordOutcome(
  j: JournalFacts,
  step: Step,
  node: string | null,
  outcome: StepOutcome,
): JournalFacts {
  if (!outcome.ok) {
    const same = j.lastError && j.lastError.step === step && j.lastError.node === node;
    const attempts = same ? j.lastError!.attempts + 1 : 1;
    const next: JournalFacts = {
      ...j,
      lastError: { step, node, kind: outcome.kind, message: outcome.message, attempts },
    };
    if (step === 'CHECK_HEALTH' && node) {
      return {
        ...next,
        healthPasses: { ...j.healthPasses, [node]: 0 },
        healthFailures: { ...j.healthFailures, [node]: (j.healthFailures[node] ?? 0) + 1 },
      };
    }
    return next;
  }
  const cleared = { ...j, lastError: null };
  switch (step) {
    case 'BACKUP':
      return node && !j.backupsVerified.includes(node)
        ? { ...cleared, backupsVerified: [...j.backupsVerified, node] }
        : cleared;
    case 'CHECK_HEALTH':
      return node
        ? {
            ...cleared,
            healthPasses: { ...j.healthPasses, [node]: (j.healthPasses[node] ?? 0) + 1 },
            healthFailures: { ...j.healthFailures, [node]: 0 },
          }
        : cleared;
    // Anything that (re)starts or changes a node's services starts its count again.
    case 'STOP_SERVICES':
    case 'START_SERVICES':
    case 'BRING_BACK_SERVICES':
    case 'INSTALL_PACKAGE':
    case 'SWITCHOVER':
      return node
        ? {
            ...cleared,
            healthPasses: { ...j.healthPasses, [node]: 0 },
            healthFailures: { ...j.healthFailures, [node]: 0 },
          }
        : cleared;
    case 'RESTORE':
      return node && !j.restored.includes(node)
        ? {
            ...cleared,
            restored: [...j.restored, node],
            healthPasses: { ...j.healthPasses, [node]: 0 },
          }
        : cleared;
    case 'REMOVE_TEMP_FILES':
      return { ...cleared, tempFilesRemoved: true };
    case 'CHECK_CONFIG':
      return { ...cleared, configChecked: true };
    default:
      return cleared;
  }
}

/** Unreachability bookkeeping from this round's observation. */
export function recordReachability(
  j: JournalFacts,
  reachable: Readonly<Record<string, boolean>>,
  nowMs: number,
): JournalFacts {
  const since: Record<string, number> = {};
  for (const [name, ok] of Object.entries(reachable)) {
    if (!ok) since[name] = j.unreachableSinceMs[name] ?? nowMs;
  }
  return { ...j, unreachableSinceMs: since };
}

/**
 * Reachability and each reachable node's last sight from this round's
 * observation (a node that does not answer, or answers only in part, keeps
 * the sight it had).
 */
export function recordSight(
  j: JournalFacts,
  observed: PairObservation,
  nowMs: number,
): JournalFacts {
  const withReach = recordReachability(
    j,
    Object.fromEntries(observed.nodes.map((n) => [n.name, n.reachable])),
    nowMs,
  );
  const seen: Record<string, LastSeen> = { ...j.lastSeen };
  for (const n of observed.nodes) {
    // A node read only in part this round (a probe failed: its fields read
    // as "stopped", "unknown") is not a sight: lab kill-sshd in VIP_SWITCH
    // left b "last seen with its services stopped" from the round sshd died.
    const partial = (observed.problems ?? []).some((p) => p.startsWith(`${n.name}: `));
    if (!n.reachable || partial) continue;
    seen[n.name] = {
      installedVersion: n.installedVersion,
      servicesRunning: n.servicesRunning,
      holdsVip: n.holdsVip,
      dbRole: n.dbRole,
      atMs: nowMs,
      changedSince: false,
    };
  }
  return { ...withReach, lastSeen: seen };
}
