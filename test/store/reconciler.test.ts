// The reconciler end to end on a real store and the standalone source, with
// a simulated pair: whole upgrades, the records they leave, and an operator
// killed at every step boundary that still finishes without repeating a
// side effect.

import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { HAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { UpgradeReconciler } from '../../src/reconciler/reconciler.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { loadMemory } from '../../src/store/journal-store.js';
import { migrate } from '../../src/store/migrate.js';
import { listSteps } from '../../src/store/progress-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import {
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  listLogs,
} from '../../src/store/upgrades.js';
import { SimRuntime } from '../support/sim-runtime.js';
import { backends } from './backends.js';

jest.setTimeout(180_000);

const FP = 'SHA256:Q1b9c2m0yNnYQm9m8R5m2zj9y7t8H1o6hXq3x4K5v6w';
function pair(name: string): HAPair {
  const node = (n: string, ip: string) => ({
    name: n,
    address: ip,
    ssh: { hostKey: { fingerprint: FP } },
  });
  return {
    apiVersion: 'pairshift.io/v1alpha1',
    kind: 'HAPair',
    metadata: { name },
    spec: {
      vip: { address: '198.18.0.100', prefixLength: 24, interface: 'eth0' },
      ssh: { user: 'root', port: 22, privateKeyPath: '/k' },
      nodes: [node('node-a', '198.18.0.11'), node('node-b', '198.18.0.12')],
      keepalived: {
        configPath: '/k.conf',
        instance: 'VI_1',
        start: 's',
        stop: 's',
        status: 's',
        reload: 's',
      },
      services: [{ name: 'java', port: 8080, start: 's', stop: 's', status: 's' }],
      database: {
        engine: 'postgresql',
        port: 5432,
        name: 'app',
        user: 'app',
        superuser: 'postgres',
        replicationUser: 'r',
        osUser: 'postgres',
        dataDir: '/d',
        binDir: '/b',
        start: 's',
        stop: 's',
        status: 's',
      },
      rsync: {
        source: '/etc/app/',
        direction: 'vip-holder-to-peer',
        periodSeconds: 2,
        pause: 'p',
        resume: 'r',
        status: 's',
      },
      paths: {
        appDir: '/opt/app',
        appJar: '/opt/app/app.jar',
        configDir: '/etc/app',
        rootKey: '/etc/app/root.key',
        backupDir: '/b',
      },
    },
  } as HAPair;
}

class Killed extends Error {}

