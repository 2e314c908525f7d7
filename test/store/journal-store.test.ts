// The reconciler's memory survives a restart, and a transition and its
// memory are written together or not at all.
import { jest } from '@jest/globals';
import { emptyJournal, recordStep } from '../../src/core/journal.js';
import { initialContext, type UpgradeContext, upgradeMachine } from '../../src/core/machine.js';
import { HAPPY_PATH } from '../../src/core/phases.js';
import { commitTransition, loadMemory, saveMemory } from '../../src/store/journal-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import {
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  PhaseConflictError,
} from '../../src/store/upgrades.js';
import { happyEvent } from '../support/machine-properties.js';
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

  // The reconciler's path (machine, then commitTransition) is the only one
  // that moves an upgrade, so task list 2.1.3 (time, cause, actor of every
  // transition) is proven on it.
  test('a whole upgrade leaves one history row per transition, in order', async () => {
    await createUpgradeTask(db, {
      upgradeId: 'u-happy',
      pairName: 'p-happy',
      at: new Date(Date.UTC(2025, 11, 31)),
      targetVersion: '2.0.0',
      requestedBy: 'alice',
    });
    let clock = 0;
    const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, clock++));
    const facts = emptyJournal(0);
    const records: { to: string; at: number }[] = [];
    let ctx: UpgradeContext = initialContext({ backupNode: 'b', masterNode: 'a' });
    while (ctx.phase !== 'COMPLETE') {
      const r = upgradeMachine.transition(ctx, happyEvent(ctx), { at: now(), actor: 'reconciler' });
      if (!r.ok) throw new Error(r.reason);
      await commitTransition(db, 'u-happy', r.record, { context: r.context, facts });
      records.push({ to: r.record.to, at: r.record.at.getTime() });
      ctx = r.context;
    }
    const history = await listHistory(db, 1, 50, { upgradeId: 'u-happy' });
    // The first row is the task's creation (null -> IDLE), then each transition.
    const [created, ...oldestFirst] = [...history.items].reverse();
    expect(created).toMatchObject({ from: null, to: 'IDLE', actor: 'alice' });
    expect(oldestFirst.map((h) => h.to)).toEqual(HAPPY_PATH.slice(1));
    expect(oldestFirst.every((h) => h.actor === 'reconciler' && h.cause.length > 0)).toBe(true);
    expect(oldestFirst.map((h) => ({ to: h.to, at: h.at.getTime() }))).toEqual(records);
    const task = await getUpgradeTask(db, 'u-happy');
    expect(task?.phase).toBe('COMPLETE');
    expect(task?.finishedAt).not.toBeNull();
    expect((await loadMemory(db, 'u-happy'))?.context.phase).toBe('COMPLETE');
  });
});
