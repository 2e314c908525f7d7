// The keepalived driver's vip_switch_record rows as the real store takes
// them (embedded PGlite, the operator's default store, with all migrations):
// migration 0005 admits the FAULT handoff's method name, and the CHECK still
// refuses names no driver writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import type { VipSwitchRecord } from '../../src/drivers/records.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { storeRecords } from '../../src/store/records.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { createUpgradeTask } from '../../src/store/upgrades.js';

jest.setTimeout(60_000);

let dir: string;
let db: SqlClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-vip-records-'));
  db = await openPglite(dir);
  await migrate(db);
  await createUpgradeTask(db, {
    upgradeId: 'u1',
    pairName: 'p',
    targetVersion: '2.0.0',
    requestedBy: 't',
  });
});
afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const record = (method: string): VipSwitchRecord => ({
  upgradeId: 'u1',
  vip: '198.18.0.100',
  fromNode: 'a',
  toNode: 'b',
  method,
  attempt: 1,
  startedAt: new Date('2026-01-01T00:00:00Z'),
  finishedAt: new Date('2026-01-01T00:00:00.107Z'),
  durationMs: 107,
  result: 'SUCCESS',
});

test('every method the driver records is accepted, and only those', async () => {
  const sink = storeRecords(db);
  for (const m of ['keepalived_fault', 'keepalived_stop', 'keepalived_priority'])
    await sink.vipSwitch(record(m));
  const rows = await db.query<{ method: string }>(
    'SELECT method FROM vip_switch_record ORDER BY id',
  );
  expect(rows.map((r) => r.method)).toEqual([
    'keepalived_fault',
    'keepalived_stop',
    'keepalived_priority',
  ]);
  await expect(sink.vipSwitch(record('keepalived_guess'))).rejects.toThrow(
    /vip_switch_record_method_check/,
  );
});
