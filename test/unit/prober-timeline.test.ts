import fc from 'fast-check';
import { dueSlot } from '../../src/prober/schedule.js';
import {
  blindWindows,
  computeOutages,
  judgeProbe,
  LATE_AFTER_DEADLINE_MS,
  type ProbeSample,
  summarizeLatency,
} from '../../src/prober/timeline.js';

// Probes at jittered start times, strictly after one another, and an end at
// or after the last start.
const timeline = fc
  .array(fc.record({ gap: fc.double({ min: 0, max: 100, noNaN: true }), up: fc.boolean() }), {
    maxLength: 200,
  })
  .chain((steps) =>
    fc.double({ min: 0, max: 100, noNaN: true }).map((tail) => {
      let t = 0;
      const samples: ProbeSample[] = steps.map(({ gap, up }) => {
        t += gap;
        return { startMs: t, up };
      });
      return { samples, endMs: t + tail };
    }),
  );

// An independent formula for the total: each down probe "owns" the time up
// to the next probe's start (or the end of observation for the last one).
function totalByProbeOwnership(samples: ProbeSample[], endMs: number): number {
  const sorted = [...samples].sort((a, b) => a.startMs - b.startMs);
  let total = 0;
  sorted.forEach((s, i) => {
    if (!s.up) total += (sorted[i + 1]?.startMs ?? endMs) - s.startMs;
  });
  return total;
}

describe('computeOutages', () => {
  it('bounds: longest <= total <= observed duration', () => {
    fc.assert(
      fc.property(timeline, ({ samples, endMs }) => {
        const r = computeOutages(samples, endMs);
        expect(r.longestOutageMs).toBeLessThanOrEqual(r.totalOutageMs + 1e-9);
        expect(r.totalOutageMs).toBeLessThanOrEqual(r.observedMs + 1e-9);
        expect(r.ok + r.failed).toBe(samples.length);
      }),
    );
  });

  it('total equals the time owned by down probes (independent formula)', () => {
    fc.assert(
      fc.property(timeline, ({ samples, endMs }) => {
        const r = computeOutages(samples, endMs);
        expect(r.totalOutageMs).toBeCloseTo(totalByProbeOwnership(samples, endMs), 6);
      }),
    );
  });

  it('windows are ordered, disjoint, maximal and cover every down probe', () => {
    fc.assert(
      fc.property(timeline, ({ samples, endMs }) => {
        const r = computeOutages(samples, endMs);
        for (let i = 1; i < r.outages.length; i++) {
          // strictly after: an up probe starts at the end of the previous window
          expect(r.outages[i]!.startMs).toBeGreaterThanOrEqual(r.outages[i - 1]!.endMs);
        }
        expect(r.outages.reduce((n, w) => n + w.downProbes, 0)).toBe(r.failed);
        // maximal: each window ends at an up probe's start, or is the open last one
        r.outages.forEach((w, i) => {
          if (w.open) {
            expect(i).toBe(r.outages.length - 1);
            expect(w.endMs).toBe(endMs);
          } else {
            expect(samples.some((s) => s.up && s.startMs === w.endMs)).toBe(true);
          }
          expect(samples.some((s) => !s.up && s.startMs === w.startMs)).toBe(true);
        });
      }),
    );
  });

  it('is independent of the order results arrived in', () => {
    fc.assert(
      fc.property(
        timeline.chain(({ samples, endMs }) =>
          fc.shuffledSubarray(samples, { minLength: samples.length }).map((shuffled) => ({
            samples,
            shuffled,
            endMs,
          })),
        ),
        ({ samples, shuffled, endMs }) => {
          // Equal start times can swap places; only distinct ones are well ordered.
          fc.pre(new Set(samples.map((s) => s.startMs)).size === samples.length);
          expect(computeOutages(shuffled, endMs)).toEqual(computeOutages(samples, endMs));
        },
      ),
    );
  });

  it('all up gives zero outage and no windows', () => {
    fc.assert(
      fc.property(timeline, ({ samples, endMs }) => {
        const allUp = samples.map((s) => ({ ...s, up: true }));
        const r = computeOutages(allUp, endMs);
        expect(r).toMatchObject({ failed: 0, longestOutageMs: 0, totalOutageMs: 0, outages: [] });
      }),
    );
  });

  it('a single gap of k failures at a fixed rate measures k / rate exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 1000 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 100 }),
        (rateHz, before, k, after) => {
          const period = 1000 / rateHz;
          const n = before + k + after;
          const samples = Array.from({ length: n }, (_, i) => ({
            startMs: i * period,
            up: i < before || i >= before + k,
          }));
          const r = computeOutages(samples, n * period);
          expect(r.outages).toHaveLength(1);
          expect(r.longestOutageMs).toBeCloseTo((k * 1000) / rateHz, 6);
          expect(r.totalOutageMs).toBeCloseTo((k * 1000) / rateHz, 6);
          expect(r.outages[0]).toMatchObject({ downProbes: k, open: false });
          expect(r.outages[0]!.startMs).toBeCloseTo(before * period, 6);
        },
      ),
    );
  });

  it('with start jitter below half a period the gap is within one period of k / rate', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.double({ min: 0, max: 0.49, noNaN: true }), { minLength: 80, maxLength: 80 }),
        (rateHz, k, jitter) => {
          const period = 1000 / rateHz;
          const samples = jitter.map((j, i) => ({
            startMs: (i + j) * period,
            up: i < 10 || i >= 10 + k,
          }));
          const r = computeOutages(samples, 80 * period);
          expect(Math.abs(r.longestOutageMs - k * period)).toBeLessThan(period);
        },
      ),
    );
  });

  it('a run still down at the end is open and lasts until the end of observation', () => {
    const r = computeOutages(
      [
        { startMs: 0, up: true },
        { startMs: 20, up: false },
        { startMs: 40, up: false },
      ],
      55,
    );
    expect(r.outages).toEqual([
      { startMs: 20, endMs: 55, durationMs: 35, downProbes: 2, open: true },
    ]);
    expect(r.observedMs).toBe(55);
  });

  it('measures from the first down start to the next up start (worked example)', () => {
    const r = computeOutages(
      [
        { startMs: 0, up: true },
        { startMs: 20, up: false },
        { startMs: 40, up: false },
        { startMs: 60, up: true },
        { startMs: 80, up: false },
        { startMs: 100, up: true },
      ],
      120,
    );
    expect(r.outages.map((w) => [w.startMs, w.endMs])).toEqual([
      [20, 60],
      [80, 100],
    ]);
    expect(r).toMatchObject({ longestOutageMs: 40, totalOutageMs: 60, probes: 6, ok: 3 });
  });

  it('no probes: nothing observed', () => {
    expect(computeOutages([], 10)).toMatchObject({ probes: 0, observedMs: 0, outages: [] });
  });

  it('rejects an end before the last probe (a caller bug, not a measurement)', () => {
    expect(() => computeOutages([{ startMs: 50, up: true }], 10)).toThrow(/before the last probe/);
  });
});

