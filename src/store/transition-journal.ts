// The store as the state machine's journal: each accepted transition becomes
// an upgrade_history row and moves upgrade_task.phase, in one transaction and
// only if the task is still in the phase the machine started from.
import type { TransitionJournal } from '../core/transitions.js';
import type { SqlClient } from './sql-client.js';
import { recordTransition } from './upgrades.js';

export function storeJournal(db: SqlClient): TransitionJournal {
  return {
    async recordTransition(upgradeId, record) {
      await recordTransition(db, upgradeId, {
        from: record.from,
        to: record.to,
        cause: record.cause,
        actor: record.actor,
        at: record.at,
      });
    },
  };
}
