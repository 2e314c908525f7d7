// Status conditions from the phase, the way GitOps tools read them.
// Argo CD (a Lua health check, docs/kubernetes.md) and Flux (kstatus) look
// at a few condition types plus observedGeneration:
// - Progressing=True while the upgrade runs (and while it waits to start);
// - Ready=True only on COMPLETE;
// - Degraded=True on FAILED, TIMEOUT and UNREACHABLE (CANCELLED is a
//   deliberate stop with the pair serving: not degraded, not ready);
// - RolledBack=True once a rollback has run to its end;
// - Reconciling=True while the operator works on steps (kstatus: "in
//   progress"); False when the upgrade ended or is halted;
// - Stalled=True while the operator cannot proceed without help (a halt:
//   split brain, a step's run budget spent, a wait past its bound); kstatus
//   reads it as "failed". Reconciling and Stalled have kstatus' abnormal-true
//   polarity: False when all is well, so a tool that knows only them sees
//   the truth.
// Every condition carries the generation it was computed from, so a tool
// never mistakes an old verdict for one about the current spec; and
// lastTransitionTime moves only when a condition's status flips, as the
// Kubernetes API conventions ask (a changing message is not a transition).
// Pure: the caller passes the previous conditions and the time.
import { isTerminal, type Phase } from './phases.js';
import type { Condition } from './upgrade-request.js';

export type ConditionType = Condition['type'];
export type ConditionStatus = Condition['status'];

export interface ConditionInput {
  readonly phase: Phase;
  /** metadata.generation of the object the status was computed from. */
  readonly generation: number | undefined;
  readonly previous: readonly Condition[];
  /** ISO time used for conditions whose status flips now. */
  readonly now: string;
  /** The status message, copied to the conditions that explain the phase. */
  readonly message?: string | undefined;
  /**
   * The upgrade went through ROLLBACK before reaching this phase. When not
   * given, it is remembered from the previous RolledBack condition.
   */
  readonly rolledBack?: boolean | undefined;
  /**
   * The upgrade is halted (src/core/actions.ts halt): reason is the
   * Stalled condition's reason, message the halt's whole text. Absent or
   * null: not halted.
   */
  readonly stalled?: { readonly reason: string; readonly message: string } | null | undefined;
}

interface Verdict {
  status: ConditionStatus;
  reason: string;
  message: string;
}

const RUNNING_REASON: Partial<Record<Phase, string>> = {
  IDLE: 'Waiting',
  ROLLBACK: 'RollingBack',
};

const FAILURE_REASON: Partial<Record<Phase, string>> = {
  FAILED: 'UpgradeFailed',
  TIMEOUT: 'TimedOut',
  UNREACHABLE: 'NodeUnreachable',
};

/** The four verdicts for a phase, before timestamps. Pure. */
export function verdictsFor(
  phase: Phase,
  rolledBack: boolean,
  message = '',
  stalled: { readonly reason: string; readonly message: string } | null = null,
): Record<ConditionType, Verdict> {
  const terminal = isTerminal(phase);
  const running = !terminal;
  const failure = FAILURE_REASON[phase];
  const text = message || `phase ${phase}`;
  return {
    Progressing: running
      ? { status: 'True', reason: RUNNING_REASON[phase] ?? 'Upgrading', message: text }
      : {
          status: 'False',
          reason: phase === 'COMPLETE' ? 'Succeeded' : (failure ?? 'Cancelled'),
          message: text,
        },
    Ready:
      phase === 'COMPLETE'
        ? { status: 'True', reason: 'Succeeded', message: text }
        : {
            status: 'False',
            reason: running ? 'InProgress' : (failure ?? 'Cancelled'),
            message: text,
          },
    Degraded: failure
      ? { status: 'True', reason: failure, message: text }
      : { status: 'False', reason: 'AsExpected', message: '' },
    RolledBack:
      phase === 'ROLLBACK'
        ? { status: 'False', reason: 'RollingBack', message: text }
        : rolledBack
          ? { status: 'True', reason: 'RollbackFinished', message: text }
          : { status: 'False', reason: 'NoRollback', message: '' },
    ...kstatusVerdicts(phase, running, text, running ? stalled : null),
  };
}

/** Reconciling and Stalled (kstatus' abnormal-true pair). A halt only counts before the end. */
function kstatusVerdicts(
  phase: Phase,
  running: boolean,
  text: string,
  stalled: { readonly reason: string; readonly message: string } | null,
): Pick<Record<ConditionType, Verdict>, 'Reconciling' | 'Stalled'> {
  if (stalled) {
    return {
      Reconciling: { status: 'False', reason: 'Stalled', message: stalled.message },
      Stalled: { status: 'True', reason: stalled.reason, message: stalled.message },
    };
  }
  return {
    Reconciling: running
      ? { status: 'True', reason: RUNNING_REASON[phase] ?? 'Upgrading', message: text }
      : { status: 'False', reason: 'Finished', message: '' },
    Stalled: { status: 'False', reason: 'AsExpected', message: '' },
  };
}

const ORDER: readonly ConditionType[] = [
  'Progressing',
  'Ready',
  'Degraded',
  'RolledBack',
  'Reconciling',
  'Stalled',
];

/** The conditions for a status: stable order, transition times kept unless flipped. */
export function conditionsFor(input: ConditionInput): Condition[] {
  const prev = new Map(input.previous.map((c) => [c.type, c]));
  const rolledBack =
    input.rolledBack ??
    (prev.get('RolledBack')?.status === 'True' ||
      // The previous reconcile saw ROLLBACK; this one sees its end.
      (prev.get('RolledBack')?.reason === 'RollingBack' && input.phase !== 'ROLLBACK'));
  const verdicts = verdictsFor(input.phase, rolledBack, input.message, input.stalled ?? null);
  return ORDER.map((type) => {
    const v = verdicts[type];
    const before = prev.get(type);
    const condition: Condition = {
      type,
      status: v.status,
      reason: v.reason,
      message: v.message,
      lastTransitionTime:
        before && before.status === v.status ? before.lastTransitionTime : input.now,
    };
    if (input.generation !== undefined) condition.observedGeneration = input.generation;
    return condition;
  });
}

/** One condition by type, or undefined. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: ConditionType,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** A halt as the REST API and both CLIs show it: the Stalled condition's cause. */
export interface Halt {
  reason: string;
  message: string;
  since: string | null;
}

/**
 * The halt the reconciler published (Stalled=True); a finished upgrade is
 * never halted, whatever an old condition says.
 */
export function haltOf(conditions: readonly Condition[] | undefined, phase: Phase): Halt | null {
  if (isTerminal(phase)) return null;
  const c = conditions?.find((x) => x.type === 'Stalled' && x.status === 'True');
  return c ? { reason: c.reason, message: c.message, since: c.lastTransitionTime } : null;
}
