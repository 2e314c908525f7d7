// Time for drivers, injected like the shell: `now` for deadlines and
// durations, `sleep` for polling, `date` for the timestamps written into
// records. Tests pass a virtual clock so a 30 s budget runs out in
// microseconds, and the code that waits is the code that ships.

export interface DriverClock {
  /** Milliseconds on a Date.now-like scale, for deadlines and durations. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Wall-clock time for record timestamps (comparable with other records). */
  readonly date: () => Date;
}

/**
 * Real time. `now` counts from the process's time origin with the monotonic
 * clock, so a wall-clock step (NTP) never shortens a deadline or makes a
 * duration negative; it may drift from the wall clock over a long uptime,
 * which is why record timestamps come from `date`.
 */
export const realClock: DriverClock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
  date: () => new Date(),
};

/**
 * The clock from optional `now`/`sleep` deps (the form health and services
 * take), real time for what is missing. A given `now` is Date.now-like (as
 * the executor's), so it dates the records too.
 */
export function clockFrom(deps: {
  readonly now?: (() => number) | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}): DriverClock {
  const now = deps.now;
  return {
    now: now ?? realClock.now,
    sleep: deps.sleep ?? realClock.sleep,
    date: now ? () => new Date(now()) : realClock.date,
  };
}
