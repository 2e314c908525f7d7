// After a run: read back this run's rows from every node (direct node URLs,
// not the VIP) and compare them with what the prober was told.
//
// A standby may simply not have replayed the last writes yet, which must not
// be reported as loss. So first the primary's current WAL position is taken
// (after the run, it covers every acknowledged commit), and each standby is
// polled until its replay position reaches it or the catch-up timeout
// passes. A node that did not catch up is flagged; its missing rows are
// still listed, because a standby that never catches up has lost them for
// any client that fails over to it.
import pg from 'pg';
import { checkTableName, describeDbUrl, endClient } from './db-writer.js';
import { checkLoss, type LossCheck, type WriteRecord } from './loss-check.js';

export interface NodeReadback {
  node: string;
  role: 'primary' | 'standby';
  /** Standbys: replay reached the primary's WAL position in time. */
  caughtUp: boolean;
  waitedMs: number;
  rows: number;
}

export interface Verification extends LossCheck {
  readbacks: NodeReadback[];
  /** The WAL position every standby had to reach (undefined without a primary). */
  targetLsn?: string;
}

export async function verifyWrites(opts: {
  nodeUrls: readonly string[];
  table: string;
  runId: string;
  writes: readonly WriteRecord[];
  catchUpTimeoutMs: number;
  connectTimeoutMs?: number;
}): Promise<Verification> {
  const table = checkTableName(opts.table);
  const clients = await Promise.all(
    opts.nodeUrls.map((url) => connectNode(url, opts.connectTimeoutMs ?? 3000)),
  );
  try {
    const roles = await Promise.all(
      clients.map(async ({ client, node }) => {
        try {
          const r = await client.query<{ standby: boolean; lsn: string | null }>(
            `SELECT pg_is_in_recovery() AS standby,
                    CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn`,
          );
          return r.rows[0]!;
        } catch (err) {
          throw new Error(`cannot read the role of ${node}`, { cause: err });
        }
      }),
    );
    const primaryLsns = roles.flatMap((r) => (r.lsn ? [r.lsn] : []));
    const targetLsn = primaryLsns.sort(compareLsn).at(-1);

    const readbacks: NodeReadback[] = [];
    const nodes = [];
    for (const [i, { client, node }] of clients.entries()) {
      const standby = roles[i]!.standby;
      const started = Date.now();
      const caughtUp =
        !standby || targetLsn === undefined
          ? !standby
          : await waitForReplay(client, targetLsn, opts.catchUpTimeoutMs);
      const r = await client
        .query<{ seq: string }>(`SELECT seq::text AS seq FROM "${table}" WHERE run_id = $1`, [
          opts.runId,
        ])
        .catch((err: unknown) => {
          throw new Error(`cannot read probe rows from ${node}`, { cause: err });
        });
      const present = new Set(r.rows.map((row) => Number(row.seq)));
      readbacks.push({
        node,
        role: standby ? 'standby' : 'primary',
        caughtUp,
        waitedMs: Date.now() - started,
        rows: present.size,
      });
      nodes.push({ node, present });
    }
    return {
      ...checkLoss(opts.writes, nodes),
      readbacks,
      ...(targetLsn ? { targetLsn } : {}),
    };
  } finally {
    await Promise.all(clients.map(({ client }) => endClient(client)));
  }
}

async function connectNode(url: string, timeoutMs: number) {
  const node = describeDbUrl(url);
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    // a node that stops answering mid-verification must not hang the run
    query_timeout: 10_000,
    application_name: 'pairshift-probe-verify',
  });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`cannot connect to ${node} to verify the probe writes`, { cause: err });
  }
  return { client, node };
}

async function waitForReplay(
  client: pg.Client,
  targetLsn: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.query<{ ok: boolean | null }>(
      'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok',
      [targetLsn],
    );
    if (r.rows[0]?.ok) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Orders textual LSNs ("16/B374D848") numerically. Pure. */
export function compareLsn(a: string, b: string): number {
  const parse = (lsn: string) => {
    const [hi, lo] = lsn.split('/');
    return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
  };
  const d = parse(a) - parse(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}
