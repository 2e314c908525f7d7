// The Kubernetes source over real HTTP against the test API server:
// list + watch, 410 re-list, reconnects, status through the subresource with
// conflicts, conditions, Events, the finalizer, leader gating.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { BehaviorSubject, type Subscription } from 'rxjs';
import { parse } from 'yaml';
import { conditionsFor } from '../../src/core/conditions.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import { ResourceConflictError, ResourceNotFoundError } from '../../src/reconciler/source.js';
import { CLEANUP_FINALIZER, isBeingDeleted } from '../../src/sources/finalizer.js';
import { KubernetesSource, loadKubeConfig, namespaceFrom } from '../../src/sources/kubernetes.js';
import {
  type Cluster,
  EVENTS,
  exampleHAPairText,
  HAP,
  NS,
  sleep,
  startCluster,
  UR,
  upgradeRequest,
  waitFor,
} from './support.js';

let cluster: Cluster;
let source: KubernetesSource | null = null;
let seen: string[] = [];
let sub: Subscription | null = null;

function makeSource(extra: Partial<ConstructorParameters<typeof KubernetesSource>[0]> = {}) {
  source = new KubernetesSource({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    resyncMs: 60_000,
    backoff: { baseMs: 20, maxMs: 200 },
    ...extra,
  });
  seen = [];
  sub = source.changes$.subscribe((n) => seen.push(n));
  return source;
}

const since = (mark: number) => seen.slice(mark);
const lists = () =>
  cluster.server.requests.filter(
    (r) => r.method === 'GET' && r.path.startsWith(UR) && !r.path.includes('watch='),
  ).length;

function status(
  phase: UpgradeRequestStatus['phase'],
  generation: number,
  extra: Partial<UpgradeRequestStatus> = {},
): UpgradeRequestStatus {
  return {
    phase,
    progress: 10,
    completedSteps: [],
    conditions: conditionsFor({ phase, generation, previous: [], now: '2026-11-29T10:00:00Z' }),
    observedGeneration: generation,
    ...extra,
  };
}

beforeEach(async () => {
  cluster = await startCluster();
});

afterEach(async () => {
  sub?.unsubscribe();
  await source?.stop();
  source = null;
  await cluster.close();
});

test('a kubeconfig with a token reaches the server; a wrong token is refused', async () => {
  const s = makeSource();
  await s.start();
  expect(cluster.server.requests[0]).toMatchObject({ method: 'GET', status: 200 });
  const path = join(dirname(cluster.kubeconfigPath), 'wrong-token');
  writeFileSync(
    path,
    readFileSync(cluster.kubeconfigPath, 'utf8').replace(cluster.server.token, 'wrong'),
  );
  const bad = loadKubeConfig({ kubeconfigPath: path });
  const other = new KubernetesSource({ kubeConfig: bad, namespace: NS });
  await expect(other.start()).rejects.toThrow(/401|Unauthorized/);
  await other.stop();
});

test('list + watch deliver names for add, modify and delete', async () => {
  cluster.server.put(UR, upgradeRequest('already-there'));
  const s = makeSource();
  await s.start();
  expect(seen).toEqual(['already-there']);
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  const watchReq = cluster.server.requests.find((r) => r.path.includes('watch=true'));
  expect(watchReq?.path).toMatch(/resourceVersion=\d+/);

  let mark = seen.length;
  await s.createUpgradeRequest(upgradeRequest('new-one'));
  await waitFor('ADDED', () => since(mark).includes('new-one'));

  mark = seen.length;
  const patched = await s.patchSpec('new-one', { cancel: { reason: 'change freeze' } });
  expect(patched.metadata.generation).toBe(2);
  expect(patched.spec.cancel?.reason).toBe('change freeze');
  await waitFor('MODIFIED', () => since(mark).includes('new-one'));

  mark = seen.length;
  const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  await api.deleteNamespacedCustomObject({
    group: 'pairshift.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'upgraderequests',
    name: 'already-there',
  });
  await waitFor('DELETED', () => since(mark).includes('already-there'));
  expect(await s.getUpgradeRequest('already-there')).toBeNull();
  expect([...s.knownNames].sort()).toEqual(['new-one']);
  expect((await s.listUpgradeRequests()).map((u) => u.metadata.name)).toEqual(['new-one']);
});

