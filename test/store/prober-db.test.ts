// The database half of the prober against real PostgreSQL 15: a primary
// (startPgCluster) and a streaming standby made with pg_basebackup, both on
// loopback. Outages are caused on purpose (pg_ctl stop/start, a terminated
// backend, commits held in a synchronous-replication wait) and the report
// is checked against them; a deleted acknowledged row must be caught.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import pg from 'pg';
import { ensureProbeTable } from '../../src/prober/db-writer.js';
import { type ProbeReport, startProber, type Verification } from '../../src/prober/index.js';
import { freePort, type PgCluster, pgBinDir, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(30_000);

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const RATE_HZ = 50;
const TOLERANCE_MS = 60;
const LOG_TOLERANCE_MS = 100;

// Async on purpose: a synchronous spawn would freeze the prober's event loop
// in this same process and corrupt the very timeline under test.
async function asPostgres(bin: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', join(pgBinDir(), bin), ...args]);
}

let primary: PgCluster;
let standbyDir: string;
let standbyPort: number;
let primaryUrl: string;
let standbyUrl: string;
let admin: pg.Client;

function primaryOpts(): string {
  // The options startPgCluster() started it with, so a restart is the same server.
  return `-p ${primary.port} -k ${dirname(primary.dataDir)} -c listen_addresses=127.0.0.1 -c fsync=off`;
}

async function adminClient(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: primaryUrl });
  c.on('error', () => {});
  await c.connect();
  return c;
}

beforeAll(async () => {
  primary = await startPgCluster();
  primaryUrl = primary.url;
  standbyDir = mkdtempSync(join(tmpdir(), 'pairshift-prober-standby-'));
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  chownSync(standbyDir, uid, gid);
  standbyPort = await freePort();
  const data = join(standbyDir, 'data');
  await asPostgres('pg_basebackup', [
    ...['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres'],
    ...['-D', data, '-R', '-X', 'stream', '--no-sync'],
  ]);
  await asPostgres('pg_ctl', [
    ...['-D', data, '-l', join(standbyDir, 'log'), '-w'],
    ...['-o', `-p ${standbyPort} -k ${standbyDir} -c listen_addresses=127.0.0.1`],
    'start',
  ]);
  standbyUrl = `postgres://postgres@127.0.0.1:${standbyPort}/postgres`;
  admin = await adminClient();
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  if (standbyDir) {
    await asPostgres('pg_ctl', [
      '-D',
      join(standbyDir, 'data'),
      '-m',
      'immediate',
      '-w',
      'stop',
    ]).catch(() => {});
    rmSync(standbyDir, { recursive: true, force: true });
  }
  await primary?.stop();
});

/** Wall-clock ms of the last server log line containing `text` (log_line_prefix '%m [%p] '). */
function lastLogTime(text: string): number {
  const lines = readFileSync(join(dirname(primary.dataDir), 'log'), 'utf8').split('\n');
  const line = lines.filter((l) => l.includes(text)).at(-1);
  const m = line?.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) UTC /);
  if (!m) throw new Error(`no "${text}" line with a UTC timestamp in the server log`);
  return Date.parse(`${m[1]}T${m[2]}Z`);
}

/** Polls the number of backends waiting for a synchronous standby; returns when `done`. */
async function whenSyncRepWaiters(done: (n: number) => boolean): Promise<number> {
  const deadline = performance.now() + 5000;
  for (;;) {
    const r = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
    );
    if (done(r.rows[0]!.n)) return performance.now();
    if (performance.now() > deadline) throw new Error('synchronous-replication wait never changed');
    await sleep(5);
  }
}

function verified(v: unknown): Verification {
  if (!v || typeof v !== 'object' || 'error' in v) {
    throw new Error(`verification did not run: ${JSON.stringify(v)}`);
  }
  return v as Verification;
}

/** For docs/prober.md: PROBER_ACCURACY_LOG=/tmp/x.log collects measured vs real. */
function logAccuracy(what: string, measured: number, low: number, high: number) {
  const file = process.env.PROBER_ACCURACY_LOG;
  if (file)
    appendFileSync(
      file,
      `${what}\tmeasured=${measured}\treal=[${low.toFixed(1)}, ${high.toFixed(1)}]\n`,
    );
}

