// `pairshift upgrade progress ID [--watch]`: reads an upgrade's progress
// until it ends and turns the end into an exit code a pipeline can gate on
// (exit-codes.ts): COMPLETE 0; FAILED, TIMEOUT, UNREACHABLE or CANCELLED
// UPGRADE_FAILED; a halt (the Stalled condition, `halted` in the answer)
// HALTED; --timeout passing first WAIT_TIMEOUT, like `kubectl rollout status
// --timeout`. Without --watch it is one look judged by the same rule (a
// running upgrade is 0), as `kubectl argo rollouts status --watch=false`.
//
// A watch outlives short API outages (an operator restart, a rolling
// deploy): no answer, or a 502/503/504, is retried with growing, jittered
// pauses for up to --reconnect-for, then ends API_UNREACHABLE. Output: one
// line per change when stdout is not a terminal (a log stays readable and
// diffable), a small block redrawn in place when it is; -o json|yaml print
// each changed answer whole (JSON one per line, YAML as documents).

import { setTimeout as delay } from 'node:timers/promises';
import { stringify as stringifyYaml } from 'yaml';
import { formatDuration } from '../config/duration.js';
import { isPhase } from '../core/phases.js';
import { type Answer, ok, problemLine } from './api-client.js';
import { describeError } from './errors.js';
import { CliError, EXIT, type ExitCode, exitCodeForUpgrade } from './exit-codes.js';
import { machineText, type OutputFormat } from './output.js';
import { fitToWidth, type Progress, progressLine, statusBlock } from './progress-text.js';

