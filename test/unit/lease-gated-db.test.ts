// The reconciler's store gated on the Lease (src/reconciler/lease-gated-db.ts):
// every statement asks first, a transaction refused half-way rolls back.
import { leaseGatedDb } from '../../src/reconciler/lease-gated-db.js';
import { LeaseLostError } from '../../src/reconciler/source.js';
import type { SqlClient, SqlExecutor } from '../../src/store/sql-client.js';

/** Records statements; a transaction's statements count only once it commits. */
function fakeDb() {
  const committed: string[] = [];
  const db: SqlClient = {
    description: 'fake',
    async query(text) {
      committed.push(text);
      return [];
    },
    async exec(script) {
      committed.push(script);
    },
    async transaction(fn) {
      const pending: string[] = [];
      const tx: SqlExecutor = {
        async query(text) {
          pending.push(text);
          return [];
        },
        async exec(script) {
          pending.push(script);
        },
      };
      const out = await fn(tx); // throws: nothing of it is committed
      committed.push(...pending);
      return out;
    },
    async close() {},
  };
  return { db, committed };
}

test('statements run while the Lease is held and are refused, unsent, once it is not', async () => {
  const { db, committed } = fakeDb();
  let leading = true;
  const gated = leaseGatedDb(db, () => leading);
  await gated.query('SELECT 1');
  await gated.exec('SELECT 2');
  leading = false;
  await expect(gated.query('UPDATE memory')).rejects.toBeInstanceOf(LeaseLostError);
  await expect(gated.exec('UPDATE memory')).rejects.toBeInstanceOf(LeaseLostError);
  await expect(gated.transaction(async () => 1)).rejects.toBeInstanceOf(LeaseLostError);
  expect(committed).toEqual(['SELECT 1', 'SELECT 2']);
});

test('the Lease lost in the middle of a transaction: its next statement is refused and none of it commits', async () => {
  const { db, committed } = fakeDb();
  let leading = true;
  const gated = leaseGatedDb(db, () => leading);
  const run = gated.transaction(async (tx) => {
    await tx.query('INSERT transition');
    leading = false;
    await tx.query('UPDATE memory');
  });
  await expect(run).rejects.toBeInstanceOf(LeaseLostError);
  expect(committed).toEqual([]);
});

test('a refusal is a waiting error for the loop, never terminal', () => {
  expect(new LeaseLostError('x').kind).toBe('waiting');
});