describe('prober, database', () => {
  it('measures a primary stopped for a second and restarted, and loses no acknowledged write', async () => {
    const prober = await startProber({
      dbUrl: primaryUrl,
      verifyDbUrls: [primaryUrl, standbyUrl],
      rateHz: RATE_HZ,
    });
    try {
      await sleep(600);
      const stopInvoked = performance.now();
      await asPostgres('pg_ctl', ['-D', primary.dataDir, '-m', 'fast', '-w', 'stop']);
      const stopReturned = performance.now();
      await sleep(1000);
      const startInvoked = performance.now();
      await asPostgres('pg_ctl', [
        ...['-D', primary.dataDir, '-l', join(dirname(primary.dataDir), 'log'), '-w'],
        ...['-o', primaryOpts(), 'start'],
      ]);
      const startReturned = performance.now();
      await sleep(800);
      const report = await prober.stop();
      const db = report.db!;

      // The server was certainly down from the moment pg_ctl stop returned
      // until pg_ctl start was invoked, and certainly up before stop was
      // invoked and after start returned.
      const low = startInvoked - stopReturned;
      const high = startReturned - stopInvoked;
      logAccuracy('pg stop/start', db.longestOutageMs, low, high);
      // One outage for the hold; at its release edge a few single probes may
      // still time out (commits queued behind the release, a busy machine):
      // those come after it, and each is shorter than one timeout.
      expect(db.outages.length).toBeGreaterThanOrEqual(1);
      const [main, ...edge] = [...db.outages].sort((x, y) => y.durationMs - x.durationMs);
      for (const o of edge) {
        expect(o.startMs).toBeGreaterThanOrEqual(main!.startMs);
        expect(o.durationMs).toBeLessThan(HOLD_TIMEOUT_MS);
      }
      expect(db.longestOutageMs).toBeGreaterThanOrEqual(low - TOLERANCE_MS);
      expect(db.longestOutageMs).toBeLessThanOrEqual(high + TOLERANCE_MS);
      expect(db.writes.acked + db.writes.failed + db.writes.unknown).toBe(db.probes);
      // ok = acknowledged within the timeout, so never more than acked
      expect(db.ok).toBeLessThanOrEqual(db.writes.acked);
      expect(db.connectionsOpened).toBeGreaterThanOrEqual(2); // it reconnected

      // The server's own account, to the millisecond: it stops taking new
      // sessions when it receives the shutdown request and takes them again
      // once it logs that it is ready. The log line is written a moment
      // after the state changes, and on a loaded machine both processes can
      // be descheduled for tens of ms: a wider margin than the edges above.
      const serverDown = lastLogTime('received fast shutdown request');
      const serverUp = lastLogTime('database system is ready to accept connections');
      const window = db.outages[0]!;
      logAccuracy('pg outage start vs server log', Date.parse(window.from) - serverDown, 0, 0);
      logAccuracy('pg outage end vs server log', Date.parse(window.to) - serverUp, 0, 0);
      expect(Math.abs(Date.parse(window.from) - serverDown)).toBeLessThanOrEqual(LOG_TOLERANCE_MS);
      expect(Math.abs(Date.parse(window.to) - serverUp)).toBeLessThanOrEqual(LOG_TOLERANCE_MS);

      const v = verified(report.verification);
      expect(v.readbacks.map((r) => r.role)).toEqual(['primary', 'standby']);
      expect(v.readbacks[1]!.caughtUp).toBe(true);
      expect(v.acked).toBe(db.writes.acked);
      expect(v.lostAcknowledged).toBe(0);
      expect(v.failedButPresent).toEqual([]);
      expect(v.unknownLanded.length + v.unknownNotLanded.length).toBe(db.writes.unknown);
    } finally {
      await prober.stop();
    }
    // the admin connection died with the restart
    await admin.end().catch(() => {});
    admin = await adminClient();
  });

  it('detects an acknowledged row deleted behind its back (the check can fail)', async () => {
    const prober = await startProber({
      dbUrl: primaryUrl,
      verifyDbUrls: [primaryUrl, standbyUrl],
      rateHz: RATE_HZ,
      table: 'probe_tamper',
    });
    let victim = -1;
    let report: ProbeReport;
    try {
      await sleep(500);
      const r = await admin.query<{ seq: string }>(
        'DELETE FROM probe_tamper WHERE run_id = $1 AND seq = (SELECT min(seq) + 3 FROM probe_tamper WHERE run_id = $1) RETURNING seq',
        [prober.runId],
      );
      expect(r.rowCount).toBe(1);
      victim = Number(r.rows[0]!.seq);
      await sleep(200);
    } finally {
      report = await prober.stop();
    }
    const v = verified(report.verification);
    expect(v.lostAcknowledged).toBe(1);
    expect(v.lostSeqs).toEqual([victim]);
    // gone from the primary, and (replicated) from the standby too
    expect(v.nodes.map((n) => n.missingAcked)).toEqual([[victim], [victim]]);
  });

  it('reconnects after pg_terminate_backend of its connection, counting every write', async () => {
    const prober = await startProber({
      dbUrl: primaryUrl,
      verifyDbUrls: [primaryUrl, standbyUrl],
      rateHz: RATE_HZ,
      table: 'probe_terminate',
    });
    let terminated = 0;
    let report: ProbeReport;
    try {
      await sleep(500);
      for (let i = 0; i < 3; i++) {
        const r = await admin.query<{ ok: boolean }>(
          "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'pairshift-probe'",
        );
        terminated += r.rows.filter((row) => row.ok).length;
        await sleep(300);
      }
      await sleep(200);
    } finally {
      report = await prober.stop();
    }
    const db = report.db!;
    expect(terminated).toBeGreaterThanOrEqual(3);
    expect(db.connectionsLost).toBeGreaterThanOrEqual(terminated);
    expect(db.connectionsOpened).toBeGreaterThanOrEqual(terminated + 1);
    expect(db.writes.acked + db.writes.failed + db.writes.unknown).toBe(db.probes);
    // A reconnect on loopback takes milliseconds: at most a probe or two per kill.
    expect(db.failed).toBeLessThanOrEqual(2 * terminated);
    expect(db.longestOutageMs).toBeLessThan(150);
    const v = verified(report.verification);
    expect(v.lostAcknowledged).toBe(0);
    expect(v.failedButPresent).toEqual([]);
  });

  const HOLD_TIMEOUT_MS = 300;
  it('counts commits held in a sync-replication wait as outcome unknown, and sees them land', async () => {
    const prober = await startProber({
      dbUrl: primaryUrl,
      verifyDbUrls: [primaryUrl, standbyUrl],
      rateHz: RATE_HZ,
      dbTimeoutMs: HOLD_TIMEOUT_MS,
      table: 'probe_syncwait',
    });
    let holdAsked = 0;
    let holdSeen = 0;
    let releaseAsked = 0;
    let releaseSeen = 0;
    let report: ProbeReport;
    try {
      await sleep(400);
      // No standby is called "nobody": every commit is written locally and
      // then waits forever for a synchronous standby's confirmation.
      // A reload takes effect asynchronously, so each edge of the hold is
      // bracketed: after the reload was asked for, before it was observed.
      holdAsked = performance.now();
      await admin.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
      await admin.query('SELECT pg_reload_conf()');
      holdSeen = await whenSyncRepWaiters((n) => n > 0);
      await sleep(700);
      releaseAsked = performance.now();
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names');
      await admin.query('SELECT pg_reload_conf()');
      releaseSeen = await whenSyncRepWaiters((n) => n === 0);
      await sleep(600);
    } finally {
      report = await prober.stop();
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names').catch(() => {});
      await admin.query('SELECT pg_reload_conf()').catch(() => {});
    }
    const db = report.db!;
    expect(db.writes.unknown).toBeGreaterThanOrEqual(1);
    // every unknown write timed out after it was sent (a probe whose answer
    // this process handled late, when its event loop was busy, says so after
    // a comma: "timeout after send, handled late")
    const timedOutAfterSend = Object.entries(db.reasons)
      .filter(([reason]) => reason.startsWith('timeout after send'))
      .reduce((n, [, count]) => n + count, 0);
    expect(timedOutAfterSend).toBe(db.writes.unknown);
    // While commits hang every probe is down, and only then.
    // Commits were held, not refused: a probe sent less than one timeout
    // before the release was answered in time, so by definition (the send
    // times at which a client would not get its answer within the timeout)
    // the outage is the hold minus one timeout.
    const low = releaseAsked - holdSeen - HOLD_TIMEOUT_MS;
    const high = releaseSeen - holdAsked - HOLD_TIMEOUT_MS;
    logAccuracy('sync-rep hold', db.longestOutageMs, low, high);
    // One outage for the hold; at its release edge a few single probes may
    // still time out (commits queued behind the release, a busy machine):
    // those come after it, and each is shorter than one timeout.
    expect(db.outages.length).toBeGreaterThanOrEqual(1);
    const [main, ...edge] = [...db.outages].sort((x, y) => y.durationMs - x.durationMs);
    for (const o of edge) {
      expect(o.startMs).toBeGreaterThanOrEqual(main!.startMs);
      expect(o.durationMs).toBeLessThan(HOLD_TIMEOUT_MS);
    }
    expect(db.longestOutageMs).toBeGreaterThanOrEqual(low - TOLERANCE_MS);
    expect(db.longestOutageMs).toBeLessThanOrEqual(high + TOLERANCE_MS);
    // ...and the stall shows in the latency of the writes answered late.
    expect(db.okLatencyMs!.max).toBeGreaterThan(HOLD_TIMEOUT_MS / 2);
    expect(db.okLatencyMs!.max).toBeLessThanOrEqual(HOLD_TIMEOUT_MS);
    const v = verified(report.verification);
    expect(v.lostAcknowledged).toBe(0);
    // Committed locally before the wait: they are in, though never acknowledged.
    expect(v.unknownLanded.length).toBeGreaterThanOrEqual(1);
    expect(v.unknownLanded.every((s) => report.db!.unknownSeqs.includes(s))).toBe(true);
    // Slots refused while every connection hung were never sent: none may exist.
    expect(v.failedButPresent).toEqual([]);
  });

  it('waits for a writable primary to create its table, then names the standby it met', async () => {
    // A prober that starts while the VIP sits on a standby (a switchover, a
    // VRRP hiccup) retries instead of failing on the first read-only answer.
    const err = await ensureProbeTable(standbyUrl, 'probe_wait', 1000, 1600).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/cannot prepare probe table "probe_wait" .* \([2-9] attempts\)/);
    expect((err?.cause as { code?: string } | undefined)?.code).toBe('25006');
    // Not every error is worth a wait: a database that does not exist fails on the first try.
    const missing = primaryUrl.replace(/\/[^/?]*(\?|$)/, '/no_such_db$1');
    const once = await ensureProbeTable(missing, 'probe_wait', 1000, 10_000).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(once?.message).toMatch(/cannot prepare probe table/);
    expect(once?.message).not.toMatch(/attempts/);
    await ensureProbeTable(primaryUrl, 'probe_wait', 1000);
  });

  it('reports a node it cannot read instead of losing the measurement', async () => {
    const deadPort = await freePort();
    const prober = await startProber({
      dbUrl: primaryUrl,
      verifyDbUrls: [primaryUrl, `postgres://postgres@127.0.0.1:${deadPort}/postgres`],
      rateHz: RATE_HZ,
      table: 'probe_deadnode',
    });
    await sleep(300);
    const report = await prober.stop();
    expect(report.db!.writes.acked).toBeGreaterThan(10);
    expect(report.verification).toEqual({
      error: expect.stringContaining(`cannot connect to 127.0.0.1:${deadPort}/postgres`),
    });
  });
});

