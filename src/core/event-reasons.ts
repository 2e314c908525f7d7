// Every Event reason the operator records, in one place. Kubernetes asks for
// UpperCamelCase reasons ("a short, machine understandable string", like
// Scheduled or BackOff): `kubectl get events`, alerting rules and GitOps
// tools match on them, so they must be stable words, not phase names in
// capitals. The reconciler and the Kubernetes source's own phase-change
// Events both take them from here; test/unit/event-reasons.test.ts checks
// every one, and that no recordEvent call in src/ passes a reason from
// anywhere else.
import { isTerminal, type Phase } from './phases.js';

/**
 * UpperCamelCase: a capital, then lower case or digits, word by word
 * (stricter than /^[A-Z][A-Za-z0-9]*$/, which would let PREPARE through).
 */
export const EVENT_REASON_RE = /^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$/;

/** Reasons of Events that are not about one phase. */
export const REASON = {
  /** A halt's cause is gone; the upgrade goes on. */
  Resumed: 'Resumed',
  /** A user request (cancel, rollback) the state machine refused. */
  Refused: 'Refused',
  /** Cancelled (or deleted) before the upgrade started. */
  Cancelled: 'Cancelled',
  /** The request cannot start (its pair or package is missing or wrong). */
  CannotStart: 'CannotStart',
} as const;

/**
 * The reasons of a halt (the Stalled condition's reason and the Warning
 * Event's): why the operator cannot proceed without help.
 */
export const HALT_REASONS = [
  'Halted',
  'SplitBrain',
  'PrimaryDown',
  'ComponentDown',
  'StepBudgetSpent',
  'WaitBoundReached',
  /** A node stopped answering past the unreachable grace mid-upgrade (src/core/lost-node.ts). */
  'NodeUnreachable',
] as const;
export type HaltReason = (typeof HALT_REASONS)[number];

/** PREPARE → PhasePrepare while running; COMPLETE → UpgradeComplete, FAILED → UpgradeFailed at the end. */
export function phaseEventReason(phase: Phase): string {
  const camel = phase
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
  return isTerminal(phase) ? `Upgrade${camel}` : `Phase${camel}`;
}
