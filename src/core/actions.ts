// What the planner asks for next. Actions are data: they can be logged,
// shown in a dry run and checked by tests. Each carries the reason it was
// chosen, in words a person reading the upgrade's log understands. The
// executor (reconciler/execute.ts) turns them into idempotent driver calls.
import type { HaltReason } from './event-reasons.js';
import type { UpgradeEvent } from './machine.js';

export type Step =
  | 'PAUSE_RSYNC'
  | 'LOCK_CONFIG'
  | 'BACKUP'
  | 'RUN_MIGRATIONS'
  | 'WAIT_REPLAY'
  | 'STOP_SERVICES'
  | 'INSTALL_PACKAGE'
  | 'START_SERVICES'
  | 'CHECK_HEALTH'
  | 'SWITCHOVER'
  | 'RESUME_RSYNC'
  | 'UNLOCK_CONFIG'
  | 'CHECK_CONFIG'
  | 'RESTORE'
  | 'REMOVE_TEMP_FILES'
  // Bring-backs (core/repair.ts): a component that died by itself, started
  // again ensure-style; each is counted per node in the journal and bounded.
  | 'START_DATABASE'
  | 'START_KEEPALIVED'
  | 'BRING_BACK_SERVICES';

export type Action =
  /** Feed an event to the state machine (a phase change). */
  | { readonly kind: 'event'; readonly event: UpgradeEvent; readonly reason: string }
  /** Do one step on a node (or on the pair when node is null). */
  | {
      readonly kind: 'step';
      readonly step: Step;
      readonly node: string | null;
      readonly reason: string;
    }
  /** Nothing to do until the world changes or the time comes. */
  | { readonly kind: 'wait'; readonly untilMs: number | null; readonly reason: string }
  /**
   * The operator cannot go on safely without help, or until the pair changes
   * by itself (split brain, a component it must not or cannot bring back).
   * Nothing is done on the nodes; the status says Stalled=True with the
   * cause, what the operator did and what a person must do, and the next
   * round looks again, so the upgrade resumes on its own once the cause is
   * gone.
   */
  | {
      readonly kind: 'halt';
      /** What is wrong, naming the node and component ("both a and b hold the VIP"). */
      readonly cause: string;
      /** What the operator did about it ("stopped acting before SWITCHOVER on b"). */
      readonly did: string;
      /** What a person must do ("restore VRRP between the nodes, or cancel"). */
      readonly todo: string;
      /** The Stalled condition's reason, one CamelCase word ("SplitBrain", "StepBudgetSpent"). */
      readonly code: HaltReason;
      readonly reason: string;
    }
  /** The upgrade is finished and tidied up. */
  | { readonly kind: 'done'; readonly reason: string };

export const step = (s: Step, node: string | null, reason: string): Action => ({
  kind: 'step',
  step: s,
  node,
  reason,
});

export const event = (e: UpgradeEvent, reason: string): Action => ({
  kind: 'event',
  event: e,
  reason,
});

export const wait = (reason: string, untilMs: number | null = null): Action => ({
  kind: 'wait',
  untilMs,
  reason,
});

export const halt = (
  cause: string,
  did: string,
  todo: string,
  code: HaltReason = 'Halted',
): Action => ({
  kind: 'halt',
  cause,
  did,
  todo,
  code,
  reason: `halted: ${cause}; ${did}; ${todo}`,
});

export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'event':
      return `${a.event.type}: ${a.reason}`;
    case 'step':
      return `${a.step}${a.node ? ` on ${a.node}` : ''}: ${a.reason}`;
    case 'wait':
      return `wait: ${a.reason}`;
    case 'halt':
      return a.reason;
    case 'done':
      return `done: ${a.reason}`;
  }
}
