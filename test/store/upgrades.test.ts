// The repository the state machine uses, on both stores.
import { jest } from '@jest/globals';
import { migrate } from '../../src/store/migrate.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import {
  ActiveUpgradeExistsError,
  appendLog,
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  listLogs,
  PhaseConflictError,
  recordTransition,
  UpgradeExistsError,
  UpgradeNotFoundError,
} from '../../src/store/upgrades.js';
import { backends, migratedStore } from './backends.js';

jest.setTimeout(120_000);

const T0 = new Date('2026-03-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

describe.each(backends)('upgrade repository on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let seq = 0;
  const newTask = (over: Partial<Parameters<typeof createUpgradeTask>[1]> = {}) =>
    createUpgradeTask(db, {
      upgradeId: `upg-${++seq}`,
      pairName: `pair-${seq}`,
      targetVersion: '2.1.0',
      requestedBy: 'alice',
      at: T0,
      ...over,
    });

  beforeAll(async () => {
    db = await migratedStore(backend);
  });
  afterAll(() => backend.teardown());

  it('creates a task in IDLE with its first history row', async () => {
    const uid = '7f0c1c2e-8a4b-4c55-9d1e-0123456789ab';
    const task = await newTask({ requestUid: uid, packagePath: '/var/lib/pairshift/p.tar' });
    expect(task).toMatchObject({
      phase: 'IDLE',
      progressPercent: 0,
      autoRollback: true,
      requestUid: uid,
      createdAt: T0,
      startedAt: null,
      finishedAt: null,
    });
    expect(await getUpgradeTask(db, task.upgradeId)).toEqual(task);
    const h = await listHistory(db, 1, 10, { upgradeId: task.upgradeId });
    expect(h.total).toBe(1);
    expect(h.items[0]).toMatchObject({ from: null, to: 'IDLE', cause: 'created', actor: 'alice' });
  });

  it('refuses a second unfinished upgrade of the same pair, and a reused id', async () => {
    const first = await newTask({ pairName: 'pair-dup' });
    const refused = await newTask({ pairName: 'pair-dup' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ActiveUpgradeExistsError);
    // The refusal names the upgrade that holds the pair.
    expect((refused as ActiveUpgradeExistsError).active).toEqual({
      upgradeId: first.upgradeId,
      phase: 'IDLE',
    });
    expect((refused as Error).message).toContain(first.upgradeId);
    await expect(newTask({ upgradeId: first.upgradeId })).rejects.toThrow(
      new UpgradeExistsError(first.upgradeId),
    );
  });

  it('records a transition and moves the task in one step, with start and finish times', async () => {
    const { upgradeId } = await newTask();
    await recordTransition(db, upgradeId, {
      from: 'IDLE',
      to: 'PREPARE',
      cause: 'approved',
      actor: 'reconciler',
      at: at(1),
    });
    let task = await getUpgradeTask(db, upgradeId);
    expect(task).toMatchObject({
      phase: 'PREPARE',
      startedAt: at(1),
      finishedAt: null,
      updatedAt: at(1),
    });

    await recordTransition(db, upgradeId, {
      from: 'PREPARE',
      to: 'FAILED',
      cause: 'disk full',
      actor: 'reconciler',
      at: at(5),
    });
    task = await getUpgradeTask(db, upgradeId);
    expect(task).toMatchObject({ phase: 'FAILED', startedAt: at(1), finishedAt: at(5) });

    const h = await listHistory(db, 1, 10, { upgradeId });
    expect(h.items.map((e) => [e.from, e.to, e.cause])).toEqual([
      ['PREPARE', 'FAILED', 'disk full'],
      ['IDLE', 'PREPARE', 'approved'],
      [null, 'IDLE', 'created'],
    ]);
  });

  it('refuses a transition from a phase the task is not in, and records nothing', async () => {
    const { upgradeId } = await newTask();
    const err = await recordTransition(db, upgradeId, {
      from: 'BACKUP',
      to: 'UPGRADE_BACKUP',
      cause: 'stale reconcile',
      actor: 'reconciler',
      at: at(1),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseConflictError);
    expect((err as Error).message).toBe(
      `upgrade ${upgradeId} is in phase IDLE, not BACKUP; transition not recorded`,
    );
    expect((await listHistory(db, 1, 10, { upgradeId })).total).toBe(1);
  });

  it('lets exactly one of two racing transitions from the same phase win', async () => {
    const { upgradeId } = await newTask();
    const move = (to: 'PREPARE' | 'CANCELLED') =>
      recordTransition(db, upgradeId, { from: 'IDLE', to, cause: 'race', actor: to, at: at(2) });
    const results = await Promise.allSettled([move('PREPARE'), move('CANCELLED')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(loser.reason).toBeInstanceOf(PhaseConflictError);
    expect((await listHistory(db, 1, 10, { upgradeId })).total).toBe(2);
  });

  it('says which upgrade does not exist', async () => {
    await expect(
      recordTransition(db, 'ghost', {
        from: 'IDLE',
        to: 'PREPARE',
        cause: 'c',
        actor: 'a',
        at: T0,
      }),
    ).rejects.toBeInstanceOf(UpgradeNotFoundError);
    await expect(
      appendLog(db, 'ghost', { level: 'INFO', source: 's', message: 'm' }),
    ).rejects.toThrow('upgrade ghost does not exist');
  });

  it('refuses an unknown phase before touching the database', async () => {
    const { upgradeId } = await newTask();
    await expect(
      recordTransition(db, upgradeId, {
        from: 'IDLE',
        to: 'DONE' as never,
        cause: 'c',
        actor: 'a',
        at: T0,
      }),
    ).rejects.toThrow('unknown phase in transition IDLE -> DONE');
  });

  it('pages all history newest first with the total count', async () => {
    const fresh = await backend.fresh();
    await migrate(fresh);
    for (let i = 0; i < 3; i++) {
      const id = `hist-${i}`;
      await createUpgradeTask(fresh, {
        upgradeId: id,
        pairName: id,
        targetVersion: '2',
        requestedBy: 'a',
        at: at(i * 10),
      });
      await recordTransition(fresh, id, {
        from: 'IDLE',
        to: 'PREPARE',
        cause: 'go',
        actor: 'a',
        at: at(i * 10 + 1),
      });
    }
    const p1 = await listHistory(fresh, 1, 4);
    const p2 = await listHistory(fresh, 2, 4);
    expect(p1).toMatchObject({ total: 6, page: 1, pageSize: 4 });
    expect(p2.items).toHaveLength(2);
    const all = [...p1.items, ...p2.items];
    expect(all.map((e) => e.at.getTime())).toEqual(
      [21, 20, 11, 10, 1, 0].map((s) => at(s).getTime()),
    );
    expect((await listHistory(fresh, 3, 4)).items).toEqual([]);
  });

  it('rejects nonsense paging with a clear message', async () => {
    await expect(listHistory(db, 0, 20)).rejects.toThrow(
      'page must be a whole number from 1, got 0',
    );
    await expect(listHistory(db, 1, 0)).rejects.toThrow(
      'page size must be a whole number from 1 to 500, got 0',
    );
    await expect(listLogs(db, 'x', { page: 1.5, pageSize: 20 })).rejects.toThrow(/got 1.5/);
  });

  it('pages logs newest first, filtered by level', async () => {
    const { upgradeId } = await newTask();
    const levels = ['INFO', 'WARNING', 'INFO', 'ERROR', 'INFO'] as const;
    for (const [i, level] of levels.entries()) {
      await appendLog(db, upgradeId, {
        level,
        source: `driver-${i}`,
        message: `line ${i}`,
        at: at(i),
      });
    }
    // same timestamp: the later line still comes first
    await appendLog(db, upgradeId, { level: 'INFO', source: 'tie', message: 'line 5', at: at(4) });

    const all = await listLogs(db, upgradeId, { page: 1, pageSize: 4 });
    expect(all.total).toBe(6);
    expect(all.items.map((l) => l.message)).toEqual(['line 5', 'line 4', 'line 3', 'line 2']);
    expect(all.items[1]).toMatchObject({ level: 'INFO', source: 'driver-4', at: at(4) });

    const info = await listLogs(db, upgradeId, { page: 2, pageSize: 2, level: 'INFO' });
    expect(info.total).toBe(4);
    expect(info.items.map((l) => l.message)).toEqual(['line 2', 'line 0']);

    const errors = await listLogs(db, upgradeId, { page: 1, pageSize: 20, level: 'ERROR' });
    expect(errors.items.map((l) => l.message)).toEqual(['line 3']);

    await expect(
      appendLog(db, upgradeId, { level: 'DEBUG' as never, source: 's', message: 'm' }),
    ).rejects.toThrow('log level must be one of INFO, WARNING, ERROR, got DEBUG');
  });
});