describe('blindWindows', () => {
  it('a regular schedule is never blind, however it ends', () => {
    const samples = Array.from({ length: 100 }, (_, i) => ({ startMs: i * 50, up: i % 3 === 0 }));
    expect(blindWindows(samples, 50, 99 * 50 + 60)).toEqual([]);
  });

  it('skipped slots in the middle and at the end: from one period after a probe to the next start', () => {
    const at = [0, 50, 100, 600, 650];
    const samples = at.map((startMs) => ({ startMs, up: true }));
    expect(blindWindows(samples, 50, 1000)).toEqual([
      { startMs: 150, endMs: 600, durationMs: 450 },
      { startMs: 700, endMs: 1000, durationMs: 300 },
    ]);
  });

  it('within every gap and nowhere else; never longer than the observed span', () => {
    fc.assert(
      fc.property(timeline, ({ samples, endMs }) => {
        const period = 20;
        const w = blindWindows(samples, period, endMs);
        const first = Math.min(...samples.map((s) => s.startMs));
        const total = w.reduce((n, x) => n + x.durationMs, 0);
        if (samples.length > 0) expect(total).toBeLessThanOrEqual(endMs - first + 1e-9);
        for (const x of w) {
          expect(x.durationMs).toBeGreaterThan(period - 1e-9);
          // no probe starts strictly inside a blind window
          expect(samples.some((s) => s.startMs > x.startMs && s.startMs < x.endMs)).toBe(false);
        }
      }),
    );
  });
});

describe('dueSlot (fixed-rate schedule)', () => {
  it('never runs a slot twice or early, and counts the skipped ones', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 1000 }),
        fc.array(fc.double({ min: 0, max: 200, noNaN: true }), { maxLength: 100 }),
        (rateHz, waits) => {
          const period = 1000 / rateHz;
          let now = 0;
          let last = -1;
          let ran = 0;
          let skipped = 0;
          for (const w of waits) {
            now += w;
            const due = dueSlot(0, period, last, now);
            if (!due) continue;
            expect(due.slot).toBeGreaterThan(last);
            expect(due.slot * period).toBeLessThanOrEqual(now);
            expect(now).toBeLessThan((due.slot + 1) * period);
            last = due.slot;
            ran++;
            skipped += due.skipped;
          }
          // every slot up to the last one run was either run or skipped
          expect(ran + skipped).toBe(last + 1);
        },
      ),
    );
  });

  it('a timer firing a little late runs the next slot and skips nothing', () => {
    expect(dueSlot(0, 20, 4, 101.5)).toEqual({ slot: 5, skipped: 0 });
    expect(dueSlot(0, 20, 5, 119.9)).toBeUndefined();
  });
});

describe('summarizeLatency', () => {
  it('nearest-rank percentiles, bounded by the extremes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { minLength: 1 }),
        (xs) => {
          const l = summarizeLatency(xs)!;
          expect(l.p50).toBeLessThanOrEqual(l.p99);
          expect(l.p99).toBeLessThanOrEqual(l.max);
          expect(l.max).toBe(Math.max(...xs));
          expect(xs).toContain(l.p50);
        },
      ),
    );
  });
  it('worked example and the empty case', () => {
    expect(summarizeLatency([5, 1, 3, 2, 4])).toEqual({ p50: 3, p99: 5, max: 5 });
    expect(summarizeLatency([])).toBeUndefined();
  });
});

describe('judgeProbe', () => {
  const T = 300;
  it('an answer in time is up, an error or a timeout that fired on time is down', () => {
    expect(judgeProbe({ up: true, latencyMs: 5 }, T)).toBe('up');
    expect(judgeProbe({ up: true, latencyMs: T }, T)).toBe('up');
    expect(judgeProbe({ up: false, latencyMs: 2 }, T)).toBe('down');
    expect(judgeProbe({ up: false, latencyMs: T + 3 }, T)).toBe('down');
  });
  it('an answer handled just after the deadline is down', () => {
    expect(judgeProbe({ up: true, latencyMs: T + 1 }, T)).toBe('down');
    expect(judgeProbe({ up: true, latencyMs: T + LATE_AFTER_DEADLINE_MS }, T)).toBe('down');
  });
  it('a result handled long after the deadline says nothing (the prober was busy)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.double({ min: 0.01, max: 60_000, noNaN: true }), (up, over) => {
        const latencyMs = T + LATE_AFTER_DEADLINE_MS + over;
        expect(judgeProbe({ up, latencyMs }, T)).toBe('late');
      }),
    );
  });
});
