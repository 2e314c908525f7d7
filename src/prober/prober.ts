// The prober: HTTP health probes and numbered database inserts against the
// VIP at a fixed rate, then outage figures and (optionally) a read-back of
// every write from each node. I/O lives here and in the probe modules; the
// arithmetic is in timeline.ts, write-outcome.ts and loss-check.ts.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { checkTableName, DbWriter, describeDbUrl, ensureProbeTable } from './db-writer.js';
import { parseHealthUrl, probeHttp } from './http-probe.js';
import { runFixedRate } from './schedule.js';
import {
  type BlindWindow,
  blindWindows,
  computeOutages,
  judgeProbe,
  type LatencySummary,
  type OutageSummary,
  type OutageWindow,
  summarizeLatency,
} from './timeline.js';
import { type Verification, verifyWrites } from './verify.js';
import { attemptReason, classifyWrite, type WriteOutcome } from './write-outcome.js';

export interface ProberOptions {
  /** e.g. http://198.18.0.100:8080/health */
  httpUrl?: string;
  /** e.g. postgres://app@198.18.0.100:5432/app */
  dbUrl?: string;
  /** Direct URLs of each node's database, read back after the run. */
  verifyDbUrls?: readonly string[];
  rateHz?: number;
  httpTimeoutMs?: number;
  dbTimeoutMs?: number;
  table?: string;
  /** Concurrent HTTP probes allowed before a slot counts as down. */
  maxHttpInFlight?: number;
  /**
   * Connections (so concurrent inserts) allowed before a slot counts as down.
   * Default: enough that a hanging server shows up as timeouts, not refusals.
   */
  maxDbConnections?: number;
  catchUpTimeoutMs?: number;
  runId?: string;
}

export const PROBER_DEFAULTS = {
  rateHz: 50,
  httpTimeoutMs: 300,
  dbTimeoutMs: 500,
  table: 'pairshift_probe',
  catchUpTimeoutMs: 10_000,
} as const;

export interface ReportedOutage extends OutageWindow {
  /** Wall-clock start and end, for matching against logs. */
  from: string;
  to: string;
  /** How the outage's down probes ended ('status 503': 12, 'timeout': 3). */
  reasons: Record<string, number>;
}

export interface ReportedBlindWindow extends BlindWindow {
  from: string;
  to: string;
}

export interface KindReport extends Omit<OutageSummary, 'outages'> {
  outages: ReportedOutage[];
  /**
   * Where the prober itself had no evidence (skipped slots, late results):
   * an outage there is invisible to it. blindMs is their total.
   */
  blind: ReportedBlindWindow[];
  blindMs: number;
  /**
   * Probes whose result the prober handled too long after their deadline to
   * judge (its own event loop was busy): counted in probes, not in ok or
   * failed, and left out of the outages, like skipped slots.
   */
  late: number;
  /** How many probes ended each way ('ok', 'timeout', 'ECONNREFUSED', ...). */
  reasons: Record<string, number>;
  /** Start-to-answer time of the successful probes (absent when none). */
  okLatencyMs?: LatencySummary;
}

export interface DbReport extends KindReport {
  writes: Record<WriteOutcome, number>;
  unknownSeqs: number[];
  connectionsOpened: number;
  connectionsLost: number;
}

export interface ProbeReport {
  runId: string;
  table?: string;
  startedAt: string;
  durationMs: number;
  rateHz: number;
  /** Slots skipped because the prober itself fell behind (not evidence about the service). */
  skippedSlots: number;
  http?: KindReport;
  db?: DbReport;
  verification?: Verification | { error: string };
}

export interface ProgressSnapshot {
  elapsedMs: number;
  http?: { probes: number; ok: number; up: boolean | undefined };
  db?: { probes: number; acked: number; up: boolean | undefined };
}

export interface Prober {
  runId: string;
  snapshot(): ProgressSnapshot;
  stop(): Promise<ProbeReport>;
}

interface ProbeRecord {
  startMs: number;
  latencyMs: number;
  up: boolean;
  reason: string;
  /** Handled too long after its deadline to say anything (see judgeProbe). */
  late?: true;
}
interface DbRecord extends ProbeRecord {
  seq: number;
  outcome: WriteOutcome;
}

export function checkRate(rateHz: number): number {
  if (!Number.isFinite(rateHz) || rateHz < 20 || rateHz > 1000) {
    throw new Error(`probe rate must be between 20 and 1000 Hz, got ${rateHz}`);
  }
  return rateHz;
}

