// A fixed-rate clock for probes. Slot n is due at t0 + n * period, so the
// schedule never drifts however long probes take: a slow probe does not move
// the next slot (probes run concurrently up to a cap, see prober.ts).
//
// When the prober itself falls behind (its event loop was blocked for more
// than a period) the overdue slots are skipped, not run in a burst: a burst
// would put several probes at one instant and tell us nothing the first one
// did not. Skipped slots are counted in the report; they are evidence about
// the prober, not about the service, so they are neither up nor down.

/** Which slot to run when the timer fires at `nowMs`. Pure. */
export function dueSlot(
  t0Ms: number,
  periodMs: number,
  lastSlot: number,
  nowMs: number,
): { slot: number; skipped: number } | undefined {
  const due = Math.floor((nowMs - t0Ms) / periodMs);
  if (due <= lastSlot) return undefined;
  return { slot: due, skipped: due - lastSlot - 1 };
}

export interface FixedRateClock {
  /** Stops scheduling; returns the monotonic time at which it stopped. */
  stop(): number;
  skippedSlots(): number;
}

export function runFixedRate(opts: {
  rateHz: number;
  now: () => number;
  onSlot: (slot: number, startMs: number) => void;
}): FixedRateClock {
  const periodMs = 1000 / opts.rateHz;
  const t0 = opts.now();
  let last = -1;
  let skipped = 0;
  let stoppedAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;

  const fire = () => {
    if (stoppedAt !== undefined) return;
    const now = opts.now();
    const due = dueSlot(t0, periodMs, last, now);
    if (due) {
      last = due.slot;
      skipped += due.skipped;
      opts.onSlot(due.slot, now);
    }
    // Aim at the next slot's exact time; timers fire late, never early
    // (and if one does fire early, dueSlot returns undefined and we re-arm).
    const wait = t0 + (last + 1) * periodMs - opts.now();
    timer = setTimeout(fire, Math.max(0, wait));
  };
  fire();
  return {
    stop() {
      if (stoppedAt === undefined) {
        stoppedAt = opts.now();
        if (timer) clearTimeout(timer);
      }
      return stoppedAt;
    },
    skippedSlots: () => skipped,
  };
}
