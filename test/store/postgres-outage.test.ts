// The PostgreSQL store when its server goes away under a running query and
// a running transaction (the backends terminated, as a failover or an
// admin's pg_terminate_backend does): each call rejects with the error, the
// process does not die of an unhandled pg 'error' event (pg emits one on a
// checked-out client, which the pool does not listen to), and the store
// answers again once the server does, on fresh connections.
import { jest } from '@jest/globals';
import pg from 'pg';
import { openPostgres } from '../../src/store/postgres.js';
import { type PgCluster, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(60_000);

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPgCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

/** Terminates every backend of the store's own application, from a separate connection. */
async function terminateOthers(): Promise<number> {
  const admin = new pg.Client({ connectionString: cluster.url });
  admin.on('error', () => {});
  await admin.connect();
  try {
    const r = await admin.query(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = $1',
      ['client backend'],
    );
    return r.rows[0].n as number;
  } finally {
    await admin.end();
  }
}

test('a query and a transaction cut off by the server reject; the process lives on; the store answers again', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  const store = await openPostgres(cluster.url);
  try {
    const sleeping = store.query('SELECT pg_sleep(30)');
    const inTx = store.transaction(async (tx) => {
      await tx.query('SELECT 1');
      await tx.query('SELECT pg_sleep(30)');
    });
    // both backends are running their sleep before they are cut off
    for (let i = 0; i < 50; i++) {
      const admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      const r = await admin.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()",
      );
      await admin.end();
      if (r.rows[0].n >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await terminateOthers()).toBeGreaterThanOrEqual(2);
    await expect(sleeping).rejects.toThrow(/terminat/i);
    await expect(inTx).rejects.toThrow(/terminat/i);
    // the socket's end arrives after the error message: give it its turn
    await new Promise((r) => setTimeout(r, 300));
    expect(uncaught).toEqual([]);
    expect(await store.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  } finally {
    process.off('uncaughtException', onUncaught);
    await store.close();
  }
});
