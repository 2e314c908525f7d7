// Time for drivers, injected like the shell: `now` for deadlines, durations
// and record timestamps, `sleep` for polling. Tests pass a virtual clock so a
// 30 s budget runs out in microseconds, and the code that waits is the code
// that ships.

export interface DriverClock {
  /** Milliseconds since the epoch (Date.now-like), but monotonic by default. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/**
 * Real time. `now` counts from the process's time origin with the monotonic
 * clock, so a wall-clock step (NTP) never shortens a deadline or makes a
 * duration negative.
 */
export const realClock: DriverClock = {
  now: () => performance.timeOrigin + performance.now(),
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
};

/** The clock from optional `now`/`sleep` deps (the form health and services take), real time for what is missing. */
export function clockFrom(deps: {
  readonly now?: (() => number) | undefined;
  readonly sleep?: ((ms: number) => Promise<void>) | undefined;
}): DriverClock {
  return { now: deps.now ?? realClock.now, sleep: deps.sleep ?? realClock.sleep };
}
