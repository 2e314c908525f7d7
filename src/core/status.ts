// The UpgradeRequest's status as people read it: progress in percent, the
// steps done, the current message and an estimated completion time (task
// list 3.3.3, 3.3.4). Pure.
import type { Step } from './actions.js';
import type { UpgradeContext } from './machine.js';
import { isTerminal, type Phase } from './phases.js';

/** Where each forward phase starts and ends on the 0-100 scale, and how many steps it usually takes. */
const SPAN: Partial<Record<Phase, { from: number; to: number; steps: number }>> = {
  IDLE: { from: 0, to: 0, steps: 1 },
  PREPARE: { from: 0, to: 5, steps: 3 },
  BACKUP: { from: 5, to: 20, steps: 2 },
  UPGRADE_BACKUP: { from: 20, to: 50, steps: 8 },
  VIP_SWITCH: { from: 50, to: 60, steps: 1 },
  UPGRADE_MASTER: { from: 60, to: 88, steps: 7 },
  VERIFY: { from: 88, to: 100, steps: 5 },
};

export interface ProgressInput {
  readonly ctx: UpgradeContext;
  /** Steps finished since the current phase was entered. */
  readonly stepsInPhase: number;
  /** Progress shown before a rollback started, to count the rollback from. */
  readonly progressBefore: number;
}

export function progressPercent(p: ProgressInput): number {
  const { phase } = p.ctx;
  if (isTerminal(phase)) return 100;
  if (phase === 'ROLLBACK') {
    // A rollback retraces what was done; it moves from where it started to 100.
    const start = p.progressBefore;
    return Math.min(99, Math.round(start + ((100 - start) * Math.min(p.stepsInPhase, 10)) / 12));
  }
  const span = SPAN[phase]!;
  const within = Math.min(p.stepsInPhase, span.steps) / span.steps;
  return Math.min(99, Math.round(span.from + (span.to - span.from) * within));
}

/** Remaining time from the pace so far; null until there is a pace to go by. */
export function estimatedCompletion(
  startedAtMs: number | null,
  nowMs: number,
  percent: number,
): Date | null {
  if (startedAtMs === null || percent <= 0 || percent >= 100) return null;
  const elapsed = nowMs - startedAtMs;
  return new Date(nowMs + (elapsed / percent) * (100 - percent));
}

export function stepLabel(step: Step, node: string | null): string {
  return node ? `${step}@${node}` : step;
}
