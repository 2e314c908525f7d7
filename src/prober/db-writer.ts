// Numbered probe inserts through the VIP, each its own autocommit statement.
//
// A small set of connection slots lets a slow insert overlap the next ones
// (the schedule never waits); normally one connection carries every insert.
// A slot whose connection died reconnects on its next use with a short
// connect timeout, so after a switchover writes resume as soon as the new
// primary accepts. Each insert reports a WriteAttempt: whether the statement
// left this process, and what came back (see write-outcome.ts).
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { attemptFromQueryError, errorText, type WriteAttempt } from './write-outcome.js';

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkTableName(table: string): string {
  if (!TABLE_NAME.test(table)) {
    throw new Error(
      `--table must be a plain lower-case SQL identifier (letters, digits, _), got "${table}"`,
    );
  }
  return table;
}

/** Host, port and database of a connection URL: safe to print (no user, no password). */
export function describeDbUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname || '/'}`;
  } catch {
    return '<unparsable database URL>';
  }
}

/** How long the prober keeps trying to create its table before it gives up. */
export const PREPARE_DEADLINE_MS = 20_000;

/**
 * Creates the probe table through the VIP. A prober may start while the VIP
 * or the primary is moving (a switchover, a VRRP hiccup on a loaded host), so
 * a refused connection or a read-only standby behind the VIP is retried until
 * deadlineMs; any other error (bad password, no such database) fails at once.
 */
export async function ensureProbeTable(
  url: string,
  table: string,
  timeoutMs: number,
  deadlineMs = PREPARE_DEADLINE_MS,
) {
  const name = checkTableName(table);
  const until = performance.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(
        `CREATE TABLE IF NOT EXISTS "${name}" (
           run_id text NOT NULL,
           seq bigint NOT NULL,
           sent_at timestamptz NOT NULL,
           PRIMARY KEY (run_id, seq))`,
      );
      return;
    } catch (err) {
      if (!isPassing(err) || performance.now() + 500 >= until) {
        const tries = attempt > 1 ? ` (${attempt} attempts)` : '';
        throw new Error(`cannot prepare probe table "${table}" on ${describeDbUrl(url)}${tries}`, {
          cause: err,
        });
      }
    } finally {
      await endClient(client);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** SQLSTATEs and socket errors that a moving VIP or primary explains. */
const PASSING_SQLSTATES = new Set([
  '25006', // read_only_sql_transaction: the VIP is on a standby
  '57P01', // admin_shutdown
  '57P03', // cannot_connect_now: starting up or being promoted
]);
const PASSING_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT']);

function isPassing(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && (PASSING_SQLSTATES.has(e.code) || PASSING_ERRNOS.has(e.code)))
    return true;
  // pg reports its own connect timeout and a closed socket by message only
  return typeof e?.message === 'string' && /timeout|terminated/i.test(e.message);
}

/**
 * Closes a connection in bounded time. pg's end() waits for the server to
 * close the socket, which a black-holed address (a VIP nobody holds) never
 * does; the prober must still finish, so the socket is destroyed after a
 * short grace period.
 */
export async function endClient(client: pg.Client, graceMs = 500): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => true,
    () => true,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const done = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (!done) {
    (
      client as unknown as { connection?: { stream?: { destroy(): void } } }
    ).connection?.stream?.destroy();
  }
}

interface Slot {
  client?: pg.Client;
  alive: boolean;
  busy: boolean;
}

export interface DbWriterStats {
  connectionsOpened: number;
  connectionsLost: number;
}

export class DbWriter {
  private readonly slots: Slot[];
  private readonly insertSql: string;
  private readonly stats: DbWriterStats = { connectionsOpened: 0, connectionsLost: 0 };
  private closed = false;

  constructor(
    private readonly opts: {
      url: string;
      table: string;
      runId: string;
      timeoutMs: number;
      maxConnections: number;
      applicationName: string;
    },
  ) {
    this.slots = Array.from({ length: opts.maxConnections }, () => ({ alive: false, busy: false }));
    this.insertSql = `INSERT INTO "${checkTableName(opts.table)}" (run_id, seq, sent_at) VALUES ($1, $2, $3)`;
  }

  getStats(): DbWriterStats {
    return { ...this.stats };
  }

  /**
   * Claims a slot synchronously (so the caller's schedule is never delayed)
   * and performs the insert. Never rejects.
   */
  write(seq: number): Promise<WriteAttempt> {
    if (this.closed) return Promise.resolve({ sent: false, reason: 'prober stopping' });
    const slot = this.slots.find((s) => !s.busy && s.alive) ?? this.slots.find((s) => !s.busy);
    if (!slot) return Promise.resolve({ sent: false, reason: 'all connections busy' });
    slot.busy = true;
    return this.writeOn(slot, seq)
      .catch((err: unknown): WriteAttempt => {
        // Not expected; if it happens we cannot say whether the statement
        // left, so the conservative answer is "unknown", never "failed".
        this.drop(slot);
        return { sent: true, result: 'connection-lost', reason: `prober error: ${errorText(err)}` };
      })
      .finally(() => {
        slot.busy = false;
      });
  }

  private async writeOn(slot: Slot, seq: number): Promise<WriteAttempt> {
    // One deadline for connect and insert together, counted from the probe's
    // start: a probe is up only if a client sending at that instant would
    // have had its answer within the timeout.
    const deadline = performance.now() + this.opts.timeoutMs;
    if (!slot.alive || !slot.client) {
      const connected = await this.connect(slot);
      if (connected !== true) return { sent: false, reason: connected };
    }
    const remainingMs = deadline - performance.now();
    if (remainingMs <= 0) return { sent: false, reason: 'connect: no time left to insert' };
    const client = slot.client!;
    // From here the statement is on the wire: any failure but an ERROR
    // answer leaves its outcome unknown.
    const query = client.query(this.insertSql, [this.opts.runId, seq, new Date()]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), remainingMs);
    });
    try {
      const r = await Promise.race([query.then(() => 'ack' as const), timedOut]);
      if (r === 'ack') return { sent: true, result: 'ack' };
      this.drop(slot);
      return { sent: true, result: 'timeout' };
    } catch (err) {
      const attempt = attemptFromQueryError(err);
      if (attempt.sent === false || attempt.result !== 'server-error') this.drop(slot);
      return attempt;
    } finally {
      clearTimeout(timer);
      query.catch(() => {}); // a late rejection after our timeout is expected
    }
  }

  /** Returns true, or the reason the connection could not be made. */
  private async connect(slot: Slot): Promise<true | string> {
    this.drop(slot);
    const client = new pg.Client({
      connectionString: this.opts.url,
      connectionTimeoutMillis: this.opts.timeoutMs,
      application_name: this.opts.applicationName,
    });
    slot.client = client;
    const markDead = () => {
      if (slot.client === client && slot.alive) {
        slot.alive = false;
        this.stats.connectionsLost++;
      }
    };
    client.on('error', markDead);
    client.on('end', markDead);
    let timer: NodeJS.Timeout | undefined;
    try {
      // pg's own connect timeout does not cover every stall (e.g. a server
      // that accepts and never answers the startup); ours does.
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.opts.timeoutMs);
      });
      const r = await Promise.race([client.connect().then(() => 'ok' as const), timedOut]);
      if (r === 'timeout') throw new Error('connect timeout');
      if (this.closed) throw new Error('prober stopping');
      slot.alive = true;
      this.stats.connectionsOpened++;
      return true;
    } catch (err) {
      this.drop(slot);
      return `connect: ${errorText(err)}`;
    } finally {
      clearTimeout(timer);
    }
  }

  private drop(slot: Slot) {
    const client = slot.client;
    if (slot.alive) this.stats.connectionsLost++;
    slot.alive = false;
    slot.client = undefined;
    // end() destroys the socket when a query is still active; errors from a
    // dying connection are expected here.
    if (client) void endClient(client);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        const client = s.client;
        s.alive = false;
        s.client = undefined;
        if (client) await endClient(client);
      }),
    );
  }
}