test('410 Gone: re-lists and carries on, losing neither a change nor a deletion', async () => {
  cluster.server.put(UR, upgradeRequest('x'));
  cluster.server.put(UR, upgradeRequest('y'));
  const s = makeSource();
  await s.start();
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  const listsBefore = lists();
  const mark = seen.length;
  // In one tick, before the client can reconnect: the connection drops, the
  // history is compacted, x changes and y goes. Resuming from the old
  // resourceVersion must get 410 and re-list.
  cluster.server.dropWatches();
  cluster.server.compact();
  cluster.server.put(UR, upgradeRequest('x', '3.0.0'));
  cluster.server.put(UR, upgradeRequest('z'));
  const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  await api.deleteNamespacedCustomObject({
    group: 'pairshift.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'upgraderequests',
    name: 'y',
  });
  await waitFor('x, y and z after the re-list', () =>
    ['x', 'y', 'z'].every((n) => since(mark).includes(n)),
  );
  expect(cluster.server.goneSent).toBe(1);
  expect(lists()).toBeGreaterThan(listsBefore);
  expect([...s.knownNames].sort()).toEqual(['x', 'z']);
  // And it carries on watching from the new list.
  await waitFor('a new watch', () => cluster.server.openWatches === 1);
  const mark2 = seen.length;
  cluster.server.put(UR, upgradeRequest('after'));
  await waitFor('a change after the re-list', () => since(mark2).includes('after'));
});

test('a dropped watch reconnects from its resourceVersion without re-listing', async () => {
  const s = makeSource();
  await s.start();
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  const listsBefore = lists();
  const mark = seen.length;
  cluster.server.dropWatches();
  cluster.server.put(UR, upgradeRequest('during-the-gap'));
  await waitFor('the change made while disconnected', () => since(mark).includes('during-the-gap'));
  await waitFor('the watch again', () => cluster.server.openWatches === 1);
  cluster.server.put(UR, upgradeRequest('after-the-gap'));
  await waitFor('a change after reconnecting', () => since(mark).includes('after-the-gap'));
  expect(lists()).toBe(listsBefore);
});

test('a watch that keeps failing backs off and recovers when the server is back', async () => {
  const s = makeSource({ backoff: { baseMs: 50, maxMs: 100 } });
  await s.start();
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  const mark = seen.length;
  // The server keeps 410-ing every watch for a while (compacting on each).
  const stopCompacting = setInterval(() => {
    cluster.server.compact();
    cluster.server.dropWatches();
  }, 30);
  await sleep(400);
  clearInterval(stopCompacting);
  expect(cluster.server.goneSent).toBeGreaterThan(0);
  cluster.server.put(UR, upgradeRequest('once-calm'));
  await waitFor('a change once the server is calm', () => since(mark).includes('once-calm'), 5000);
  // Backoff kept the retries bounded: not hundreds of requests in 400 ms.
  expect(cluster.server.requests.length).toBeLessThan(60);
});

