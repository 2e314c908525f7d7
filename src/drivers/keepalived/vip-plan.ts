// Moving the VIP, planned from what was observed (pure; the driver does the
// I/O). The plan is a list of steps, each data with a reason, so a dry run can
// show it and tests can check it without a lab.
//
// Why the steps are in this order (figures in docs/drivers.md):
// - The fastest clean handoff is to put the current holder into FAULT
//   (its track_file goes non-zero): it releases the VIP at once and the peer
//   takes over after about one advert interval. Stopping keepalived on the
//   holder (a priority-0 advert) is nearly as fast. Raising the target's
//   priority is ~5x slower (the peer only preempts after several adverts).
// - Afterwards the new holder must KEEP the VIP: the old holder gets the lower
//   priority before its fault is cleared (or before keepalived is started
//   again), so it comes back as BACKUP and nothing flaps back.
// - A fault left on the target would stop it from ever taking the VIP, so it
//   is cleared first.

export type VipMoveMethod = 'fault' | 'stop' | 'priority';

export interface KeepalivedNodeState {
  readonly node: string;
  /** keepalived's process is running (the declared status command succeeded). */
  readonly running: boolean;
  /** This node's own interfaces carry the VIP. */
  readonly holdsVip: boolean;
  /** Priority in its keepalived.conf. */
  readonly priority: number;
  /** Content of the fault (track_file) file is non-zero; null when no fault file is declared. */
  readonly faulted: boolean | null;
}

export interface VipObservation {
  readonly nodes: readonly [KeepalivedNodeState, KeepalivedNodeState];
  /** The node answering on the VIP from outside both nodes (by its pinned host key), or null. */
  readonly outsideHolder: string | null;
}

export type VipStep =
  | { readonly kind: 'clear-fault'; readonly node: string; readonly reason: string }
  | { readonly kind: 'set-fault'; readonly node: string; readonly reason: string }
  | { readonly kind: 'stop-keepalived'; readonly node: string; readonly reason: string }
  | { readonly kind: 'start-keepalived'; readonly node: string; readonly reason: string }
  | {
      readonly kind: 'set-priority';
      readonly node: string;
      readonly priority: number;
      readonly reason: string;
    }
  | { readonly kind: 'wait-vip'; readonly node: string; readonly reason: string };

export class VipPlanError extends Error {
  override readonly name = 'VipPlanError';
  constructor(
    message: string,
    readonly kind: 'conflict' | 'terminal',
  ) {
    super(message);
  }
}

/** Priorities that make `target` the preferred holder: the higher of the two goes to it. */
export function preferredPriorities(
  target: number,
  other: number,
): { target: number; other: number } {
  if (target > other) return { target, other };
  const high = Math.max(target, other);
  const low = Math.min(target, other);
  if (high !== low) return { target: high, other: low };
  // Equal priorities: VRRP would break the tie by address, which is not a choice.
  return high > 1 ? { target: high, other: high - 1 } : { target: 2, other: 1 };
}

/** Both nodes holding the VIP is a split brain: never act on it blindly. */
export function splitBrain(o: VipObservation): boolean {
  return o.nodes[0].holdsVip && o.nodes[1].holdsVip;
}

/**
 * The steps that leave the VIP on `target`, preferred there (higher priority),
 * with no node left in FAULT or stopped; [] when that is already so.
 */
export function planVipMove(o: VipObservation, target: string, method: VipMoveMethod): VipStep[] {
  const t = o.nodes.find((n) => n.node === target);
  const other = o.nodes.find((n) => n.node !== target);
  if (!t || !other) throw new VipPlanError(`no node "${target}" in the pair`, 'terminal');
  if (splitBrain(o)) {
    throw new VipPlanError(
      `split brain: both ${o.nodes[0].node} and ${o.nodes[1].node} hold the VIP; not moving it until one releases it`,
      'conflict',
    );
  }
  if (!t.running) {
    throw new VipPlanError(
      `keepalived is not running on ${target}, so it cannot take the VIP; refusing to move it (the VIP stays where it is)`,
      'terminal',
    );
  }
  if (method === 'fault' && other.faulted === null) {
    throw new VipPlanError(
      'the fault handoff needs spec.keepalived.faultFile (a track_file); use the stop or priority method',
      'terminal',
    );
  }
  const steps: VipStep[] = [];
  const want = preferredPriorities(t.priority, other.priority);
  const onTarget = t.holdsVip && o.outsideHolder === target;
  if (t.faulted) {
    steps.push({
      kind: 'clear-fault',
      node: target,
      reason: `${target} is in FAULT, which stops it taking the VIP`,
    });
  }
  if (!onTarget) {
    if (method === 'priority') {
      // Lower the holder first, then raise the target: the target preempts.
      if (other.priority !== want.other)
        steps.push(priorityStep(other.node, want.other, 'so that the target preempts it'));
      if (t.priority !== want.target)
        steps.push(priorityStep(target, want.target, 'so that it preempts the holder'));
    } else if (other.holdsVip || o.outsideHolder === other.node) {
      if (method === 'fault' && !other.faulted) {
        steps.push({
          kind: 'set-fault',
          node: other.node,
          reason: `${other.node} holds the VIP: FAULT releases it at once and ${target} takes over`,
        });
      } else if (method === 'stop' && other.running) {
        steps.push({
          kind: 'stop-keepalived',
          node: other.node,
          reason: `${other.node} holds the VIP: stopping keepalived sends a priority-0 advert and ${target} takes over`,
        });
      }
    }
    steps.push({
      kind: 'wait-vip',
      node: target,
      reason: `the VIP must answer from ${target}, seen from outside both nodes`,
    });
  }
  // Make the new holder keep it: lower the other node before it comes back.
  if (!steps.some((s) => s.kind === 'set-priority')) {
    if (other.priority !== want.other)
      steps.push(priorityStep(other.node, want.other, `so that ${target} keeps the VIP`));
    if (t.priority !== want.target)
      steps.push(priorityStep(target, want.target, `so that ${target} keeps the VIP`));
  }
  const otherFaultedAfter =
    other.faulted === true || steps.some((s) => s.kind === 'set-fault' && s.node === other.node);
  if (otherFaultedAfter) {
    steps.push({
      kind: 'clear-fault',
      node: other.node,
      reason: `${other.node} comes back as BACKUP (its priority is now the lower)`,
    });
  }
  const otherStoppedAfter =
    !other.running || steps.some((s) => s.kind === 'stop-keepalived' && s.node === other.node);
  if (otherStoppedAfter) {
    steps.push({
      kind: 'start-keepalived',
      node: other.node,
      reason: `${other.node} comes back as BACKUP (its priority is now the lower)`,
    });
  }
  return steps;
}

function priorityStep(node: string, priority: number, why: string): VipStep {
  return { kind: 'set-priority', node, priority, reason: `priority ${priority} on ${node} ${why}` };
}

export function describeStep(s: VipStep): string {
  switch (s.kind) {
    case 'set-priority':
      return `set priority ${s.priority} on ${s.node} (${s.reason})`;
    default:
      return `${s.kind} on ${s.node} (${s.reason})`;
  }
}
