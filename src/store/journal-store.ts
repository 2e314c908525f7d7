// The reconciler's memory of one upgrade (machine context + journal facts),
// persisted so an operator killed at any instant resumes where it was. A
// transition and the memory that goes with it are written in ONE
// transaction: after a crash the phase in upgrade_task and the context in
// upgrade_journal never disagree.
import type { JournalFacts } from '../core/journal.js';
import type { TransitionRecord, UpgradeContext } from '../core/machine.js';
import type { SqlClient, SqlExecutor } from './sql-client.js';
import { type HistoryEntry, recordTransitionIn } from './upgrades.js';

export interface UpgradeMemory {
  readonly context: UpgradeContext;
  readonly facts: JournalFacts;
}

export async function loadMemory(
  db: SqlExecutor,
  upgradeId: string,
): Promise<UpgradeMemory | null> {
  const [row] = await db.query<{ context: UpgradeContext; facts: JournalFacts }>(
    'SELECT context, facts FROM upgrade_journal WHERE upgrade_id = $1',
    [upgradeId],
  );
  return row ? { context: row.context, facts: row.facts } : null;
}

async function upsert(tx: SqlExecutor, upgradeId: string, m: UpgradeMemory): Promise<void> {
  await tx.query(
    `INSERT INTO upgrade_journal (upgrade_id, context, facts, updated_at)
     VALUES ($1, $2::jsonb, $3::jsonb, now())
     ON CONFLICT (upgrade_id) DO UPDATE
       SET context = EXCLUDED.context, facts = EXCLUDED.facts, updated_at = now()`,
    [upgradeId, JSON.stringify(m.context), JSON.stringify(m.facts)],
  );
}

/** After a step: the facts changed, the phase did not. */
export async function saveMemory(
  db: SqlExecutor,
  upgradeId: string,
  m: UpgradeMemory,
): Promise<void> {
  await upsert(db, upgradeId, m);
}

/** A transition, its history row and the memory after it, all or nothing. */
export async function commitTransition(
  db: SqlClient,
  upgradeId: string,
  record: TransitionRecord,
  after: UpgradeMemory,
): Promise<HistoryEntry> {
  return db.transaction(async (tx) => {
    const entry = await recordTransitionIn(tx, upgradeId, record);
    await upsert(tx, upgradeId, after);
    return entry;
  });
}