test('watch requests failing with 503 are retried with growing delays, then the watch resumes', async () => {
  const s = makeSource({ backoff: { baseMs: 40, maxMs: 320 } });
  await s.start();
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  const from = cluster.server.requests.length;
  expect(s.state()).toEqual({ running: true });
  cluster.server.failWatches(4);
  cluster.server.dropWatches();
  // /health sees the outage while it lasts, and not after.
  await waitFor('a problem reported', () => s.state().problem !== undefined, 5000);
  expect(s.state().problem).toMatch(
    /^following UpgradeRequests failed \d+ time\(s\) in a row \(watch: /,
  );
  await waitFor('the watch back', () => cluster.server.openWatches === 1, 5000);
  await waitFor('the problem cleared', () => s.state().problem === undefined, 5000);
  const watches = cluster.server.requests.slice(from).filter((r) => r.path.includes('watch=true'));
  expect(watches.map((r) => r.status)).toEqual([503, 503, 503, 503, 200]);
  const gaps = watches.slice(1).map((r, i) => r.at - watches[i]!.at);
  expect(gaps[3]!).toBeGreaterThan(2 * gaps[0]!);
  const mark = seen.length;
  cluster.server.put(UR, upgradeRequest('after-outage'));
  await waitFor('a change after the outage', () => since(mark).includes('after-outage'));
});

test('the namespace comes from the kubeconfig context unless given', () => {
  expect(namespaceFrom(cluster.kubeConfig)).toBe(NS);
  expect(namespaceFrom(cluster.kubeConfig, 'elsewhere')).toBe('elsewhere');
  expect(() => loadKubeConfig({ kubeconfigPath: '/nonexistent/kubeconfig' })).toThrow(
    /cannot load the Kubernetes configuration from \/nonexistent\/kubeconfig/,
  );
});

test('periodic resync pushes every known name again', async () => {
  cluster.server.put(UR, upgradeRequest('a'));
  cluster.server.put(UR, upgradeRequest('b'));
  const s = makeSource({ resyncMs: 100 });
  await s.start();
  const mark = seen.length;
  await waitFor('two resyncs', () => since(mark).filter((n) => n === 'a').length >= 2);
  expect(since(mark)).toContain('b');
});

test('status goes through /status with a merge patch; a 409 is retried after a re-read; the spec is never touched', async () => {
  const s = makeSource();
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('c'));
  // Another writer changes the spec just before our status write lands.
  cluster.server.beforeWrite((srv) => {
    const o = srv.object(UR, 'c')!;
    o.spec.cancel = { reason: 'another writer' };
    srv.put(UR, o);
  });
  await s.updateStatus(
    'c',
    status('PREPARE', 1, { currentStep: 'preflight', message: 'checking' }),
  );
  const statusWrites = cluster.server.requests.filter((r) => r.path.endsWith('/c/status'));
  expect(statusWrites.map((r) => r.status)).toEqual([409, 200]);
  expect(
    statusWrites.every(
      (r) => r.method === 'PATCH' && r.contentType === 'application/merge-patch+json',
    ),
  ).toBe(true);
  const stored = cluster.server.object(UR, 'c')!;
  expect(stored.spec.cancel).toEqual({ reason: 'another writer' });
  expect(stored.metadata.generation).toBe(2);
  expect(stored.status.phase).toBe('PREPARE');
  expect(stored.status.currentStep).toBe('preflight');

  // A field the reconciler drops really goes (merge patch with null).
  const back = await s.getUpgradeRequest('c');
  await s.updateStatus('c', { ...back!.status!, phase: 'BACKUP', currentStep: undefined });
  expect(cluster.server.object(UR, 'c')!.status.currentStep).toBeUndefined();
  expect(cluster.server.object(UR, 'c')!.spec.cancel).toEqual({ reason: 'another writer' });
});

test("a conflict that keeps coming back is re-read each time: at once first, then after the error policy's backoff", async () => {
  const s = makeSource({
    conflictAttempts: 4,
    backoff: { baseMs: 300, maxMs: 1000 },
    random: () => 0, // no jitter: the delays are 0, 300, 600 ms
  });
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('busy2'));
  for (let i = 0; i < 3; i++) {
    cluster.server.beforeWrite((srv) => {
      const o = srv.object(UR, 'busy2')!;
      o.metadata.labels = { touched: String(i) };
      srv.put(UR, o);
    });
  }
  const mark = cluster.server.requests.length;
  const started = Date.now();
  await s.updateStatus('busy2', status('PREPARE', 1));
  expect(Date.now() - started).toBeGreaterThanOrEqual(850);
  const ours = cluster.server.requests
    .slice(mark)
    .filter((r) => /\/busy2(\/status)?$/.test(r.path))
    .map((r) => `${r.method} ${r.status}`);
  expect(ours).toEqual([
    'GET 200',
    'PATCH 409',
    'GET 200',
    'PATCH 409',
    'GET 200',
    'PATCH 409',
    'GET 200',
    'PATCH 200',
  ]);
  expect(cluster.server.object(UR, 'busy2')!.status.phase).toBe('PREPARE');
});

