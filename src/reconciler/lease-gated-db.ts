// The reconciler's store, gated on the Lease: every statement (reads too,
// they are cheap to refuse and a reconcile that lost the Lease has nothing
// to read for) first asks mayAct() and throws LeaseLostError when the answer
// is no. A check per statement, not per reconcile, because the Lease can go
// between any two awaits: a replica that lost it must not write the journal
// another replica is now writing. A transaction refused half-way rolls back,
// so a transition and its memory still land together or not at all.
import type { SqlClient, SqlExecutor } from '../store/sql-client.js';
import { LeaseLostError } from './source.js';

export function leaseGatedDb(db: SqlClient, mayAct: () => boolean): SqlClient {
  const gate = (what: string) => {
    if (!mayAct()) throw new LeaseLostError(`${what}: this replica does not hold the Lease`);
  };
  const gated = (ex: SqlExecutor): SqlExecutor => ({
    // async: a refusal is a rejected promise, like any failed statement.
    async query(text, params) {
      gate('a store statement');
      return ex.query(text, params);
    },
    async exec(script) {
      gate('a store script');
      return ex.exec(script);
    },
  });
  return {
    description: db.description,
    ...gated(db),
    async transaction(fn) {
      gate('a store transaction');
      return db.transaction((tx) => fn(gated(tx)));
    },
    close: () => db.close(),
  };
}
