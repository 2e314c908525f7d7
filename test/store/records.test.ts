// The drivers' record writers on both stores: every table of task list
// 1.1.4-1.1.8 takes a well-formed record and the constraints still bite.
import { jest } from '@jest/globals';
import { storeRecords } from '../../src/store/records.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { backends, createTestTask, failure, migratedStore } from './backends.js';

jest.setTimeout(120_000);

describe.each(backends)('record writers on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;

  beforeAll(async () => {
    db = await migratedStore(backend);
    await createTestTask(db, 'u1');
  });
  afterAll(() => backend.teardown());

  test('backup: created, then verified; same node+path updates in place', async () => {
    const sink = storeRecords(db);
    const base = {
      upgradeId: 'u1',
      node: 'node-a',
      kind: 'jar' as const,
      path: '/var/backups/app/app.jar.20260101T000000Z',
      sizeBytes: 10,
      md5: 'a'.repeat(32),
      sha256: 'b'.repeat(64),
      state: 'CREATED' as const,
    };
    const id = await sink.backup(base);
    await sink.updateBackupState(id, 'VERIFIED');
    const again = await sink.backup({ ...base, sizeBytes: 11, state: 'CREATED' });
    expect(again).toBe(id);
    const rows = await db.query<{ state: string; size_bytes: string }>(
      'SELECT state, size_bytes FROM backup_record',
    );
    expect(rows).toEqual([{ state: 'CREATED', size_bytes: expect.anything() }]);
    expect(Number(rows[0]!.size_bytes)).toBe(11);
    const bad = await failure(sink.backup({ ...base, path: 'relative/path' }));
    expect(bad.message).toContain('backup_record_path_check');
  });

  test('health, VIP switch, rsync and config records land with their fields', async () => {
    const sink = storeRecords(db);
    await sink.healthCheck({
      upgradeId: 'u1',
      node: 'node-b',
      checkName: 'database',
      status: 'UP',
      responseTimeMs: 3.6,
    });
    await sink.vipSwitch({
      upgradeId: 'u1',
      vip: '198.18.0.100',
      fromNode: 'node-a',
      toNode: 'node-b',
      method: 'keepalived_stop',
      attempt: 1,
      startedAt: new Date('2026-01-01T00:00:00Z'),
      finishedAt: new Date('2026-01-01T00:00:00.400Z'),
      durationMs: 400,
      result: 'SUCCESS',
    });
    await sink.rsyncStatus({
      upgradeId: 'u1',
      node: 'node-a',
      state: 'paused',
      detail: 'upgrade u1',
    });
    await sink.configSync({
      upgradeId: 'u1',
      checksums: {
        'node-a': { '/etc/app/root.key': 'c'.repeat(64) },
        'node-b': { '/etc/app/root.key': 'c'.repeat(64) },
      },
      consistent: true,
    });
    const [h] = await db.query<{ response_time_ms: number; status: string }>(
      'SELECT response_time_ms, status FROM health_check_record',
    );
    expect(h).toEqual({ response_time_ms: 4, status: 'UP' });
    const [v] = await db.query<{ duration_ms: number; result: string }>(
      'SELECT duration_ms, result FROM vip_switch_record',
    );
    expect(v).toEqual({ duration_ms: 400, result: 'SUCCESS' });
    const [r] = await db.query<{ state: string }>('SELECT state FROM rsync_status_record');
    expect(r).toEqual({ state: 'paused' });
    const [c] = await db.query<{ consistent: boolean; checksums: Record<string, unknown> }>(
      'SELECT consistent, checksums FROM config_sync_record',
    );
    expect(c!.consistent).toBe(true);
    expect(c!.checksums).toEqual({
      'node-a': { '/etc/app/root.key': 'c'.repeat(64) },
      'node-b': { '/etc/app/root.key': 'c'.repeat(64) },
    });
    const badState = await failure(
      sink.rsyncStatus({ upgradeId: 'u1', node: 'node-a', state: 'sleeping' as never }),
    );
    expect(badState.message).toContain('rsync_status_record_state_check');
  });
});
