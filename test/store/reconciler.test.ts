// The reconciler end to end on a real store and the standalone source, with
// a simulated pair: whole upgrades, the records they leave, and an operator
// killed at every step boundary that still finishes without repeating a
// side effect.

import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { HAPPY_PATH } from '../../src/core/phases.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { HAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { UpgradeReconciler } from '../../src/reconciler/reconciler.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { loadMemory } from '../../src/store/journal-store.js';
import { listSteps } from '../../src/store/progress-store.js';
import { storeRecords } from '../../src/store/records.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import {
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  listLogs,
} from '../../src/store/upgrades.js';
import { SimRuntime } from '../support/sim-runtime.js';
import { backends, migratedStore } from './backends.js';

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
    db = await migratedStore(backend);
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
    expect(history.items.map((h) => h.to).reverse()).toEqual(HAPPY_PATH);
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

  test('the status names the running step, what the observation found wrong, the verified backups and the last VIP switch', async () => {
    await request('shown', 'p-shown');
    const rt = new SimRuntime();
    const records = storeRecords(db);
    // What the status said while each step ran.
    const during: (string | undefined)[] = [];
    const execute = rt.execute.bind(rt);
    rt.execute = async (step, node, ctx, restoreDatabase) => {
      during.push((await source.getUpgradeRequest('shown'))?.status?.currentStep);
      const outcome = await execute(step, node, ctx, restoreDatabase);
      // The executor's drivers write these records on a real pair.
      if (outcome.ok && step === 'BACKUP' && node) {
        await records.backup({
          upgradeId: 'shown',
          node,
          kind: 'config',
          path: `/b/config-${node}.tar`,
          sizeBytes: 10,
          md5: 'a'.repeat(32),
          sha256: 'b'.repeat(64),
          state: 'VERIFIED',
          createdAt: new Date(clock),
          verifiedAt: new Date(clock),
        });
      }
      if (outcome.ok && step === 'SWITCHOVER') {
        await records.vipSwitch({
          upgradeId: 'shown',
          vip: '198.18.0.100',
          fromNode: 'node-a',
          toNode: 'node-b',
          method: 'keepalived_priority',
          attempt: 1,
          startedAt: new Date(clock),
          finishedAt: new Date(clock + 700),
          durationMs: 700,
          result: 'SUCCESS',
        });
      }
      return outcome;
    };
    // A probe error carrying a secret, and more of them than the status shows.
    const observe = rt.observe.bind(rt);
    rt.observe = async () => {
      const o = await observe();
      const down = o.nodes.filter((n) => !n.reachable).map((n) => n.name);
      const problems = down.flatMap((n) =>
        Array.from(
          { length: 12 },
          (_, i) => `${n}: probe ${i}: psql password=hunter2-hunter2 failed`,
        ),
      );
      return { ...o, problems };
    };
    const written = jest.spyOn(source, 'updateStatus');
    let actions = 0;
    await runToEnd(
      reconciler(rt, () => {
        if (++actions === 20) rt.sim.inject({ kind: 'unreachable', node: 1, rounds: 2 });
      }),
      'shown',
    );
    const statuses = written.mock.calls.filter(([n]) => n === 'shown').map(([, st]) => st);
    written.mockRestore();

    // Each step ran while the status named it; none is named once finished.
    expect(during.length).toBeGreaterThan(10);
    expect(during).toContain('UPGRADE_BACKUP/INSTALL_PACKAGE@node-b');
    expect(during.every((c) => c !== undefined && /^[A-Z_]+\/[A-Z_]+(@node-[ab])?$/.test(c))).toBe(
      true,
    );
    const st = (await source.getUpgradeRequest('shown'))?.status;
    expect(st?.phase).toBe('COMPLETE');
    expect(st?.currentStep).toBeUndefined();

    // The wait says why, with the observation's problems, masked and bounded.
    const waiting = statuses.find((x) => x.problems !== undefined);
    expect(waiting?.message).toMatch(/^node-b is not answering; .*; observed: node-b: probe 0: /);
    expect(waiting?.problems).toHaveLength(11);
    expect(waiting?.problems?.[10]).toBe('and 2 more');
    expect(JSON.stringify(statuses)).not.toContain('hunter2');
    expect(JSON.stringify(statuses)).toContain('password=[REDACTED]');
    // Once the node answers again, the list goes.
    expect(st?.problems).toBeUndefined();

    expect(st?.backups?.map((b) => [b.node, b.path, b.md5, b.sha256])).toEqual([
      ['node-a', '/b/config-node-a.tar', 'a'.repeat(32), 'b'.repeat(64)],
      ['node-b', '/b/config-node-b.tar', 'a'.repeat(32), 'b'.repeat(64)],
    ]);
    expect(st?.vipSwitch).toMatchObject({
      from: 'node-a',
      to: 'node-b',
      result: 'SUCCESS',
      attempt: 1,
      durationMs: 700,
    });
  });

  test('a split brain halts: Stalled=True with the cause, one Event, no step; it clears and the upgrade resumes by itself', async () => {
    await request('split', 'p-split');
    const rt = new SimRuntime();
    const actions: string[] = [];
    const stalledSeen: { status: string; reason: string; message: string }[] = [];
    const reconciling: string[] = [];
    const hooked = new UpgradeReconciler({
      maxStepsPerReconcile: 50,
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => rt,
      logger,
      now,
      actor: 'operator@test',
      afterAction: (_id, a) => {
        actions.push(a.kind === 'step' ? `step ${a.step}` : a.kind);
        // Both nodes claim the VIP for 6 looks, as UPGRADE_BACKUP begins.
        if (a.kind === 'event' && a.event.type === 'BACKUP_VERIFIED')
          rt.sim.inject({ kind: 'split-brain', rounds: 6 });
      },
    });
    for (let i = 0; i < 500; i++) {
      const out = await hooked.reconcile('split');
      const st = (await source.getUpgradeRequest('split'))?.status;
      const c = st?.conditions.find((x) => x.type === 'Stalled');
      if (c) stalledSeen.push({ status: c.status, reason: c.reason, message: c.message });
      const rc = st?.conditions.find((x) => x.type === 'Reconciling');
      if (c?.status === 'True' && rc) reconciling.push(rc.status);
      if (out.requeueAfterMs === undefined) break;
      clock += out.requeueAfterMs;
    }
    const halted = stalledSeen.filter((c) => c.status === 'True');
    expect(halted.length).toBeGreaterThanOrEqual(3);
    expect(halted[0]).toMatchObject({ reason: 'SplitBrain' });
    expect(halted[0]!.message).toMatch(/split brain: both node-a and node-b hold the VIP/);
    expect(halted[0]!.message).toMatch(/resumes by itself/);
    expect(new Set(reconciling)).toEqual(new Set(['False']));
    // Nothing done on the nodes while halted: no step between the first and last halt.
    const first = actions.indexOf('halt');
    const last = actions.lastIndexOf('halt');
    expect(actions.slice(first, last + 1).filter((a) => a.startsWith('step'))).toEqual([]);
    expect(last - first + 1).toBeGreaterThanOrEqual(3);
    const req = await source.getUpgradeRequest('split');
    expect(req?.status?.phase).toBe('COMPLETE');
    expect(req?.status?.conditions.find((x) => x.type === 'Stalled')?.status).toBe('False');
    // One WARNING line and one Event (the standalone source logs it) for the
    // cause, not one per round; one resume.
    const logs = (await listLogs(db, 'split', { page: 1, pageSize: 500 })).items;
    expect(logs.filter((l) => l.message.startsWith('SplitBrain: '))).toHaveLength(1);
    expect(
      logs.filter(
        (l) => l.level === 'WARNING' && /^UPGRADE_BACKUP: halted: split brain/.test(l.message),
      ),
    ).toHaveLength(1);
    expect(logs.filter((l) => l.message.startsWith('Resumed: '))).toHaveLength(1);
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

  /** A runtime factory that fails with these errors first, then hands out rt. */
  function flaky(rt: SimRuntime, failures: Error[]) {
    const built: number[] = [];
    const r = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => {
        built.push(clock);
        const err = failures.shift();
        if (err) throw err;
        return rt;
      },
      logger,
      now,
      actor: 'operator@test',
      random: () => 0,
    });
    return { r, built };
  }
  const sshHiccup = () =>
    new DriverError('cannot connect over SSH: read ECONNRESET', {
      kind: 'transient',
      node: 'node-b',
    });

  test('a transient SSH failure while the runtime is built is retried with backoff and the upgrade ends COMPLETE', async () => {
    await request('hiccup', 'p-hiccup');
    const rt = new SimRuntime();
    const { r, built } = flaky(rt, [sshHiccup(), sshHiccup()]);
    const first = await r.reconcile('hiccup');
    expect(first.requeueAfterMs).toBe(2000);
    const waiting = (await source.getUpgradeRequest('hiccup'))?.status;
    expect(waiting?.phase).toBe('IDLE');
    expect(waiting?.finishedAt).toBeUndefined();
    expect(waiting?.message).toMatch(
      /^cannot prepare the upgrade yet \(attempt 1 of 6\): node-b: cannot connect over SSH: read ECONNRESET; trying again in 2000 ms$/,
    );
    clock += first.requeueAfterMs!;
    expect((await r.reconcile('hiccup')).requeueAfterMs).toBe(4000); // doubled
    clock += 4000;
    await runToEnd(r, 'hiccup');
    expect(built).toHaveLength(3);
    expect((await source.getUpgradeRequest('hiccup'))?.status?.phase).toBe('COMPLETE');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'hiccup' })).items.reverse();
    expect(history.map((h) => h.to)).not.toContain('FAILED');
  });

  test('a pair that stays unreachable at start ends UNREACHABLE after the bound, naming the cause, with the progress it had', async () => {
    await request('gone', 'p-gone');
    const { r, built } = flaky(
      new SimRuntime(),
      Array.from({ length: 20 }, () => sshHiccup()),
    );
    await runToEnd(r, 'gone');
    expect(built).toHaveLength(6);
    const st = (await source.getUpgradeRequest('gone'))?.status;
    expect(st?.phase).toBe('UNREACHABLE');
    expect(st?.progress).toBe(0);
    expect(st?.finishedAt).toBeDefined();
    expect(st?.message).toMatch(
      /^cannot prepare the upgrade: preparing the upgrade failed 6 times in a row \(at most 6\): node-b: cannot connect over SSH/,
    );
    const history = (await listHistory(db, 1, 50, { upgradeId: 'gone' })).items.reverse();
    expect(history.map((h) => h.to)).toEqual(['IDLE', 'PREPARE', 'UNREACHABLE']);
    expect(history[2]!.cause).toContain('node-b');
    // A terminal error (the package does not verify) is not retried.
    await request('bad-pkg', 'p-bad-pkg');
    const bad = flaky(new SimRuntime(), [new Error('the package signature does not verify')]);
    await runToEnd(bad.r, 'bad-pkg');
    expect(bad.built).toHaveLength(1);
    const failed = (await source.getUpgradeRequest('bad-pkg'))?.status;
    expect([failed?.phase, failed?.progress]).toEqual(['FAILED', 0]);
  });

  test('a runtime that cannot be rebuilt in the middle of a rollback never finishes the status there', async () => {
    await request('mid-rollback', 'p-mid-rollback');
    const rt = new SimRuntime('2.0.0', true);
    // The operator dies right after the machine entered ROLLBACK.
    const doomed = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => rt,
      logger,
      now,
      actor: 'operator@test',
      afterAction: (_id, action) => {
        if (action.kind === 'event' && action.event.type === 'STEP_FAILED') {
          throw new Killed('killed on entering ROLLBACK');
        }
      },
    });
    await expect(runToEnd(doomed, 'mid-rollback')).rejects.toBeInstanceOf(Killed);
    const inRollback = (await loadMemory(db, 'mid-rollback'))?.context.phase === 'ROLLBACK';
    expect(inRollback).toBe(true);
    const before = (await source.getUpgradeRequest('mid-rollback'))?.status;
    const { r, built } = flaky(rt, [sshHiccup()]);
    const out = await r.reconcile('mid-rollback');
    expect(out.requeueAfterMs).toBe(2000);
    const held = (await source.getUpgradeRequest('mid-rollback'))?.status;
    // Nothing ended: the machine is still rolling back, the status not finished.
    expect((await loadMemory(db, 'mid-rollback'))?.context.phase).toBe('ROLLBACK');
    expect(held?.phase).toBe(before?.phase);
    expect(held?.finishedAt).toBeUndefined();
    expect(held?.progress).toBe(before?.progress);
    expect(held?.progress).toBeLessThan(100);
    clock += 2000;
    await runToEnd(r, 'mid-rollback');
    expect(built).toHaveLength(2);
    const st = (await source.getUpgradeRequest('mid-rollback'))?.status;
    expect(st?.phase).toBe('FAILED');
    expect(st?.conditions.find((c) => c.type === 'RolledBack')?.status).toBe('True');
  });

  test('a node that cannot be connected to with the pair on two versions halts (NodeUnreachable), never UNREACHABLE, and goes on when it answers', async () => {
    await request('mixed', 'p-mixed');
    const rt = new SimRuntime();
    // The operator dies right after b took the VIP on 2.0.0 (UPGRADE_MASTER).
    const doomed = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => rt,
      logger,
      now,
      actor: 'operator@test',
      afterAction: (_id, action) => {
        if (action.kind === 'event' && action.event.type === 'VIP_MOVED') {
          throw new Killed('killed on entering UPGRADE_MASTER');
        }
      },
    });
    await expect(runToEnd(doomed, 'mixed')).rejects.toBeInstanceOf(Killed);
    expect((await loadMemory(db, 'mixed'))?.context.phase).toBe('UPGRADE_MASTER');
    expect(rt.sim.nodes.map((n) => n.installedVersion)).toEqual(['1.0.0', '2.0.0']);
    // The new operator cannot reach node-b for 10 tries: past the 6 the start allows.
    const { r, built } = flaky(
      rt,
      Array.from({ length: 10 }, () => sshHiccup()),
    );
    let halted: UpgradeRequestStatus | undefined;
    for (let i = 0; i < 10; i++) {
      const out = await r.reconcile('mixed');
      expect(out.requeueAfterMs).toBeDefined(); // never ends while b is away
      clock += out.requeueAfterMs!;
      const st = (await source.getUpgradeRequest('mixed'))?.status;
      if (st?.conditions.find((c) => c.type === 'Stalled')?.status === 'True') halted ??= st;
    }
    expect(built).toHaveLength(10);
    expect(halted?.phase).toBe('UPGRADE_MASTER');
    expect(halted?.finishedAt).toBeUndefined();
    const stalled = halted?.conditions.find((c) => c.type === 'Stalled');
    expect(stalled?.reason).toBe('NodeUnreachable');
    expect(stalled?.message).toMatch(/node-b is unreachable.*last seen on 2\.0\.0/);
    // One Warning Event (the standalone source logs it) for the one cause,
    // however many tries.
    const logsOf = async () => (await listLogs(db, 'mixed', { page: 1, pageSize: 500 })).items;
    expect((await logsOf()).filter((l) => l.message.startsWith('NodeUnreachable: '))).toHaveLength(
      1,
    );
    // b answers again: the upgrade goes on by itself and finishes.
    await runToEnd(r, 'mixed');
    const st = (await source.getUpgradeRequest('mixed'))?.status;
    expect(st?.phase).toBe('COMPLETE');
    expect(st?.conditions.find((c) => c.type === 'Stalled')?.status).toBe('False');
    const history = (await listHistory(db, 1, 50, { upgradeId: 'mixed' })).items.map((h) => h.to);
    expect(history).not.toContain('UNREACHABLE');
    expect((await logsOf()).filter((l) => l.message.startsWith('Resumed: '))).toHaveLength(1);
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
