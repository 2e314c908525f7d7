// The test API server itself, with plain fetch: the semantics the operator's
// tests rely on must hold, or those tests prove nothing.
import type { KObject, KubeApiServer } from '../support/kube-api-server.js';
import { startKubeApiServer } from '../support/kube-api-server.js';
import { NS, UR, upgradeRequest } from './support.js';

let server: KubeApiServer;
beforeEach(async () => {
  server = await startKubeApiServer();
});
afterEach(async () => server.stop());

async function call(
  method: string,
  path: string,
  body?: unknown,
  contentType = 'application/json',
) {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${server.token}`, 'content-type': contentType },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as KObject };
}
const merge = (method: string, path: string, body: unknown) =>
  call(method, path, body, 'application/merge-patch+json');

test('no token, no access; a strategic merge patch is refused as unsupported', async () => {
  const res = await fetch(`${server.url}${UR}`);
  expect(res.status).toBe(401);
  await call('POST', UR, upgradeRequest('a'));
  expect(
    (await call('PATCH', `${UR}/a`, { spec: {} }, 'application/strategic-merge-patch+json')).status,
  ).toBe(415);
});

test('create, 409 AlreadyExists, status dropped on create', async () => {
  const created = await call('POST', UR, { ...upgradeRequest('a'), status: { phase: 'COMPLETE' } });
  expect(created.status).toBe(201);
  expect(created.body.status).toBeUndefined();
  expect(created.body.metadata).toMatchObject({ generation: 1, namespace: NS });
  const again = await call('POST', UR, upgradeRequest('a'));
  expect(again).toMatchObject({ status: 409, body: { reason: 'AlreadyExists', code: 409 } });
});

test('/status changes only status; the resource changes only spec/metadata; generation follows spec', async () => {
  await call('POST', UR, upgradeRequest('a'));
  const s = await merge('PATCH', `${UR}/a/status`, {
    spec: { pairRef: { name: 'hijacked' } },
    status: { phase: 'PREPARE' },
  });
  expect(s.body.spec.pairRef.name).toBe('billing');
  expect(s.body.status.phase).toBe('PREPARE');
  expect(s.body.metadata.generation).toBe(1);
  const m = await merge('PATCH', `${UR}/a`, {
    status: { phase: 'COMPLETE' },
    metadata: { labels: { x: 'y' } },
  });
  expect(m.body.status.phase).toBe('PREPARE');
  expect(m.body.metadata.labels).toEqual({ x: 'y' });
  expect(m.body.metadata.generation).toBe(1);
  const sp = await merge('PATCH', `${UR}/a`, { spec: { cancel: { reason: 'r' } } });
  expect(sp.body.metadata.generation).toBe(2);
  expect(sp.body.status.phase).toBe('PREPARE');
});

test('a stale resourceVersion is a 409 for PUT and for a patch that carries it', async () => {
  const a = (await call('POST', UR, upgradeRequest('a'))).body;
  const fresh = await call('PUT', `${UR}/a`, { ...a, spec: { ...a.spec, fromVersion: '1.0.0' } });
  expect(fresh.status).toBe(200);
  const stale = await call('PUT', `${UR}/a`, a);
  expect(stale).toMatchObject({ status: 409, body: { reason: 'Conflict' } });
  const stalePatch = await merge('PATCH', `${UR}/a/status`, {
    metadata: { resourceVersion: a.metadata.resourceVersion },
    status: { phase: 'PREPARE' },
  });
  expect(stalePatch.status).toBe(409);
});

test('delete waits for finalizers; removing the last one deletes', async () => {
  await call('POST', UR, { ...upgradeRequest('a'), metadata: { name: 'a', finalizers: ['x/y'] } });
  const d = await call('DELETE', `${UR}/a`);
  expect(d.body.metadata.deletionTimestamp).toBeDefined();
  expect((await call('GET', `${UR}/a`)).status).toBe(200);
  await merge('PATCH', `${UR}/a`, { metadata: { finalizers: [] } });
  expect((await call('GET', `${UR}/a`)).status).toBe(404);
});

test('watch: events after a version as JSON lines; 410 as an ERROR event after compact()', async () => {
  await call('POST', UR, upgradeRequest('a'));
  const list = await call('GET', UR);
  const rv = list.body.metadata.resourceVersion;
  await merge('PATCH', `${UR}/a`, { spec: { fromVersion: '1.0.0' } });
  const ctrl = new AbortController();
  const res = await fetch(`${server.url}${UR}?watch=true&resourceVersion=${rv}`, {
    headers: { authorization: `Bearer ${server.token}` },
    signal: ctrl.signal,
  });
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  expect(JSON.parse(first.split('\n')[0]!)).toMatchObject({
    type: 'MODIFIED',
    object: { metadata: { name: 'a' } },
  });
  ctrl.abort();
  server.compact();
  const gone = await fetch(`${server.url}${UR}?watch=true&resourceVersion=${rv}`, {
    headers: { authorization: `Bearer ${server.token}` },
  });
  expect(gone.status).toBe(200);
  const line = JSON.parse((await gone.text()).trim());
  expect(line).toMatchObject({ type: 'ERROR', object: { code: 410, reason: 'Expired' } });
  expect(server.goneSent).toBe(1);
});
