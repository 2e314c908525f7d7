// The one error policy: given what kind of failure happened (src/core/errors.ts),
// how many times in a row it has happened and the settings of the place that
// asks, decide what happens next. Every retry in pairshift is decided here:
// - the reconcile loop (a reconcile that threw),
// - the reconciler's step retries (a step that failed; the planner gives up),
// - building an upgrade's runtime (an SSH hiccup at start),
// - the Kubernetes source (a 409 on a write, a failing watch).
// Two product rules keep their own counts from the task list and are not
// decided here: 2.2.5 "health check retried up to 3 times, 10 s apart"
// (src/drivers/health/health.ts, settings.healthCheckRetries) and 2.4.6 "VIP
// switch retried at most 2 times" (settings.vipSwitchRetries, the switchover).
// Pure: the random source for jitter is an argument, so tests are exact.
import type { ErrorKind } from './errors.js';

export interface RetrySettings {
  /** Delay before the first retry of a transient failure. */
  readonly baseMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
  /** Failures in a row after which we give up (Infinity: the loop never gives up on transient errors). */
  readonly maxAttempts: number;
  /** Fraction of the delay that is random (0: none, 0.5: between half and all of it). */
  readonly jitter: number;
  /** How long to wait before looking again at something that is 'waiting'. */
  readonly waitMs?: number;
}

export type Decision =
  /** Try the same thing again after this long. */
  | { readonly do: 'retry'; readonly afterMs: number; readonly attempt: number }
  /** Someone else changed what we were changing: read it again, then retry (no delay needed). */
  | { readonly do: 'reread'; readonly afterMs: number; readonly attempt: number }
  /** Not an error yet: look again after this long. */
  | { readonly do: 'wait'; readonly afterMs: number; readonly attempt: number }
  /** Stop; `cause` says why in words fit for a status message. */
  | { readonly do: 'give-up'; readonly cause: string };

/** A random number in [0, 1): Math.random in production, a fixed sequence in tests. */
export type Random = () => number;

/** For callers that only need to know whether to give up. */
export const NO_JITTER: Random = () => 0;

/** Capped exponential backoff with jitter: in [d * (1 - jitter), d] where d = min(max, base * 2^(n-1)). */
export function backoffDelay(attempt: number, s: RetrySettings, random: Random): number {
  const full = Math.min(s.maxMs, s.baseMs * 2 ** Math.max(0, Math.min(attempt, 64) - 1));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(full * (1 - s.jitter * r));
}

/**
 * What to do after the `attempt`-th failure in a row (1 for the first) of
 * this kind. Terminal is never retried; the others are retried until
 * maxAttempts failures, then given up with the cause named.
 */
export function decide(
  kind: ErrorKind,
  attempt: number,
  s: RetrySettings,
  random: Random,
  what = 'the operation',
): Decision {
  if (kind === 'terminal')
    return { do: 'give-up', cause: `${what} failed and retrying will not help` };
  if (attempt >= s.maxAttempts) {
    return {
      do: 'give-up',
      cause: `${what} failed ${attempt} times in a row (at most ${s.maxAttempts})`,
    };
  }
  switch (kind) {
    case 'conflict':
      // The first re-read is at once; a conflict that keeps coming back backs
      // off like a transient failure, so two writers never spin.
      return {
        do: 'reread',
        afterMs: attempt <= 1 ? 0 : backoffDelay(attempt - 1, s, random),
        attempt,
      };
    case 'waiting':
      return { do: 'wait', afterMs: s.waitMs ?? s.baseMs, attempt };
    case 'transient':
      return { do: 'retry', afterMs: backoffDelay(attempt, s, random), attempt };
  }
}

const KINDS: ReadonlySet<string> = new Set(['transient', 'waiting', 'conflict', 'terminal']);

/**
 * The kind an error carries (DriverError, the sources' ResourceConflictError
 * and the other typed errors have a `kind`), or `fallback` for an error
 * that says nothing about itself.
 */
export function kindOf(err: unknown, fallback: ErrorKind): ErrorKind {
  const k = (err as { kind?: unknown } | null)?.kind;
  return typeof k === 'string' && KINDS.has(k) ? (k as ErrorKind) : fallback;
}