test('status conflicts without end give up with a ResourceConflictError; a bad status is refused before any request', async () => {
  const s = makeSource({ conflictAttempts: 3 });
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('busy'));
  for (let i = 0; i < 3; i++) {
    cluster.server.beforeWrite((srv) => {
      const o = srv.object(UR, 'busy')!;
      o.metadata.labels = { touched: String(Math.random()) };
      srv.put(UR, o);
    });
  }
  await expect(s.updateStatus('busy', status('PREPARE', 1))).rejects.toThrow(ResourceConflictError);
  expect(cluster.server.object(UR, 'busy')!.status).toBeUndefined();
  const before = cluster.server.requests.length;
  await expect(s.updateStatus('busy', { ...status('PREPARE', 1), progress: 140 })).rejects.toThrow(
    /status of UpgradeRequest ops\/busy: progress:/,
  );
  expect(cluster.server.requests.length).toBe(before);
  await expect(s.updateStatus('missing', status('PREPARE', 1))).rejects.toThrow(
    ResourceNotFoundError,
  );
});

test('conditions carry the observedGeneration they were computed from', async () => {
  const s = makeSource();
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('g'));
  await s.patchSpec('g', { options: { autoRollback: true } });
  const ur = (await s.getUpgradeRequest('g'))!;
  expect(ur.metadata.generation).toBe(2);
  await s.updateStatus('g', status('VIP_SWITCH', ur.metadata.generation!));
  const stored = cluster.server.object(UR, 'g')!;
  expect(stored.status.observedGeneration).toBe(2);
  expect(
    stored.status.conditions.map(
      (c: { type: string; status: string; observedGeneration: number }) => [
        c.type,
        c.status,
        c.observedGeneration,
      ],
    ),
  ).toEqual([
    ['Progressing', 'True', 2],
    ['Ready', 'False', 2],
    ['Degraded', 'False', 2],
    ['RolledBack', 'False', 2],
    ['Reconciling', 'True', 2],
    ['Stalled', 'False', 2],
  ]);
  // A status write does not bump the generation.
  expect(stored.metadata.generation).toBe(2);
});

test('Events: one per phase change (Warning for failures) and recordEvent, about the right object', async () => {
  const s = makeSource({ identity: 'operator-0' });
  await s.start();
  const created = await s.createUpgradeRequest(upgradeRequest('e'));
  await s.updateStatus('e', status('PREPARE', 1));
  await s.updateStatus('e', { ...status('PREPARE', 1), progress: 20 }); // no phase change
  await s.updateStatus('e', status('FAILED', 1, { message: 'backup checksum mismatch' }));
  await s.recordEvent('e', 'Normal', 'BackupVerified', 'jar, config and database verified');
  const events = cluster.server.objects(EVENTS);
  expect(events.map((e) => [e.type, e.reason, e.message])).toEqual([
    ['Normal', 'PhasePrepare', 'new → PREPARE'],
    ['Warning', 'UpgradeFailed', 'PREPARE → FAILED: backup checksum mismatch'],
    ['Normal', 'BackupVerified', 'jar, config and database verified'],
  ]);
  for (const e of events) {
    expect(e.involvedObject).toMatchObject({
      apiVersion: 'pairshift.io/v1alpha1',
      kind: 'UpgradeRequest',
      name: 'e',
      namespace: NS,
      uid: created.metadata.uid,
    });
    expect(e.reportingInstance).toBe('operator-0');
    expect(e.firstTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(e.metadata.name).toMatch(/^e\.[0-9a-f]+$/);
  }
});

test('finalizer: added once, deletion waits for it, removing it completes the deletion', async () => {
  const s = makeSource();
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('f'));
  const withIt = await s.addFinalizer('f');
  expect(withIt?.metadata.finalizers).toEqual([CLEANUP_FINALIZER]);
  const writes = cluster.server.requests.length;
  await s.addFinalizer('f'); // idempotent: read, no write
  expect(cluster.server.requests.slice(writes).every((r) => r.method === 'GET')).toBe(true);

  const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  const mark = seen.length;
  await api.deleteNamespacedCustomObject({
    group: 'pairshift.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'upgraderequests',
    name: 'f',
  });
  await waitFor('the deletion to be seen', () => since(mark).includes('f'));
  const deleting = (await s.getUpgradeRequest('f'))!;
  expect(isBeingDeleted(deleting.metadata)).toBe(true);
  expect(s.knownNames).toContain('f');
  // The reconciler cleans up and can still write status while deleting.
  await s.updateStatus('f', status('CANCELLED', 1));

  const mark2 = seen.length;
  expect(await s.removeFinalizer('f')).toBeNull();
  expect(cluster.server.object(UR, 'f')).toBeUndefined();
  await waitFor('DELETED', () => since(mark2).includes('f'));
  expect(s.knownNames).not.toContain('f');
});