/**
 * A TCP relay to PostgreSQL that can black-hole traffic, as a partition or
 * a VIP nobody answers on would: while frozen, bytes are dropped and
 * sockets stay open. A connection that lost bytes stays broken for good.
 */
async function blackHoleRelay(upstreamPort: number) {
  const port = await freePort();
  const state = { frozen: false };
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    let broken = false;
    const relay = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (state.frozen) broken = true;
        if (!broken) to.write(chunk);
      });
    relay(client, upstream);
    relay(upstream, client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    state,
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('prober, database behind a black hole', () => {
  it('measures a partition, and stops in bounded time while still partitioned', async () => {
    const relay = await blackHoleRelay(primary.port);
    const prober = await startProber({
      dbUrl: relay.url,
      verifyDbUrls: [primaryUrl, standbyUrl],
      rateHz: RATE_HZ,
      table: 'probe_blackhole',
    });
    let report: ProbeReport;
    let frozenAt = 0;
    let thawedAt = 0;
    let stopMs = 0;
    try {
      await sleep(400);
      relay.state.frozen = true;
      frozenAt = performance.now();
      await sleep(800);
      relay.state.frozen = false;
      thawedAt = performance.now();
      await sleep(600);
      relay.state.frozen = true; // and stop while partitioned
      await sleep(300);
    } finally {
      const stopAsked = performance.now();
      report = await prober.stop();
      stopMs = performance.now() - stopAsked;
      relay.close();
    }
    const db = report.db!;
    logAccuracy(
      'db black hole',
      db.outages[0]!.durationMs,
      thawedAt - frozenAt,
      thawedAt - frozenAt,
    );
    expect(db.outages).toHaveLength(2);
    expect(Math.abs(db.outages[0]!.durationMs - (thawedAt - frozenAt))).toBeLessThanOrEqual(
      TOLERANCE_MS,
    );
    expect(db.outages[1]!.open).toBe(true);
    // The statement sent on the established connection got no answer...
    expect(db.writes.unknown).toBeGreaterThanOrEqual(1);
    // ...and new connections could not even log in.
    expect(Object.keys(db.reasons).some((r) => r.startsWith('connect:'))).toBe(true);
    // Pending probes end at their deadline and sockets the relay never
    // closes are torn down: stop() does not wait on the partition.
    expect(stopMs).toBeLessThan(2000);
    const v = verified(report.verification);
    expect(v.lostAcknowledged).toBe(0);
    expect(v.failedButPresent).toEqual([]);
  });
});