export async function startProber(opts: ProberOptions): Promise<Prober> {
  if (!opts.httpUrl && !opts.dbUrl) throw new Error('give an HTTP URL, a database URL, or both');
  if (opts.verifyDbUrls?.length && !opts.dbUrl) {
    throw new Error('verifying writes needs a database URL to write through');
  }
  const rateHz = checkRate(opts.rateHz ?? PROBER_DEFAULTS.rateHz);
  const periodMs = 1000 / rateHz;
  const httpTimeoutMs = positive(
    'HTTP timeout',
    opts.httpTimeoutMs ?? PROBER_DEFAULTS.httpTimeoutMs,
  );
  const dbTimeoutMs = positive('database timeout', opts.dbTimeoutMs ?? PROBER_DEFAULTS.dbTimeoutMs);
  const table = checkTableName(opts.table ?? PROBER_DEFAULTS.table);
  const runId = opts.runId ?? `${new Date().toISOString()}-${randomBytes(4).toString('hex')}`;
  const httpUrl = opts.httpUrl ? parseHealthUrl(opts.httpUrl) : undefined;
  // Enough concurrent probes that a hanging server shows up as timeouts,
  // not as slots refused for lack of room.
  const maxHttpInFlight = opts.maxHttpInFlight ?? Math.ceil(httpTimeoutMs / periodMs) + 2;
  // Likewise for inserts. Not more: every stuck insert may hold a backend
  // on the server, and the prober must not starve the service it measures.
  const maxDbConnections = opts.maxDbConnections ?? Math.ceil(dbTimeoutMs / periodMs) + 2;

  if (opts.dbUrl) await ensureProbeTable(opts.dbUrl, table, Math.max(dbTimeoutMs, 3000));
  const db = opts.dbUrl
    ? new DbWriter({
        url: opts.dbUrl,
        table,
        runId,
        timeoutMs: dbTimeoutMs,
        maxConnections: maxDbConnections,
        applicationName: 'pairshift-probe',
      })
    : undefined;

  const startedAtEpoch = Date.now();
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const httpRecords: ProbeRecord[] = [];
  const dbRecords: DbRecord[] = [];
  const pending = new Set<Promise<void>>();
  let httpInFlight = 0;
  let lastHttpUp: boolean | undefined;
  let lastDbUp: boolean | undefined;
  const track = (p: Promise<void>) => {
    pending.add(p);
    p.finally(() => pending.delete(p));
  };

  const clock = runFixedRate({
    rateHz,
    now,
    onSlot: (slot, startMs) => {
      if (httpUrl) {
        if (httpInFlight >= maxHttpInFlight) {
          httpRecords.push({
            startMs,
            latencyMs: 0,
            up: false,
            reason: 'too many probes in flight',
          });
        } else {
          httpInFlight++;
          track(
            probeHttp(httpUrl, httpTimeoutMs).then((r) => {
              httpInFlight--;
              const record = answeredInTime(
                { startMs, latencyMs: now() - startMs, ...r },
                httpTimeoutMs,
              );
              httpRecords.push(record);
              lastHttpUp = record.up;
            }),
          );
        }
      }
      if (db) {
        // seq = slot + 1, so a row's seq tells when it was scheduled.
        const seq = slot + 1;
        track(
          db.write(seq).then((attempt) => {
            const outcome = classifyWrite(attempt);
            const record = answeredInTime(
              {
                startMs,
                latencyMs: now() - startMs,
                up: outcome === 'acked',
                reason: attemptReason(attempt),
              },
              dbTimeoutMs,
            );
            dbRecords.push({ ...record, seq, outcome });
            lastDbUp = record.up;
          }),
        );
      }
    },
  });

  let stopping: Promise<ProbeReport> | undefined;
  const stop = async (): Promise<ProbeReport> => {
    const endMs = clock.stop();
    // Every probe carries its own timeout, so this wait is bounded.
    while (pending.size > 0) await Promise.all([...pending]);
    await db?.close();
    const report: ProbeReport = {
      runId,
      ...(db ? { table } : {}),
      startedAt: new Date(startedAtEpoch).toISOString(),
      durationMs: round(endMs),
      rateHz,
      skippedSlots: clock.skippedSlots(),
    };
    const wall = (ms: number) => new Date(startedAtEpoch + ms).toISOString();
    if (httpUrl) report.http = kindReport(httpRecords, endMs, wall, periodMs);
    if (db) {
      const writes: Record<WriteOutcome, number> = { acked: 0, failed: 0, unknown: 0 };
      for (const r of dbRecords) writes[r.outcome]++;
      report.db = {
        ...kindReport(dbRecords, endMs, wall, periodMs),
        writes,
        unknownSeqs: dbRecords
          .filter((r) => r.outcome === 'unknown')
          .map((r) => r.seq)
          .sort((a, b) => a - b),
        ...db.getStats(),
      };
    }
    if (opts.dbUrl && opts.verifyDbUrls?.length) {
      try {
        report.verification = await verifyWrites({
          nodeUrls: opts.verifyDbUrls,
          table,
          runId,
          writes: dbRecords,
          catchUpTimeoutMs: opts.catchUpTimeoutMs ?? PROBER_DEFAULTS.catchUpTimeoutMs,
        });
      } catch (err) {
        // The measurement is kept even when read-back fails.
        report.verification = { error: chain(err) };
      }
    }
    return report;
  };

  return {
    runId,
    snapshot: () => ({
      elapsedMs: now(),
      ...(httpUrl
        ? {
            http: {
              probes: httpRecords.length,
              ok: httpRecords.filter((r) => r.up).length,
              up: lastHttpUp,
            },
          }
        : {}),
      ...(db
        ? {
            db: {
              probes: dbRecords.length,
              acked: dbRecords.filter((r) => r.outcome === 'acked').length,
              up: lastDbUp,
            },
          }
        : {}),
    }),
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}

/**
 * Up means answered within the timeout of the probe's start. An answer
 * handled just after the deadline counts as down ("but late"); one handled
 * long after it, or a timeout that fired long after it, only tells that the
 * prober was busy, and is left out of the timeline (judgeProbe). Either way
 * an acknowledged write stays acknowledged for the loss check.
 */
function answeredInTime(r: ProbeRecord, timeoutMs: number): ProbeRecord {
  const judged = judgeProbe(r, timeoutMs);
  if (judged === 'late')
    return { ...r, up: false, late: true, reason: `${r.reason}, handled late` };
  if (judged === 'down' && r.up) return { ...r, up: false, reason: `${r.reason} but late` };
  return r;
}

function kindReport(
  records: readonly ProbeRecord[],
  endMs: number,
  wall: (ms: number) => string,
  periodMs: number,
): KindReport {
  const judged = records.filter((r) => !r.late);
  const summary = computeOutages(judged, endMs);
  const blind = blindWindows(judged, periodMs, endMs);
  const reasons = tally(records);
  const latency = summarizeLatency(records.filter((r) => r.up).map((r) => r.latencyMs));
  return {
    ...summary,
    probes: records.length,
    late: records.length - summary.probes,
    longestOutageMs: round(summary.longestOutageMs),
    totalOutageMs: round(summary.totalOutageMs),
    observedMs: round(summary.observedMs),
    outages: summary.outages.map((w) => ({
      ...w,
      startMs: round(w.startMs),
      endMs: round(w.endMs),
      durationMs: round(w.durationMs),
      from: wall(w.startMs),
      to: wall(w.endMs),
      reasons: tally(judged.filter((r) => !r.up && r.startMs >= w.startMs && r.startMs < w.endMs)),
    })),
    blind: blind.map((w) => ({
      startMs: round(w.startMs),
      endMs: round(w.endMs),
      durationMs: round(w.durationMs),
      from: wall(w.startMs),
      to: wall(w.endMs),
    })),
    blindMs: round(blind.reduce((sum, w) => sum + w.durationMs, 0)),
    reasons,
    ...(latency
      ? {
          okLatencyMs: {
            p50: round(latency.p50),
            p99: round(latency.p99),
            max: round(latency.max),
          },
        }
      : {}),
  };
}

function tally(records: readonly ProbeRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r.reason] = (out[r.reason] ?? 0) + 1;
  return out;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function positive(what: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`${what} must be a positive number of ms`);
  return ms;
}

function chain(err: unknown): string {
  const parts: string[] = [];
  for (let cur = err, i = 0; cur && i < 5; i++) {
    parts.push(cur instanceof Error ? cur.message : String(cur));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return parts.join(': ');
}

export { describeDbUrl };