describe.each(backends)('reconciler on %s', (backendName, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let source: StandaloneSource;
  let clock = Date.UTC(2026, 10, 29, 12, 0, 0);
  const now = () => {
    clock += 500;
    return new Date(clock);
  };
  const logger = createLogger({ stream: new PassThrough(), format: 'json' });

  beforeAll(async () => {
    await backend.setup();
    db = await backend.fresh();
    await migrate(db);
    source = new StandaloneSource({ db });
  });
  afterAll(async () => {
    await source.stop();
    await backend.teardown();
  });

  async function request(name: string, pairName: string, extra: object = {}) {
    await source.putHAPair(pair(pairName));
    await source.createUpgradeRequest({
      metadata: { name },
      spec: {
        pairRef: { name: pairName },
        package: { path: '/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
        ...extra,
      },
    });
  }

  function reconciler(runtime: SimRuntime, afterAction?: (id: string) => void, maxSteps = 50) {
    return new UpgradeReconciler({
      maxStepsPerReconcile: maxSteps,
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => runtime,
      logger,
      now,
      actor: 'operator@test',
      ...(afterAction ? { afterAction } : {}),
    });
  }

  async function runToEnd(r: UpgradeReconciler, name: string) {
    for (let i = 0; i < 500; i++) {
      const out = await r.reconcile(name);
      if (out.requeueAfterMs === undefined) return;
      clock += out.requeueAfterMs;
    }
    throw new Error('did not finish');
  }

  test('a whole upgrade: status, history, progress rows and logs', async () => {
    await request('happy', 'p-happy');
    const rt = new SimRuntime();
    await runToEnd(reconciler(rt), 'happy');
    const req = await source.getUpgradeRequest('happy');
    expect(req?.status).toMatchObject({
      phase: 'COMPLETE',
      progress: 100,
      fromVersion: '1.0.0',
      targetVersion: '2.0.0',
    });
    expect(req?.status?.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      observedGeneration: 1,
    });
    expect(req?.status?.completedSteps.map((s) => s.step)).toContain(
      'UPGRADE_BACKUP/INSTALL_PACKAGE@node-b',
    );
    expect(rt.sim.nodes.map((n) => n.installedVersion)).toEqual(['2.0.0', '2.0.0']);
    const history = await listHistory(db, 1, 50, { upgradeId: 'happy' });
    expect(history.items.map((h) => h.to).reverse()).toEqual([
      'IDLE',
      'PREPARE',
      'BACKUP',
      'UPGRADE_BACKUP',
      'VIP_SWITCH',
      'UPGRADE_MASTER',
      'VERIFY',
      'COMPLETE',
    ]);
    const steps = await listSteps(db, 'happy');
    expect(steps.every((s) => s.status === 'DONE')).toBe(true);
    expect(steps.map((s) => s.step)).toContain('VIP_SWITCH/SWITCHOVER@node-b');
    const logs = await listLogs(db, 'happy', { page: 1, pageSize: 200 });
    expect(logs.items.some((l) => l.message.includes('VERIFY -> COMPLETE'))).toBe(true);
    // What the drivers did is kept with the step and in the log.
    expect(steps.find((s) => s.step === 'VIP_SWITCH/SWITCHOVER@node-b')?.message).toMatch(
      /; done: SWITCHOVER on node-b changed the pair$/,
    );
    expect(
      logs.items.some(
        (l) =>
          l.message === 'VIP_SWITCH/SWITCHOVER@node-b: done: SWITCHOVER on node-b changed the pair',
      ),
    ).toBe(true);
    expect((await getUpgradeTask(db, 'happy'))?.phase).toBe('COMPLETE');
    expect(rt.closed).toBe(true);
    // master and backup chosen from the first observation: the VIP holder is the master
    expect((await loadMemory(db, 'happy'))?.context).toMatchObject({
      masterNode: 'node-a',
      backupNode: 'node-b',
    });
    expect(steps.map((s) => s.step)).toContain('PREPARE/PAUSE_RSYNC');
    // Reconciled again after the end (an operator restarted then): nothing to do, nothing changed.
    const effects = Object.fromEntries(rt.effects);
    expect(await reconciler(rt).reconcile('happy')).toEqual({});
    expect(Object.fromEntries(rt.effects)).toEqual(effects);
    expect((await listHistory(db, 1, 50, { upgradeId: 'happy' })).items).toHaveLength(8);
  });

  test('a broken release rolls back by itself: FAILED, RolledBack, both nodes on the old version', async () => {
    await request('broken', 'p-broken');
    const rt = new SimRuntime('2.0.0', true);
    await runToEnd(reconciler(rt), 'broken');
    const req = await source.getUpgradeRequest('broken');
    expect(req?.status?.phase).toBe('FAILED');
    expect(req?.status?.conditions.find((c) => c.type === 'RolledBack')?.status).toBe('True');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'broken' })).items.reverse();
    expect(history.map((h) => h.to)).toEqual([
      'IDLE',
      'PREPARE',
      'BACKUP',
      'UPGRADE_BACKUP',
      'ROLLBACK',
      'FAILED',
    ]);
    expect(history[4]!.cause).toMatch(/: node-b failed its health check after the upgrade/);
    // the auto rollback does not touch the database unless the request asks for it
    expect(rt.restores).toEqual([{ node: 'node-b', restoreDatabase: false }]);
    expect(rt.sim.nodes.map((n) => [n.installedVersion, n.rsyncPaused, n.configLocked])).toEqual([
      ['1.0.0', false, false],
      ['1.0.0', false, false],
    ]);
    expect(rt.sim.clientsServed()).toBe(true);
  });

  test('a rollback asked for with restoreDatabase passes it to every RESTORE', async () => {
    await request('roll-me', 'p-roll');
    const rt = new SimRuntime();
    let switched = false;
    const r = reconciler(rt, (_id) => {
      // once the VIP moved to the upgraded node: both nodes get restored
      if (!switched && rt.sim.nodes[1].holdsVip) {
        switched = true;
        void source.patchSpec('roll-me', {
          rollback: { reason: 'slow queries', restoreDatabase: true },
        });
      }
    });
    await runToEnd(r, 'roll-me');
    expect(switched).toBe(true);
    const req = await source.getUpgradeRequest('roll-me');
    expect(req?.status?.phase).toBe('FAILED');
    expect(req?.status?.conditions.find((c) => c.type === 'RolledBack')?.status).toBe('True');
    expect(rt.restores.length).toBeGreaterThan(0);
    expect(rt.restores.every((x) => x.restoreDatabase)).toBe(true);
    expect(rt.sim.nodes.map((n) => n.installedVersion)).toEqual(['1.0.0', '1.0.0']);
    const memory = await loadMemory(db, 'roll-me');
    expect(memory?.facts.requestsSent).toEqual(['rollback']);
  });

  test('cancel written on the resource during the upgrade rolls back and ends CANCELLED', async () => {
    await request('cancel-me', 'p-cancel');
    const rt = new SimRuntime();
    let actions = 0;
    const r = reconciler(rt, () => {
      if (++actions === 12)
        void source.patchSpec('cancel-me', { cancel: { reason: 'window over' } });
    });
    await runToEnd(r, 'cancel-me');
    const req = await source.getUpgradeRequest('cancel-me');
    expect(req?.status?.phase).toBe('CANCELLED');
    expect(rt.sim.nodes.map((n) => [n.installedVersion, n.rsyncPaused, n.configLocked])).toEqual([
      ['1.0.0', false, false],
      ['1.0.0', false, false],
    ]);
    // the request was fed to the machine once, the reason kept, and the tidy-up ran
    const memory = await loadMemory(db, 'cancel-me');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'cancel-me' })).items;
    expect(history.find((h) => h.to === 'ROLLBACK')?.cause).toMatch(/window over/);
    expect(memory?.facts.requestsSent).toEqual(['cancel']);
    expect(memory?.facts.tempFilesRemoved).toBe(true);
    const logs = await listLogs(db, 'cancel-me', { page: 1, pageSize: 500 });
    expect(logs.items.some((l) => l.message.includes('REMOVE_TEMP_FILES'))).toBe(true);
    expect(logs.items.some((l) => l.message.includes('refused'))).toBe(false);
  });

  test('cancel before approval ends CANCELLED without a runtime and frees the pair', async () => {
    // As the API triggers: the task row first (it holds the pair), then the resource.
    const task = (id: string) => ({
      upgradeId: id,
      pairName: 'p-unapproved',
      targetVersion: '2.0.0',
      requestedBy: 'api:test',
      packagePath: '/pkgs/app-2.0.0.tar.gz',
      autoRollback: true,
      at: now(),
    });
    await createUpgradeTask(db, task('unapproved'));
    await request('unapproved', 'p-unapproved', { options: { approved: false } });
    let built = 0;
    const r = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => {
        built++;
        return new SimRuntime();
      },
      logger,
      now,
      actor: 'operator@test',
    });
    expect(await r.reconcile('unapproved')).toEqual({});
    expect((await source.getUpgradeRequest('unapproved'))?.status?.message).toMatch(/approval/);
    await source.patchSpec('unapproved', { cancel: { reason: 'not this week' } });
    expect(await r.reconcile('unapproved')).toEqual({});
    const req = await source.getUpgradeRequest('unapproved');
    expect(req?.status?.phase).toBe('CANCELLED');
    expect(req?.status?.finishedAt).toBeDefined();
    expect(req?.status?.message).toContain('not this week');
    expect((await getUpgradeTask(db, 'unapproved'))?.phase).toBe('CANCELLED');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'unapproved' })).items;
    expect(history.map((h) => h.to).reverse()).toEqual(['IDLE', 'CANCELLED']);
    expect(built).toBe(0);
    // Reconciling again changes nothing; the pair takes a new upgrade.
    expect(await r.reconcile('unapproved')).toEqual({});
    expect((await source.getUpgradeRequest('unapproved'))?.status?.phase).toBe('CANCELLED');
    await expect(createUpgradeTask(db, task('after-unapproved'))).resolves.toBeDefined();
  });

  test('a dry run plans and reports, executes nothing and ends CANCELLED; the pair is free after', async () => {
    await request('dry', 'p-dry', { options: { dryRun: true } });
    const rt = new SimRuntime();
    const asked: boolean[] = [];
    const r = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async (args) => {
        asked.push(args.dryRun);
        return rt;
      },
      logger,
      now,
      actor: 'operator@test',
    });
    await runToEnd(r, 'dry');
    expect(asked).toEqual([true]);
    expect(rt.effects.size).toBe(0);
    expect(rt.closed).toBe(true);
    const req = await source.getUpgradeRequest('dry');
    expect(req?.status?.phase).toBe('CANCELLED');
    expect(req?.status?.finishedAt).toBeDefined();
    expect(req?.status?.message).toMatch(
      /^dry run, nothing was changed: package 2\.0\.0 verified, upgrades 1\.0\.0; pair: node-a: primary, VIP, 1\.0\.0, healthy; node-b: standby, 1\.0\.0, healthy; the upgrade would start with /,
    );
    expect(req?.status?.message).toContain('PAUSE_RSYNC');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'dry' })).items.reverse();
    expect(history.map((h) => h.to)).toEqual(['IDLE', 'CANCELLED']);
    expect(history[1]!.cause).toContain('dry run');
    const logs = await listLogs(db, 'dry', { page: 1, pageSize: 50 });
    expect(logs.items.some((l) => l.message.startsWith('dry run, nothing was changed'))).toBe(true);
    expect(rt.sim.nodes.map((n) => [n.installedVersion, n.rsyncPaused, n.holdsVip])).toEqual([
      ['1.0.0', false, true],
      ['1.0.0', false, false],
    ]);
    // Reconciling again does nothing; a real upgrade of the pair may follow.
    expect(await r.reconcile('dry')).toEqual({});
    expect(rt.effects.size).toBe(0);
    await request('after-dry', 'p-dry');
    const real = new SimRuntime();
    await runToEnd(reconciler(real), 'after-dry');
    expect((await source.getUpgradeRequest('after-dry'))?.status?.phase).toBe('COMPLETE');
  });

  test('secrets in what the drivers report are masked before the store keeps them', async () => {
    await request('leaky', 'p-leaky');
    const rt = new SimRuntime();
    rt.describe = (step) =>
      `${step}: psql postgres://app:hunter2-hunter2@db/app password=hunter2-hunter2`;
    await runToEnd(reconciler(rt), 'leaky');
    const steps = await listSteps(db, 'leaky');
    const logs = await listLogs(db, 'leaky', { page: 1, pageSize: 500 });
    const kept = JSON.stringify(steps) + JSON.stringify(logs.items);
    expect(kept).toContain('postgres://app:[REDACTED]@db/app');
    expect(kept).not.toContain('hunter2');
  });

  test('a second upgrade of the same pair waits while the first is active', async () => {
    await request('first', 'p-shared');
    await request('second', 'p-shared');
    const r1 = reconciler(new SimRuntime(), undefined, 3);
    await r1.reconcile('first'); // now active
    const out = await reconciler(new SimRuntime()).reconcile('second');
    expect(out.requeueAfterMs).toBe(10_000);
    expect((await source.getUpgradeRequest('second'))?.status?.message).toMatch(/^waiting: /);
  });

  if (backendName !== 'postgres') return;

  test('killed at every action boundary and restarted, it finishes without repeating a side effect', async () => {
    const clean = new SimRuntime();
    await request('count', 'p-count');
    let total = 0;
    await runToEnd(
      reconciler(clean, () => total++),
      'count',
    );
    const expected = Object.fromEntries(clean.effects);
    expect(total).toBeGreaterThan(30);

    for (let k = 1; k <= total; k++) {
      const name = `kill-${k}`;
      await request(name, `p-kill-${k}`);
      const rt = new SimRuntime(); // the pair outlives the operator
      let n = 0;
      const doomed = reconciler(rt, () => {
        if (++n === k) throw new Killed(`killed after action ${k}`);
      });
      await expect(runToEnd(doomed, name)).rejects.toBeInstanceOf(Killed);
      // A new operator process: nothing in memory, the same store and pair.
      await runToEnd(reconciler(rt), name);
      const st = (await source.getUpgradeRequest(name))?.status;
      expect({ k, phase: st?.phase }).toEqual({ k, phase: 'COMPLETE' });
      expect({ k, effects: Object.fromEntries(rt.effects) }).toEqual({ k, effects: expected });
    }
  });
});
