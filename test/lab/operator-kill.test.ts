// The operator SIGKILLed at every step boundary of one real upgrade (lab
// "e2", 1.0.0 -> 2.0.0): `pairshift operator` runs as a child process with
// PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS=1, so each process records exactly one
// action (a phase change or a step) and kills itself, as a crash or an OOM
// kill would; it is started again until the UpgradeRequest is terminal. The
// embedded store is single-process, so the test reads it only between runs.
// A client prober runs through the VIP the whole time. The upgrade must
// finish COMPLETE with no acknowledged write lost and no completed step's
// side effect repeated. Needs root and what docs/lab.md lists.
import { jest } from '@jest/globals';
import { HAPPY_PATH, isTerminal, type Phase } from '../../src/core/phases.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { listLogs } from '../../src/store/upgrades.js';
import {
  buildDist,
  clientFigures,
  historyOf,
  OperatorLab,
  sleep,
  stepsOf,
  vipSwitches,
  withStore,
} from './operator-harness.js';

jest.setTimeout(1_800_000);

const lab = new OperatorLab('e2');
const NAME = 'e2-kill-every-step';

beforeAll(async () => {
  buildDist();
  await lab.up();
  await lab.buildPackages();
}, 600_000);

afterAll(async () => {
  await lab.dispose();
});

async function statusOf(db: SqlClient): Promise<UpgradeRequestStatus | null> {
  const [row] = await db.query<{ status: UpgradeRequestStatus | null }>(
    `SELECT status FROM resource WHERE kind = 'UpgradeRequest' AND name = $1`,
    [NAME],
  );
  return row?.status ?? null;
}

describe('the operator killed with SIGKILL after every recorded action', () => {
  it('still finishes the upgrade COMPLETE, loses no write and repeats no completed step', async () => {
    const store = await lab.newStore();
    await store.db.close();
    lab.writeRequest(NAME, lab.packages.v2);
    const prober = lab.startClientProber();
    const started = Date.now();
    const runs: { phase: Phase | 'none'; exit: string; ms: number }[] = [];
    let probe: unknown = null;
    try {
      await sleep(1500);
      for (;;) {
        const st = await withStore(store.dir, statusOf);
        if (st && isTerminal(st.phase) && st.finishedAt) break;
        if (runs.length >= 150) throw new Error(`not finished after ${runs.length} runs`);
        const t = Date.now();
        const child = lab.startChild(store.dir, { killAfterActions: 1 });
        // A run that only waits (nothing to record yet) is stopped after a while.
        const stall = setTimeout(() => child.child.kill('SIGTERM'), 90_000);
        const ex = await child.exited;
        clearTimeout(stall);
        runs.push({
          phase: st?.phase ?? 'none',
          exit: ex.signal ?? `code ${ex.code}`,
          ms: Date.now() - t,
        });
        if (ex.signal !== 'SIGKILL' && ex.signal !== 'SIGTERM')
          throw new Error(
            `the operator exited by itself (${ex.code}): ${child.stderr.slice(-800)}`,
          );
      }
    } finally {
      probe = await prober.stop().catch((e: unknown) => ({ error: String(e) }));
    }
    const totalMs = Date.now() - started;
    const killed = runs.filter((r) => r.exit === 'SIGKILL').length;
    const c = clientFigures(probe);
    console.log(
      `kill test: ${runs.length} operator runs (${killed} SIGKILLed after one action) in ${(totalMs / 1000).toFixed(1)} s, ` +
        `mean run ${(runs.reduce((s, r) => s + r.ms, 0) / runs.length / 1000).toFixed(1)} s; ` +
        `clients: HTTP longest ${c.httpLongestMs} ms, writes longest ${c.writeLongestMs} ms, ${c.acked} acked, ${c.lost} lost`,
    );
    console.log(runs.map((r) => `${r.phase}:${r.exit}:${r.ms}`).join(' '));

    await withStore(store.dir, async (db) => {
      const st = (await statusOf(db))!;
      expect(st.phase).toBe('COMPLETE');
      const history = await historyOf(db, NAME);
      expect(history.map((h) => h.to)).toEqual(HAPPY_PATH);
      // every step reached DONE
      const steps = await stepsOf(db, NAME);
      expect(steps.filter((s) => s.status !== 'DONE')).toEqual([]);
      // each one-shot step was started exactly once (the reconciler logs each start)
      const logs = (await listLogs(db, NAME, { page: 1, pageSize: 500 })).items.map(
        (l) => l.message,
      );
      const starts = (prefix: string) => logs.filter((m) => m.startsWith(prefix)).length;
      for (const s of [
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
      ]) {
        expect([s, starts(s)]).toEqual([s, 1]);
      }
      // one switchover, one backup file of each kind per node
      const vip = await vipSwitches(db, NAME);
      expect(vip.filter((v) => v.result === 'SUCCESS')).toHaveLength(1);
      expect(vip.filter((v) => v.result === 'SUCCESS')[0]).toMatchObject({
        from_node: 'a',
        to_node: 'b',
      });
      const backups = await db.query<{ node: string; kind: string; sha256: string }>(
        `SELECT node, kind, sha256 FROM backup_record WHERE upgrade_id = $1 AND state <> 'DELETED' ORDER BY node, kind`,
        [NAME],
      );
      expect(backups.map((b) => `${b.node}:${b.kind}`)).toEqual(
        expect.arrayContaining(['a:config', 'a:jar', 'b:config', 'b:jar']),
      );
      expect(new Set(backups.map((b) => `${b.node}:${b.kind}`)).size).toBe(backups.length);
      for (const node of ['a', 'b'] as const) {
        // exactly one backup set of this upgrade on the node itself
        expect(await lab.backupSetsOf(node, NAME)).toHaveLength(1);
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
    expect(c.acked).toBeGreaterThan(100);
    expect(c.lost).toBe(0);
    expect(killed).toBeGreaterThan(30);
  });
});
