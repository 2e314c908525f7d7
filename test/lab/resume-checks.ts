// What an upgrade carried out by several operator processes one after the
// other (killed, or stopped with SIGTERM) must show once it is COMPLETE: the
// happy path, every step DONE, each one-shot step started once, one
// switchover a -> b, one backup set per node, the 1.0.0 jar kept once, each
// migration applied once, the pair on 2.0.0 with the VIP on b. Shared by
// operator-kill.test.ts and operator-sigterm.test.ts.
import { expect } from '@jest/globals';
import { HAPPY_PATH } from '../../src/core/phases.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { listLogs } from '../../src/store/upgrades.js';
import {
  historyOf,
  type OperatorLab,
  stepsOf,
  vipSwitches,
  withStore,
} from './operator-harness.js';

const ONE_SHOT = [
  'BACKUP on a:',
  'BACKUP on b:',
  'RUN_MIGRATIONS:',
  'STOP_SERVICES on b:',
  'INSTALL_PACKAGE on b:',
  'START_SERVICES on b:',
  'SWITCHOVER on b:',
  'STOP_SERVICES on a:',
  'INSTALL_PACKAGE on a:',
  'START_SERVICES on a:',
] as const;

/**
 * `startedAtMost` allows a step more starts: one left running when its
 * operator exited (a grace that ran out) is observed and may run again.
 */
export async function expectCompletedOnce(
  lab: OperatorLab,
  storeDir: string,
  name: string,
  startedAtMost: Partial<Record<(typeof ONE_SHOT)[number], number>> = {},
): Promise<void> {
  await withStore(storeDir, async (db: SqlClient) => {
    const history = await historyOf(db, name);
    expect(history.map((h) => h.to)).toEqual(HAPPY_PATH);
    // every step reached DONE
    const steps = await stepsOf(db, name);
    expect(steps.filter((s) => s.status !== 'DONE')).toEqual([]);
    // each one-shot step was started once, plus once more per failed try of
    // it (a transient SSH error on a loaded machine is retried, bounded by
    // the error policy): never again after it succeeded. The reconciler logs
    // each start ("RUN_MIGRATIONS: ...") and each failed try
    // ("UPGRADE_BACKUP/RUN_MIGRATIONS: <error>").
    const logs = (await listLogs(db, name, { page: 1, pageSize: 500 })).items.map((l) => l.message);
    const starts = (prefix: string) => logs.filter((m) => m.startsWith(prefix)).length;
    const failedTries = (prefix: string) => {
      const [, step, node] = /^(\w+)(?: on (\w+))?:$/.exec(prefix)!;
      const label = node ? `${step}@${node}` : step!;
      return logs.filter((m) => m.includes(`/${label}: `) && !m.includes(`/${label}: done:`))
        .length;
    };
    for (const s of ONE_SHOT) {
      const allowed = (startedAtMost[s] ?? 1) + failedTries(s);
      expect([s, starts(s) >= 1 && starts(s) <= allowed]).toEqual([s, true]);
    }
    // one switchover, one backup file of each kind per node
    const vip = await vipSwitches(db, name);
    expect(vip.filter((v) => v.result === 'SUCCESS')).toHaveLength(1);
    expect(vip.filter((v) => v.result === 'SUCCESS')[0]).toMatchObject({
      from_node: 'a',
      to_node: 'b',
    });
    const backups = await db.query<{ node: string; kind: string; sha256: string }>(
      `SELECT node, kind, sha256 FROM backup_record WHERE upgrade_id = $1 AND state <> 'DELETED' ORDER BY node, kind`,
      [name],
    );
    expect(backups.map((b) => `${b.node}:${b.kind}`)).toEqual(
      expect.arrayContaining(['a:config', 'a:jar', 'b:config', 'b:jar']),
    );
    expect(new Set(backups.map((b) => `${b.node}:${b.kind}`)).size).toBe(backups.length);
    for (const node of ['a', 'b'] as const) {
      // exactly one backup set of this upgrade on the node itself
      expect(await lab.backupSetsOf(node, name)).toHaveLength(1);
      // the old jar kept exactly once, and it is the 1.0.0 jar that was backed up
      const kept = await lab.inLab(node, [
        'sh',
        '-c',
        'cd "$(dirname "$1")" && for f in "$(basename "$1")".*; do [ -f "$f" ] && sha256sum "$f"; done',
        'sh',
        lab.pair.spec.paths.appJar,
      ]);
      const lines = kept.stdout.trim().split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/\.1\.0\.0$/);
      const jar = backups.find((b) => b.node === node && b.kind === 'jar')!;
      expect(lines[0]!.split(/\s+/)[0]).toBe(jar.sha256);
    }
  });
  // each migration applied once, on the primary (b now)
  expect(
    await lab.psql(
      'b',
      "SELECT string_agg(name || '=' || n, ',') FROM (SELECT name, count(*) AS n FROM pairshift_schema_migrations GROUP BY name) m",
    ),
  ).toBe('001_app_events.sql=1');
  const pair = await lab.pairState();
  expect(pair.versions).toEqual({ a: '2.0.0', b: '2.0.0' });
  expect(pair.vipHolders).toEqual(['b']);
  expect(pair.vipHolderHealthy).toBe(true);
  expect(pair.configConsistent).toBe(true);
  expect(Object.values(pair.rsync).map((s) => s.paused)).toEqual([false, false]);
}