test('removing our finalizer keeps another controller’s and the object', async () => {
  const s = makeSource();
  await s.start();
  const o = upgradeRequest('shared');
  cluster.server.put(UR, {
    ...o,
    metadata: { ...o.metadata, finalizers: ['other.example.com/hold', CLEANUP_FINALIZER] },
  });
  const api = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
  await api.deleteNamespacedCustomObject({
    group: 'pairshift.io',
    version: 'v1alpha1',
    namespace: NS,
    plural: 'upgraderequests',
    name: 'shared',
  });
  const after = await s.removeFinalizer('shared');
  expect(after?.metadata.finalizers).toEqual(['other.example.com/hold']);
  expect(cluster.server.object(UR, 'shared')?.metadata.deletionTimestamp).toBeDefined();
});

test('create: a taken name is a ResourceConflictError; a bad spec names the field and sends nothing', async () => {
  const s = makeSource();
  await s.start();
  await s.createUpgradeRequest(upgradeRequest('dup'));
  await expect(s.createUpgradeRequest(upgradeRequest('dup'))).rejects.toThrow(
    ResourceConflictError,
  );
  const before = cluster.server.requests.length;
  const bad = upgradeRequest('bad');
  bad.spec.package.version = 'latest';
  await expect(s.createUpgradeRequest(bad)).rejects.toThrow(
    'UpgradeRequest ops/bad: spec.package.version: expected a version MAJOR.MINOR.PATCH',
  );
  expect(cluster.server.requests.length).toBe(before);
  await expect(s.patchSpec('nobody', { cancel: { reason: 'x' } })).rejects.toThrow(
    ResourceNotFoundError,
  );
});

test('HAPairs are read on demand and parsed like files', async () => {
  const s = makeSource();
  await s.start();
  cluster.server.put(HAP, parse(exampleHAPairText()));
  const pair = await s.getHAPair('billing');
  expect(pair?.spec.vip.address).toBe('198.18.10.100');
  expect(pair?.spec.nodes.map((n) => n.name)).toEqual(['billing-a', 'billing-b']);
  expect(await s.getHAPair('absent')).toBeNull();
  const broken = parse(exampleHAPairText());
  broken.metadata.name = 'broken';
  broken.spec.nodes.pop();
  cluster.server.put(HAP, broken);
  await expect(s.getHAPair('broken')).rejects.toThrow(
    'HAPair ops/broken: spec.nodes: a pair has exactly two nodes',
  );
});

test('with a leader elector, names flow only while leading, and all of them on taking over', async () => {
  cluster.server.put(UR, upgradeRequest('one'));
  cluster.server.put(UR, upgradeRequest('two'));
  const leader$ = new BehaviorSubject(false);
  const s = makeSource({ isLeader$: leader$ });
  await s.start();
  await waitFor('the watch', () => cluster.server.openWatches === 1);
  cluster.server.put(UR, upgradeRequest('three'));
  await sleep(200);
  expect(seen).toEqual([]);
  leader$.next(true);
  expect([...seen].sort()).toEqual(['one', 'three', 'two']);
  const mark = seen.length;
  cluster.server.put(UR, upgradeRequest('four'));
  await waitFor('a change while leading', () => since(mark).includes('four'));
  leader$.next(false);
  const mark2 = seen.length;
  cluster.server.put(UR, upgradeRequest('five'));
  await sleep(200);
  expect(since(mark2)).toEqual([]);
});
