// Outage arithmetic over a list of probe results. Pure: no clock, no I/O.
//
// Definitions (docs/prober.md repeats them for readers of the reports):
// - Probes are ordered by their start time. A probe is "up" or "down".
// - An outage is a maximal run of consecutive down probes.
// - Its length runs from the start of the run's first probe to the start of
//   the next up probe. The next up probe's start is the earliest moment we
//   have evidence of service again; the first down probe's start is the
//   earliest moment we have evidence of its absence. The error against the
//   real gap is therefore at most one probe period at each edge.
// - A run still down when observation ends is "open": it ends at `endMs`
//   (the moment the prober stopped scheduling), and is flagged so a reader
//   knows the service had not come back while we watched.
//
// Consequences the tests check: longest <= total <= endMs - first start;
// total equals the sum, over down probes, of the gap to the next probe's
// start (or to endMs for the last one); windows are disjoint and ordered.

export interface ProbeSample {
  /** Start of the probe, in ms on the prober's monotonic clock. */
  startMs: number;
  up: boolean;
}

export interface OutageWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
  /** Number of down probes in the run. */
  downProbes: number;
  /** True when the service was still down when observation ended. */
  open: boolean;
}

export interface OutageSummary {
  probes: number;
  ok: number;
  failed: number;
  longestOutageMs: number;
  totalOutageMs: number;
  /** From the first probe's start to endMs (0 without probes). */
  observedMs: number;
  outages: OutageWindow[];
}

export function computeOutages(samples: readonly ProbeSample[], endMs: number): OutageSummary {
  const sorted = [...samples].sort((a, b) => a.startMs - b.startMs);
  const last = sorted[sorted.length - 1];
  if (last !== undefined && endMs < last.startMs) {
    throw new Error(
      `observation end ${endMs} ms is before the last probe's start ${last.startMs} ms`,
    );
  }
  const outages: OutageWindow[] = [];
  let ok = 0;
  let runStart: number | undefined;
  let runCount = 0;
  for (const s of sorted) {
    if (s.up) {
      ok++;
      if (runStart !== undefined) {
        outages.push(window(runStart, s.startMs, runCount, false));
        runStart = undefined;
        runCount = 0;
      }
    } else {
      if (runStart === undefined) runStart = s.startMs;
      runCount++;
    }
  }
  if (runStart !== undefined) outages.push(window(runStart, endMs, runCount, true));

  let longest = 0;
  let total = 0;
  for (const w of outages) {
    total += w.durationMs;
    if (w.durationMs > longest) longest = w.durationMs;
  }
  const first = sorted[0];
  return {
    probes: sorted.length,
    ok,
    failed: sorted.length - ok,
    longestOutageMs: longest,
    totalOutageMs: total,
    observedMs: first === undefined ? 0 : endMs - first.startMs,
    outages,
  };
}

function window(startMs: number, endMs: number, downProbes: number, open: boolean): OutageWindow {
  return { startMs, endMs, durationMs: endMs - startMs, downProbes, open };
}

/** A stretch of time the prober has no evidence about (see blindWindows). */
export interface BlindWindow {
  startMs: number;
  endMs: number;
  durationMs: number;
}

/**
 * Where the prober was blind: gaps of more than two periods between the
 * starts of consecutive judged probes (slots it skipped because its own
 * event loop was busy, or probes handled too late to judge), from one
 * period after the earlier probe to the start of the next, and the same at
 * the end of the run. An outage that falls wholly inside such a gap is
 * invisible to this prober; one that starts before it runs through it.
 * Two probers on the same service can only be compared over the time
 * neither was blind (test/lab/probe-agreement.test.ts). Pure.
 */
export function blindWindows(
  samples: readonly ProbeSample[],
  periodMs: number,
  endMs: number,
): BlindWindow[] {
  const starts = samples.map((s) => s.startMs).sort((a, b) => a - b);
  const out: BlindWindow[] = [];
  const gap = (from: number, to: number) => {
    if (to - from > 2 * periodMs) {
      out.push({ startMs: from + periodMs, endMs: to, durationMs: to - from - periodMs });
    }
  };
  for (let i = 1; i < starts.length; i++) gap(starts[i - 1]!, starts[i]!);
  const last = starts[starts.length - 1];
  if (last !== undefined && endMs > last) gap(last, endMs);
  return out;
}

/**
 * How long after its deadline a probe's result may be handled and still
 * count. A probe's timeout timer fires at the deadline when the prober's
 * event loop is free; a result handled later than this means the loop was
 * busy elsewhere (a GC pause, a loaded machine, the operator's own work when
 * the probe shared its thread), and the answer may have sat in the socket
 * all along. Such a probe is evidence about the prober, like a skipped slot.
 */
export const LATE_AFTER_DEADLINE_MS = 100;

/**
 * What one finished probe says about the service: up (answered within the
 * timeout), down (an error, a timeout that fired on time, or an answer
 * handled just after the deadline), or late (handled so long after the
 * deadline that it says nothing either way; left out of the outages).
 */
export function judgeProbe(
  r: { up: boolean; latencyMs: number },
  timeoutMs: number,
): 'up' | 'down' | 'late' {
  if (r.latencyMs > timeoutMs + LATE_AFTER_DEADLINE_MS) return 'late';
  return r.up && r.latencyMs <= timeoutMs ? 'up' : 'down';
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentiles of the answered probes' latencies. A stall that
 * ends before the timeout is no outage by the definition above; it shows
 * here instead.
 */
export function summarizeLatency(latenciesMs: readonly number[]): LatencySummary | undefined {
  if (latenciesMs.length === 0) return undefined;
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
  return { p50: rank(0.5), p99: rank(0.99), max: sorted[sorted.length - 1]! };
}
