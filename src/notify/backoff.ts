// When a failed delivery is tried again: exponential backoff with full
// jitter (a random delay from 0 to base·2^(n-1), capped), so receivers
// coming back are not hit by every operator at once; bounded by a number of
// attempts and by the age of the delivery, whichever comes first. Pure: the
// random source and the clock are arguments.

export interface RetryPolicy {
  /** Attempts in all, the first one included. */
  readonly maxAttempts: number;
  /** No attempt starts later than this after the event was queued. */
  readonly maxAgeMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * Defaults that outlast a receiver down for minutes: 20 attempts, whose
 * waits (full jitter, capped at 60 s) add up to about 7 minutes on average,
 * within 15 minutes in all.
 */
export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 20,
  maxAgeMs: 15 * 60_000,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
};

/** The cap of the delay after the attempt-th failed attempt (1-based). */
export function delayCap(attempt: number, p: RetryPolicy): number {
  // 2^(attempt-1) overflows nothing below 2^1023; min() keeps it sane.
  return Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.max(0, attempt - 1));
}

export type RetryDecision =
  | { readonly do: 'retry'; readonly afterMs: number }
  | { readonly do: 'give-up'; readonly why: string };

/**
 * After `attempts` failed attempts of a delivery queued at queuedAtMs:
 * wait and retry, or give up (attempts spent, or the next attempt would
 * start past maxAge).
 */
export function nextRetry(
  attempts: number,
  queuedAtMs: number,
  nowMs: number,
  p: RetryPolicy,
  random: () => number = Math.random,
): RetryDecision {
  if (attempts >= p.maxAttempts) {
    return { do: 'give-up', why: `${attempts} attempt(s) failed` };
  }
  const afterMs = Math.floor(random() * delayCap(attempts, p));
  if (nowMs + afterMs - queuedAtMs > p.maxAgeMs) {
    return {
      do: 'give-up',
      why: `${attempts} attempt(s) failed in ${Math.round((nowMs - queuedAtMs) / 1000)} s; the next would pass the ${Math.round(p.maxAgeMs / 1000)} s bound`,
    };
  }
  return { do: 'retry', afterMs };
}