export interface FollowOptions {
  readonly upgradeId: string;
  /** One GET of the progress; rejects with a CliError when the API cannot be reached. */
  readonly read: (silenceMs: number) => Promise<Answer>;
  readonly watch: boolean;
  readonly intervalMs: number;
  /** 0: no limit. */
  readonly timeoutMs: number;
  /** How long a watch keeps trying an API that does not answer. */
  readonly reconnectForMs: number;
  readonly format: OutputFormat;
  /** stdout is a terminal of this width (redraw), or null (a line per change). */
  readonly terminal: { readonly columns: number | undefined } | null;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Who speaks on stderr and how to read the logs (default: pairshift's own). */
  readonly voice?: { readonly program: string; readonly logsCommand: string };
  readonly nowMs?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/** Answers that say "the API is there but cannot answer now": retried like no answer. */
const TRANSIENT_STATUS = new Set([502, 503, 504]);
/** The longest the API may stay silent on one poll before that poll counts as unreachable. */
const POLL_SILENCE_MS = 15_000;
const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 8_000;

const ENDS = (p: Progress) =>
  `${p.phase} ${p.progress_percent}%${p.current_step ? `, step ${p.current_step}` : ''}`;

export async function followProgress(o: FollowOptions): Promise<ExitCode> {
  const now = o.nowMs ?? (() => performance.now());
  const sleep = o.sleep ?? ((ms: number) => delay(ms));
  const random = o.random ?? Math.random;
  const started = now();
  const deadline = o.timeoutMs > 0 ? started + o.timeoutMs : Number.POSITIVE_INFINITY;
  const show = shower(o);
  const voice = o.voice ?? { program: 'pairshift', logsCommand: 'pairshift upgrade logs' };
  let last: Progress | null = null;
  let downSince: number | null = null;
  let retryMs = FIRST_RETRY_MS;

  const timedOut = (why: string): ExitCode => {
    o.err(
      `${voice.program}: timed out after ${formatDuration(o.timeoutMs)} waiting for upgrade ${o.upgradeId} to end: ${why}\n`,
    );
    return EXIT.WAIT_TIMEOUT;
  };

  for (;;) {
    const left = deadline - now();
    let answer: Answer;
    try {
      answer = await o.read(Math.max(1000, Math.min(POLL_SILENCE_MS, left)));
      // (one look without --watch reports a 5xx like every command: exit 1)
      if (o.watch && TRANSIENT_STATUS.has(answer.status))
        throw new CliError(problemLine(answer), EXIT.API_UNREACHABLE);
    } catch (e) {
      if (!(e instanceof CliError) || e.exitCode !== EXIT.API_UNREACHABLE || !o.watch) throw e;
      const t = now();
      if (downSince === null) {
        downSince = t;
        o.err(
          `${voice.program}: ${describeError(e)}; trying again for up to ${formatDuration(o.reconnectForMs)}\n`,
        );
      }
      const lost = `the API has not answered for ${formatDuration(Math.round((t - downSince) / 1000) * 1000)}${last ? `; last seen in ${ENDS(last)}` : ''}`;
      if (t >= deadline) return timedOut(lost);
      const budget = downSince + o.reconnectForMs - t;
      if (budget <= 0)
        throw new CliError(
          `${e.message}: gave up after trying for ${formatDuration(o.reconnectForMs)}`,
          EXIT.API_UNREACHABLE,
          { cause: e },
        );
      // Jittered (75-125 %) so that many watchers do not return in step.
      const pause = Math.min(retryMs * (0.75 + random() / 2), budget, deadline - t);
      retryMs = Math.min(retryMs * 2, LONGEST_RETRY_MS);
      await sleep(pause);
      continue;
    }
    if (downSince !== null) {
      o.err(
        `${voice.program}: the API answers again (after ${formatDuration(Math.round((now() - downSince) / 1000) * 1000)})\n`,
      );
      downSince = null;
      retryMs = FIRST_RETRY_MS;
    }
    const p = ok(answer) as unknown as Progress;
    last = p;
    show(p, deadline === Number.POSITIVE_INFINITY ? null : deadline - now());
    // A phase this CLI does not know (a newer operator) is waited through.
    const verdict = isPhase(p.phase) ? exitCodeForUpgrade(p.phase, Boolean(p.halted)) : null;
    if (verdict !== null) {
      if (verdict !== EXIT.OK) o.err(`${voice.program}: ${why(p, voice.logsCommand)}\n`);
      return verdict;
    }
    if (!o.watch) return EXIT.OK;
    if (now() >= deadline) return timedOut(`it is in ${ENDS(p)}`);
    await sleep(Math.max(0, Math.min(o.intervalMs, deadline - now())));
  }
}

/** One line on stderr saying why the command ends non-zero. */
function why(p: Progress, logsCommand: string): string {
  if (p.halted)
    return `upgrade ${p.upgrade_id} is halted in ${ENDS(p)}: ${p.halted.reason}: ${p.halted.message} (the operator waits; see ${logsCommand} ${p.upgrade_id})`;
  return `upgrade ${p.upgrade_id} ended in ${p.phase}${p.message ? `: ${p.message}` : ''}`;
}

/** Shows each answer in the chosen way; a text line or document only when it changed. */
function shower(o: FollowOptions): (p: Progress, timeoutLeftMs: number | null) => void {
  let lastShown = '';
  let drawnRows = 0;
  return (p, timeoutLeftMs) => {
    if (o.format === 'text' && o.terminal && o.watch) {
      // Redrawn on every look (its footer says when it looked): up over the
      // block drawn before, clear to the end of the screen, draw anew.
      const rows = fitToWidth(
        statusBlock(p, { at: new Date(), timeoutLeftMs }),
        o.terminal.columns,
      );
      o.out(`${drawnRows ? `\x1b[${drawnRows}F\x1b[J` : ''}${rows.join('\n')}\n`);
      drawnRows = rows.length;
      return;
    }
    // One look prints the answer as every read command does; a watch
    // prints a stream: JSON one answer per line, YAML one document each.
    const text =
      o.format === 'text'
        ? `${progressLine(p)}\n`
        : !o.watch
          ? machineText(o.format, p)
          : o.format === 'json'
            ? `${JSON.stringify(p)}\n`
            : `---\n${stringifyYaml(p)}`;
    if (text !== lastShown) o.out(text);
    lastShown = text;
  };
}
