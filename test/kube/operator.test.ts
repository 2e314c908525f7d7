// The operator on the Kubernetes source, over real HTTP against the test API
// server: an UpgradeRequest applied with kubectl is carried out (on a
// simulated pair), its status and conditions land through the status
// subresource, Events are written, and a delete waits on the finalizer.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { HAPPY_PATH } from '../../src/core/phases.js';
import { createLogger } from '../../src/log/logger.js';
import { startOperator } from '../../src/operator/operator.js';
import { KubernetesSource } from '../../src/sources/kubernetes.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { SimRuntime } from '../support/sim-runtime.js';
import {
  type Cluster,
  EVENTS,
  exampleHAPairText,
  HAP,
  startCluster,
  UR,
  upgradeRequest,
  waitFor,
} from './support.js';

jest.setTimeout(60_000);

let cluster: Cluster;
const dirs: string[] = [];
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('kubectl-applied upgrade runs to COMPLETE; delete of a running one cancels it, then the finalizer goes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-kop-'));
  dirs.push(dir);
  const db = await openPglite(join(dir, 'store'));
  await migrate(db);
  const pair = parse(exampleHAPairText());
  // Webhooks: one receiver from the operator's configuration, one from the
  // HAPair custom resource; both get the upgrade's events.
  const got: { path: string; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ path: req.url ?? '', body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  cluster.server.put(HAP, {
    ...pair,
    metadata: { ...pair.metadata, name: 'billing', namespace: 'ops' },
    spec: { ...pair.spec, notifications: { receivers: [{ name: 'team', url: `${hook}/pair` }] } },
  });
  cluster.server.put(UR, upgradeRequest('to-v2'));
  const runtimes = new Map<string, SimRuntime>();
  const source = new KubernetesSource({
    kubeConfig: cluster.kubeConfig,
    namespace: 'ops',
    transitionEvents: false,
  });
  const op = await startOperator({
    db,
    source,
    settings: BUILT_IN_DEFAULTS,
    logger: createLogger({ stream: new PassThrough(), format: 'json' }),
    trustedKeys: [],
    workDir: dir,
    notifications: {
      receivers: [{ name: 'global', url: `${hook}/global`, events: ['phase', 'result'] }],
    },
    runtimes: async ({ upgradeId }) => {
      const rt = new SimRuntime();
      runtimes.set(upgradeId, rt);
      return rt;
    },
  });
  try {
    await waitFor(
      'to-v2 COMPLETE',
      () => cluster.server.object(UR, 'to-v2')?.status?.phase === 'COMPLETE',
      30_000,
    );
    const done = cluster.server.object(UR, 'to-v2')!;
    expect(done.metadata.finalizers).toContain('pairshift.io/cleanup');
    expect(done.status.progress).toBe(100);
    const ready = done.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'True', observedGeneration: done.metadata.generation });
    expect(runtimes.get('to-v2')!.sim.nodes.map((n) => n.installedVersion)).toEqual([
      '2.0.0',
      '2.0.0',
    ]);
    const events = cluster.server.objects(EVENTS).filter((e) => e.involvedObject?.name === 'to-v2');
    expect(events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['PhasePrepare', 'PhaseVipSwitch', 'UpgradeComplete']),
    );
    await waitFor(
      'both receivers to have the result of to-v2',
      () =>
        ['/global', '/pair'].every((p) =>
          got.some((g) => g.path === p && g.body.includes('"io.pairshift.upgrade.completed"')),
        ),
      10_000,
    );
    for (const path of ['/global', '/pair']) {
      const phases = got
        .filter((g) => g.path === path)
        .map((g) => JSON.parse(g.body))
        .filter((e) => e.subject === 'to-v2' && e.type.endsWith('.phase.changed'))
        .map((e) => e.data.phase);
      expect(phases).toEqual(HAPPY_PATH.slice(1));
    }

    // A second request on the same pair, deleted while it runs: cancelled at a
    // safe point, and only then does the object go.
    cluster.server.put(UR, upgradeRequest('to-v3', '3.0.0'));
    await waitFor(
      'to-v3 running',
      () => cluster.server.object(UR, 'to-v3')?.status?.phase === 'UPGRADE_BACKUP',
      30_000,
    );
    await fetch(`${cluster.server.url}${UR}/to-v3`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${cluster.server.token}` },
    });
    expect(cluster.server.object(UR, 'to-v3')?.metadata.deletionTimestamp).toBeDefined();
    await waitFor('to-v3 gone', () => cluster.server.object(UR, 'to-v3') === undefined, 30_000);
    const sim = runtimes.get('to-v3')!.sim;
    expect(sim.clientsServed()).toBe(true);
    expect(sim.nodes.every((n) => !n.rsyncPaused && !n.configLocked)).toBe(true);
  } finally {
    await op.stop();
    receiver.closeAllConnections();
    await new Promise((r) => receiver.close(r));
    await db.close();
  }
});
