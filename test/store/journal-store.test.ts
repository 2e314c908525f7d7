// The reconciler's memory survives a restart, and a transition and its
// memory are written together or not at all.
import { jest } from '@jest/globals';
import { emptyJournal, recordStep } from '../../src/core/journal.js';
import { initialContext, upgradeMachine } from '../../src/core/machine.js';
import { commitTransition, loadMemory, saveMemory } from '../../src/store/journal-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { getUpgradeTask, PhaseConflictError } from '../../src/store/upgrades.js';
import { backends, createTestTask, migratedStore } from './backends.js';

jest.setTimeout(120_000);

describe.each(backends)('upgrade memory on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  beforeAll(async () => {
    db = await migratedStore(backend);
    await createTestTask(db, 'm1');
  });
  afterAll(() => backend.teardown());

  test('round trip, then a transition with its memory in one transaction', async () => {
    expect(await loadMemory(db, 'm1')).toBeNull();
    const ctx = initialContext({ backupNode: 'b', masterNode: 'a' });
    const facts = recordStep(emptyJournal(1000), 'BACKUP', 'a', { ok: true });
    await saveMemory(db, 'm1', { context: ctx, facts });
    expect(await loadMemory(db, 'm1')).toEqual({ context: ctx, facts });

    const r = upgradeMachine.transition(ctx, { type: 'START' }, { at: new Date(), actor: 'test' });
    if (!r.ok) throw new Error(r.reason);
    await commitTransition(db, 'm1', r.record, { context: r.context, facts });
    expect((await loadMemory(db, 'm1'))?.context.phase).toBe('PREPARE');
    expect((await getUpgradeTask(db, 'm1'))?.phase).toBe('PREPARE');

    // A stale transition (from IDLE again) is refused and leaves the memory as it was.
    const stale = { ...r.record, to: 'CANCELLED' as const };
    await expect(
      commitTransition(db, 'm1', stale, { context: { ...r.context, phase: 'CANCELLED' }, facts }),
    ).rejects.toBeInstanceOf(PhaseConflictError);
    expect((await loadMemory(db, 'm1'))?.context.phase).toBe('PREPARE');
  });
});
