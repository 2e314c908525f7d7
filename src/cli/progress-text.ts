// How `pairshift upgrade progress` shows an upgrade to a person: one line
// (a log, a pipe, a CI job) or a small block redrawn in place on a terminal.
// Pure: the answer (and the clock, for the block's footer) in, text out.

import { formatDuration } from '../config/duration.js';

/** The fields of GET /api/v1/upgrade/progress/{id} shown here (src/api/schemas.ts). */
export interface Progress {
  upgrade_id: string;
  pair: string;
  target_version: string;
  phase: string;
  progress_percent: number;
  current_step: string | null;
  message: string | null;
  estimated_completion_time?: string | null;
  downtime?: {
    http_longest_ms: number;
    http_total_ms: number;
    budget_ms: number;
    within_budget: boolean;
  } | null;
  /** Absent from an API older than the field: read as "not halted". */
  halted?: { reason: string; message: string; since: string | null } | null;
}

export function progressLine(p: Progress): string {
  const step = p.current_step ? `, step ${p.current_step}` : '';
  const halt = p.halted ? ` HALTED (${p.halted.reason}: ${p.halted.message})` : '';
  const msg = p.message && !p.halted ? ` — ${p.message}` : '';
  return `${p.upgrade_id}: ${p.pair} -> ${p.target_version}  ${p.phase} ${p.progress_percent}%${step}${halt}${msg}`;
}

const BAR_WIDTH = 20;

function bar(percent: number): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

function downtimeText(d: Progress['downtime']): string {
  if (!d) return 'not measured yet';
  const verdict = d.within_budget ? 'within' : 'OVER';
  return `longest ${d.http_longest_ms} ms, total ${d.http_total_ms} ms (${verdict} the budget of ${formatDuration(d.budget_ms)})`;
}

export interface BlockFooter {
  /** When this answer was read. */
  readonly at: Date;
  /** Left of --timeout, when there is one. */
  readonly timeoutLeftMs: number | null;
}

/**
 * The terminal view: phase, progress, current step, why it waits or halted,
 * the measured downtime. The API does not report the nodes' roles, versions
 * or health in the progress answer, so they are not shown (the message
 * often names them).
 */
export function statusBlock(p: Progress, footer: BlockFooter): string[] {
  const rows: [string, string][] = [
    ['upgrade', `${p.upgrade_id}  ${p.pair} -> ${p.target_version}`],
    ['phase', `${p.phase}  ${bar(p.progress_percent)} ${p.progress_percent}%`],
    ['step', p.current_step ?? '-'],
  ];
  if (p.halted) {
    const since = p.halted.since ? ` (since ${p.halted.since})` : '';
    rows.push(['HALTED', `${p.halted.reason}: ${p.halted.message}${since}`]);
  }
  if (p.message) rows.push(['message', p.message]);
  rows.push(['downtime', downtimeText(p.downtime)]);
  if (p.estimated_completion_time) rows.push(['ends at', p.estimated_completion_time]);
  const left =
    footer.timeoutLeftMs === null
      ? ''
      : `; gives up in ${formatDuration(Math.max(0, Math.ceil(footer.timeoutLeftMs / 1000) * 1000))}`;
  rows.push(['looked', `${footer.at.toISOString().slice(11, 19)} UTC${left}`]);
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v.replace(/\s*\n\s*/g, ' ')}`);
}

/** Clips each line to the terminal's width so that a redraw moves up exactly as many rows. */
export function fitToWidth(lines: string[], columns: number | undefined): string[] {
  if (!columns || columns < 10) return lines;
  return lines.map((l) => (l.length > columns ? `${l.slice(0, columns - 1)}…` : l));
}
