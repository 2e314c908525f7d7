// Every endpoint over real HTTP against the standalone source on PGlite:
// success and each error status, viewer vs operator, the allowlist, the
// rate limit, api_request_log, and every response checked against the
// OpenAPI document the server itself serves.
import { jest } from '@jest/globals';
import type { Phase } from '../../src/core/phases.js';
import type { ResourceSource } from '../../src/reconciler/source.js';
import { loadMemory } from '../../src/store/journal-store.js';
import { markStep } from '../../src/store/progress-store.js';
import {
  appendLog,
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  recordTransition,
} from '../../src/store/upgrades.js';
import {
  client,
  type Harness,
  OPERATOR_TOKEN,
  OpenApiChecker,
  startHarness,
  VIEWER_TOKEN,
} from './support.js';

jest.setTimeout(60_000);

const checker = new OpenApiChecker();
let h: Harness;
let call: ReturnType<typeof client>;

beforeAll(async () => {
  h = await startHarness({ pairs: ['lab', 'lab2', 'lab3', 'lab4', 'lab5'] });
  call = client(h.api.url, checker);
});
afterAll(async () => {
  await h.close();
});

const trigger = (pair: string, extra: object = {}) =>
  call('POST', '/api/v1/upgrade/trigger', {
    body: { pair, package: { path: '/srv/pkgs/app-2.0.0.tar.gz', version: '2.0.0' }, ...extra },
  });

/**
 * Moves an upgrade as the reconciler would: the history and task phase, then
 * the status. With backupVerified the history passes BACKUP -> UPGRADE_BACKUP
 * (the machine's BACKUP_VERIFIED), which is what the API reads; the
 * reconciler's private journal is not written, so the API cannot lean on it.
 */
async function advance(id: string, phase: Phase, backupVerified: boolean): Promise<void> {
  const task = await getUpgradeTask(h.db, id);
  const verified = (await listHistory(h.db, 1, 100, { upgradeId: id })).items.some(
    (e) => e.from === 'BACKUP' && e.to === 'UPGRADE_BACKUP',
  );
  const path: Phase[] = backupVerified && !verified ? ['BACKUP', 'UPGRADE_BACKUP', phase] : [phase];
  let from = task?.phase;
  for (const to of path) {
    if (!from || from === to) continue;
    await recordTransition(h.db, id, { from, to, cause: 'test', actor: 'test', at: new Date() });
    from = to;
  }
  await h.source.updateStatus(id, {
    phase,
    progress: phase === 'COMPLETE' ? 100 : 30,
    completedSteps: [],
    conditions: [],
    message: `in ${phase}`,
    estimatedCompletionTime: '2026-11-29T15:00:00.000Z',
    startedAt: '2026-11-29T14:00:00.000Z',
    downtime: {
      httpLongestMs: 120,
      httpTotalMs: 300,
      httpBlindMs: 45,
      budgetMs: 240_000,
      withinBudget: true,
    },
  });
  h.progressChanged.next(id);
}

describe('trigger', () => {
  test('201 creates an UpgradeRequest named by a generated task id; 409 while it is active', async () => {
    const r = await trigger('lab', {
      reason: 'quarterly release',
      options: { auto_rollback: true, downtime_budget: '4m' },
    });
    expect(r.status).toBe(201);
    expect(r.body.upgrade_id).toMatch(/^upg-\d{8}-[0-9a-f]{8}$/);
    expect(r.body.status_url).toBe(`/api/v1/upgrade/progress/${r.body.upgrade_id}`);
    expect(r.headers.get('location')).toBe(r.body.status_url);
    const req = await h.source.getUpgradeRequest(r.body.upgrade_id);
    expect(req?.spec).toEqual({
      pairRef: { name: 'lab' },
      package: { path: '/srv/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
      options: { autoRollback: true, downtimeBudget: '4m' },
    });
    expect(req?.metadata.annotations?.['pairshift.io/requested-by']).toBe('api:ci-operator');
    expect((await getUpgradeTask(h.db, r.body.upgrade_id))?.requestedBy).toBe('api:ci-operator');

    const again = await trigger('lab');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('PS-1501');
    expect(again.body.suggestion).toBe('wait');
    expect(again.body.detail).toContain(r.body.upgrade_id);
  });

  test('concurrent triggers on one pair: exactly one wins', async () => {
    const rs = await Promise.all(Array.from({ length: 6 }, () => trigger('lab3')));
    expect(rs.filter((r) => r.status === 201)).toHaveLength(1);
    expect(rs.filter((r) => r.status === 409)).toHaveLength(5);
  });

  test('the store decides "one active per pair": a task without a resource still holds the pair', async () => {
    // A task the API sees no UpgradeRequest for (another replica between its
    // two writes, or the reconciler of a resource not listed yet).
    await createUpgradeTask(h.db, {
      upgradeId: 'upg-20261129-0000beef',
      pairName: 'lab4',
      targetVersion: '2.0.0',
      requestedBy: 'other-replica',
    });
    const r = await trigger('lab4');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('PS-1501');
    expect(r.body.detail).toContain('upg-20261129-0000beef');
    expect(r.body.detail).toContain('phase IDLE');
    await recordTransition(h.db, 'upg-20261129-0000beef', {
      from: 'IDLE',
      to: 'CANCELLED',
      cause: 'test',
      actor: 'test',
      at: new Date(),
    });
  });

  test('a trigger whose resource cannot be created ends its task through the state machine', async () => {
    const create = jest
      .spyOn(h.source, 'createUpgradeRequest')
      .mockRejectedValueOnce(new Error('resource store down'));
    try {
      const r = await trigger('lab5');
      expect(r.status).toBe(500);
    } finally {
      create.mockRestore();
    }
    const task = (
      await h.db.query<{ upgrade_id: string }>(
        `SELECT upgrade_id FROM upgrade_task WHERE pair_name = 'lab5'`,
      )
    )[0]!;
    const id = task.upgrade_id;
    expect((await getUpgradeTask(h.db, id))?.phase).toBe('CANCELLED');
    const history = await listHistory(h.db, 1, 10, { upgradeId: id });
    // The machine's rule and cause, as for every other transition; the memory
    // the reconciler reads is written in the same transaction.
    expect(history.items[0]).toMatchObject({
      from: 'IDLE',
      to: 'CANCELLED',
      cause: 'cancelled, nothing changed: trigger failed: resource store down',
      actor: 'api:ci-operator',
    });
    expect((await loadMemory(h.db, id))?.context.phase).toBe('CANCELLED');
    // The pair is free again.
    const again = await trigger('lab5');
    expect(again.status).toBe(201);
    await advance(again.body.upgrade_id, 'CANCELLED', false);
  });

  test('after the active upgrade finished, a new one may start', async () => {
    const first = await trigger('lab2');
    expect(first.status).toBe(201);
    await advance(first.body.upgrade_id, 'CANCELLED', false);
    const second = await trigger('lab2');
    expect(second.status).toBe(201);
    await advance(second.body.upgrade_id, 'CANCELLED', false);
  });

  test('400 on a malformed or invalid request, naming the field', async () => {
    const missing = await call('POST', '/api/v1/upgrade/trigger', { body: { pair: 'lab' } });
    expect(missing.status).toBe(400);
    expect(missing.body.code).toBe('PS-1001');
    expect(missing.body.suggestion).toBe('fix-request');
    expect(missing.body.errors[0].field).toBe('package');

    const relative = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab', package: { path: 'pkgs/x.tar.gz', version: '2.0.0' } },
    });
    expect(relative.status).toBe(400);
    expect(relative.body.detail).toContain('package.path');

    const unknown = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab', package: { path: '/x', version: '2.0.0' }, colour: 'red' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toContain('colour');

    const badJson = await call('POST', '/api/v1/upgrade/trigger', {
      raw: '{"pair": "lab",',
      headers: { 'content-type': 'application/json' },
    });
    expect(badJson.status).toBe(400);
    expect(badJson.body.code).toBe('PS-1002');

    const empty = await call('POST', '/api/v1/upgrade/trigger');
    expect(empty.status).toBe(400);
  });

  test('404 for an unknown pair', async () => {
    const r = await trigger('nope');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('PS-1303');
  });

  test('403 for a viewer', async () => {
    const r = await call('POST', '/api/v1/upgrade/trigger', {
      token: VIEWER_TOKEN,
      body: { pair: 'lab2', package: { path: '/x', version: '2.0.0' } },
    });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('PS-1201');
  });

  test('413 for a body over the limit; 415 for a body that is not JSON', async () => {
    const big = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab', package: { path: `/${'a'.repeat(70_000)}`, version: '2.0.0' } },
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('PS-1601');
    const text = await call('POST', '/api/v1/upgrade/trigger', {
      raw: 'pair=lab',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(text.status).toBe(415);
    expect(text.body.code).toBe('PS-1602');
  });
});

describe('progress', () => {
  test('200 with phase, percent, completed steps, message, estimate and downtime', async () => {
    const r = await trigger('lab2');
    const id = r.body.upgrade_id as string;
    await advance(id, 'PREPARE', false);
    await markStep(h.db, id, 'PREFLIGHT', 'PREPARE', null, 'DONE', null, new Date());
    h.progressChanged.next(id);
    const p = await call('GET', `/api/v1/upgrade/progress/${id}`, { token: VIEWER_TOKEN });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({
      upgrade_id: id,
      pair: 'lab2',
      target_version: '2.0.0',
      phase: 'PREPARE',
      progress_percent: 30,
      message: 'in PREPARE',
      estimated_completion_time: '2026-11-29T15:00:00.000Z',
      downtime: { http_longest_ms: 120, within_budget: true, budget_ms: 240_000 },
      cancel_requested: false,
    });
    expect(p.body.completed_steps.map((s: { step: string }) => s.step)).toContain('PREFLIGHT');
    // The operator measures HTTP on the VIP only: no write figure is made up.
    expect(p.body.downtime).toEqual({
      http_longest_ms: 120,
      http_total_ms: 300,
      // what the probe reported: how long it could not look
      http_blind_ms: 45,
      write_longest_ms: null,
      write_total_ms: null,
      lost_acknowledged_writes: null,
      budget_ms: 240_000,
      within_budget: true,
    });
    await advance(id, 'CANCELLED', false);
  });

  test('served from memory: announced changes show at once, unannounced ones within 500 ms', async () => {
    const r = await trigger('lab2');
    expect(r.status).toBe(201);
    const id = r.body.upgrade_id as string;
    await advance(id, 'PREPARE', false);
    const progress = () => call('GET', `/api/v1/upgrade/progress/${id}`, { token: VIEWER_TOKEN });
    expect((await progress()).body.message).toBe('in PREPARE');
    // A writer this process does not hear (another replica on the shared store).
    const status = (await h.source.getUpgradeRequest(id))!.status!;
    await h.source.updateStatus(id, { ...status, message: 'written elsewhere' });
    const soon = await progress();
    expect(soon.status).toBe(200);
    expect(['in PREPARE', 'written elsewhere']).toContain(soon.body.message);
    await new Promise((r) => setTimeout(r, 600));
    expect((await progress()).body.message).toBe('written elsewhere');
    // The reconciler in this process announces what it wrote.
    await h.source.updateStatus(id, { ...status, message: 'announced' });
    h.progressChanged.next(id);
    expect((await progress()).body.message).toBe('announced');
    // The API's own writes are read back at once.
    const c = await call('POST', `/api/v1/upgrade/cancel/${id}`, { body: { reason: 'test' } });
    expect(c.status).toBe(200);
    expect((await progress()).body.cancel_requested).toBe(true);
    await advance(id, 'CANCELLED', false);
  });

  test('halted: the Stalled condition while running, null before and at the end', async () => {
    const r = await trigger('lab2');
    const id = r.body.upgrade_id as string;
    await advance(id, 'VIP_SWITCH', true);
    const progress = () => call('GET', `/api/v1/upgrade/progress/${id}`, { token: VIEWER_TOKEN });
    expect((await progress()).body.halted).toBeNull();
    const status = (await h.source.getUpgradeRequest(id))!.status!;
    const stalled = {
      type: 'Stalled' as const,
      status: 'True' as const,
      reason: 'SplitBrain',
      message: 'both nodes hold the VIP',
      lastTransitionTime: '2026-11-29T14:05:00.000Z',
    };
    await h.source.updateStatus(id, { ...status, conditions: [stalled] });
    h.progressChanged.next(id);
    expect((await progress()).body.halted).toEqual({
      reason: 'SplitBrain',
      message: 'both nodes hold the VIP',
      since: '2026-11-29T14:05:00.000Z',
    });
    // Stalled=False (resumed) is no halt; nor is any Stalled once finished
    await h.source.updateStatus(id, { ...status, conditions: [{ ...stalled, status: 'False' }] });
    h.progressChanged.next(id);
    expect((await progress()).body.halted).toBeNull();
    await h.source.updateStatus(id, { ...status, phase: 'FAILED', conditions: [stalled] });
    h.progressChanged.next(id);
    expect((await progress()).body).toMatchObject({ phase: 'FAILED', halted: null });
    await advance(id, 'FAILED', true);
  });

  test('400 on a bad id, 404 on an unknown one', async () => {
    const bad = await call('GET', '/api/v1/upgrade/progress/Not_An_Id!');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('PS-1003');
    const missing = await call('GET', '/api/v1/upgrade/progress/upg-20260101-00000000');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('PS-1302');
  });
});

describe('rollback and cancel', () => {
  test('rollback: 409 before a verified backup (suggests cancel), 200 after, 409 when repeated', async () => {
    const id = (await trigger('lab2')).body.upgrade_id as string;
    await advance(id, 'PREPARE', false);
    const early = await call('POST', `/api/v1/upgrade/rollback/${id}`, { body: { reason: 'x' } });
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('PS-1503');
    expect(early.body.suggestion).toBe('cancel');

    await advance(id, 'UPGRADE_BACKUP', true);
    const ok = await call('POST', `/api/v1/upgrade/rollback/${id}`, {
      body: { reason: 'health checks flapping', restore_database: false },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ upgrade_id: id, phase: 'UPGRADE_BACKUP', accepted: true });
    const spec = (await h.source.getUpgradeRequest(id))?.spec;
    expect(spec?.rollback).toMatchObject({
      reason: 'health checks flapping',
      requestedBy: 'api:ci-operator',
      restoreDatabase: false,
    });

    const twice = await call('POST', `/api/v1/upgrade/rollback/${id}`, { body: {} });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('PS-1504');
    const cancelDuring = await call('POST', `/api/v1/upgrade/cancel/${id}`);
    expect(cancelDuring.status).toBe(409);

    await advance(id, 'ROLLBACK', true);
    await advance(id, 'FAILED', true);
    const finished = await call('POST', `/api/v1/upgrade/rollback/${id}`);
    expect(finished.status).toBe(409);
    expect(finished.body.code).toBe('PS-1502');
  });

  test('rollback: 400 on a bad body or id, 404 unknown, 403 viewer', async () => {
    expect(
      (await call('POST', '/api/v1/upgrade/rollback/upg-x', { body: { reason: 5 } })).status,
    ).toBe(400);
    expect((await call('POST', '/api/v1/upgrade/rollback/%20bad%20')).status).toBe(400);
    expect((await call('POST', '/api/v1/upgrade/rollback/upg-20260101-ffffffff')).status).toBe(404);
    expect(
      (await call('POST', '/api/v1/upgrade/rollback/upg-x', { token: VIEWER_TOKEN })).status,
    ).toBe(403);
  });

  test('cancel: 200 explains the effect in the current phase; 409 when repeated or finished', async () => {
    const id = (await trigger('lab2')).body.upgrade_id as string;
    await advance(id, 'BACKUP', false);
    const ok = await call('POST', `/api/v1/upgrade/cancel/${id}`, {
      body: { reason: 'change freeze' },
    });
    expect(ok.status).toBe(200);
    expect(ok.body.effect).toContain('nothing on the nodes has changed');
    expect((await h.source.getUpgradeRequest(id))?.spec.cancel?.reason).toBe('change freeze');
    const again = await call('POST', `/api/v1/upgrade/cancel/${id}`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('PS-1506');
    await advance(id, 'CANCELLED', false);
    const done = await call('POST', `/api/v1/upgrade/cancel/${id}`);
    expect(done.status).toBe(409);
    expect(done.body.code).toBe('PS-1502');

    const id2 = (await trigger('lab2')).body.upgrade_id as string;
    await advance(id2, 'VIP_SWITCH', true);
    const changed = await call('POST', `/api/v1/upgrade/cancel/${id2}`);
    expect(changed.status).toBe(200);
    expect(changed.body.effect).toContain('rolls that node back');
    await advance(id2, 'ROLLBACK', true);
    await advance(id2, 'CANCELLED', true);
  });

  test('cancel: 409 during ROLLBACK, 400, 404, 403', async () => {
    const id = (await trigger('lab2')).body.upgrade_id as string;
    await advance(id, 'ROLLBACK', true);
    const r = await call('POST', `/api/v1/upgrade/cancel/${id}`);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('PS-1504');
    await advance(id, 'FAILED', true);
    expect(
      (await call('POST', `/api/v1/upgrade/cancel/${id}`, { body: { reason: '' } })).status,
    ).toBe(400);
    expect((await call('POST', '/api/v1/upgrade/cancel/upg-20260101-eeeeeeee')).status).toBe(404);
    expect(
      (await call('POST', `/api/v1/upgrade/cancel/${id}`, { token: VIEWER_TOKEN })).status,
    ).toBe(403);
  });
});

describe('history and logs', () => {
  test('history: defaults 1 and 20, total count, paging; 400 on bad values', async () => {
    const r = await call('GET', '/api/v1/upgrade/history', { token: VIEWER_TOKEN });
    expect(r.status).toBe(200);
    expect(r.body.page).toBe(1);
    expect(r.body.page_size).toBe(20);
    expect(r.body.total).toBeGreaterThan(5);
    const p2 = await call('GET', '/api/v1/upgrade/history?page=2&page_size=2');
    expect(p2.body.items).toHaveLength(2);
    expect(p2.body.total).toBe(r.body.total);
    const times = r.body.items.map((i: { at: string }) => i.at);
    expect([...times].sort().reverse()).toEqual(times);
    for (const q of [
      'page=0',
      'page_size=501',
      'page=abc',
      'page_size=2.5',
      'page=1&page=2',
      'colour=red',
    ]) {
      const bad = await call('GET', `/api/v1/upgrade/history?${q}`);
      expect([q, bad.status]).toEqual([q, 400]);
      expect(bad.body.code).toBe('PS-1004');
    }
    expect((await call('GET', '/api/v1/upgrade/history?page_size=500')).status).toBe(200);
  });

  test('logs: newest first, paged, level filter; 400 and 404', async () => {
    const id = (await trigger('lab2')).body.upgrade_id as string;
    const base = Date.now();
    for (let i = 0; i < 5; i++) {
      await appendLog(h.db, id, {
        level: i % 2 ? 'WARNING' : 'INFO',
        source: 'test',
        message: `line ${i}`,
        at: new Date(base + i * 1000),
      });
    }
    await appendLog(h.db, id, {
      level: 'ERROR',
      source: 'test',
      message: 'boom',
      at: new Date(base + 9000),
    });
    const all = await call('GET', `/api/v1/upgrade/logs/${id}?page_size=3`, {
      token: VIEWER_TOKEN,
    });
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(6);
    expect(all.body.items.map((l: { message: string }) => l.message)).toEqual([
      'boom',
      'line 4',
      'line 3',
    ]);
    const warn = await call('GET', `/api/v1/upgrade/logs/${id}?level=WARNING`);
    expect(warn.body.items.map((l: { message: string }) => l.message)).toEqual([
      'line 3',
      'line 1',
    ]);
    expect((await call('GET', `/api/v1/upgrade/logs/${id}?level=DEBUG`)).status).toBe(400);
    expect((await call('GET', `/api/v1/upgrade/logs/${id}?page=-1`)).status).toBe(400);
    expect((await call('GET', '/api/v1/upgrade/logs/UPPER')).status).toBe(400);
    expect((await call('GET', '/api/v1/upgrade/logs/upg-20260101-dddddddd')).status).toBe(404);
    await advance(id, 'CANCELLED', false);
  });
});

describe('protocol', () => {
  test('health needs no token and reports store, source and reconciler', async () => {
    const r = await call('GET', '/health', { token: null });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('UP');
    expect(r.body.checks.map((c: { name: string }) => c.name)).toEqual([
      'store',
      'source',
      'reconciler',
    ]);
  });

  test('the OpenAPI document is 3.1 and describes every endpoint', async () => {
    const r = await call('GET', '/api/v1/openapi.json', { token: null });
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    expect(Object.keys(r.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/upgrade/trigger',
        '/api/v1/upgrade/progress/{upgrade_id}',
        '/api/v1/upgrade/rollback/{upgrade_id}',
        '/api/v1/upgrade/cancel/{upgrade_id}',
        '/api/v1/upgrade/history',
        '/api/v1/upgrade/logs/{upgrade_id}',
      ]),
    );
    expect(r.body).toEqual(JSON.parse(JSON.stringify(checker.doc)));
  });

  test('401 without or with a bad token, with WWW-Authenticate', async () => {
    const none = await call('GET', '/api/v1/upgrade/history', { token: null });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('PS-1101');
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    const bad = await call('GET', '/api/v1/upgrade/history', { token: `${OPERATOR_TOKEN}x` });
    expect(bad.status).toBe(401);
    expect(bad.body.code).toBe('PS-1102');
    expect(bad.headers.get('www-authenticate')).toContain('invalid_token');
    const basic = await call('GET', '/api/v1/upgrade/history', {
      token: null,
      headers: { authorization: 'Basic Zm9vOmJhcg==' },
    });
    expect(basic.status).toBe(401);
  });

  test('404 for an unknown route, 405 with Allow for a wrong method', async () => {
    const r = await call('GET', '/api/v1/nothing/here');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('PS-1301');
    expect(r.body.type).toBe('https://pairshift.io/problems/ps-1301');
    expect(r.body.instance).toBe('/api/v1/nothing/here');
    const m = await call('DELETE', '/api/v1/upgrade/history');
    expect(m.status).toBe(405);
    expect(m.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    const g = await call('GET', '/api/v1/upgrade/trigger');
    expect(g.status).toBe(405);
    expect(g.headers.get('allow')).toBe('POST, OPTIONS');
  });
});

describe('api_request_log', () => {
  test('every request is recorded with the token name and never the token', async () => {
    await call('GET', '/api/v1/upgrade/progress/upg-20260101-00000001', { token: VIEWER_TOKEN });
    await call('POST', '/api/v1/upgrade/trigger', {
      body: {
        pair: 'nope',
        package: { path: '/x', version: '1.0.0' },
        reason: `token=${OPERATOR_TOKEN}`,
      },
    });
    await call('GET', '/api/v1/upgrade/history', { token: 'wrong-token-wrong-token' });
    const odd = await call('PROPFIND', '/api/v1/upgrade/history');
    expect(odd.status).toBe(405);
    await h.api.flushRequestLog();
    const rows = await h.db.query<Record<string, unknown>>(
      'SELECT method, path, status, duration_ms, client_ip::text AS ip, upgrade_id, token_name, request_summary, response_summary FROM api_request_log ORDER BY id',
    );
    expect(rows.length).toBeGreaterThan(20);
    const progress = rows.find((r) => r.upgrade_id === 'upg-20260101-00000001')!;
    expect(progress).toMatchObject({
      method: 'GET',
      path: '/api/v1/upgrade/progress/upg-20260101-00000001',
      status: 404,
    });
    expect(String(progress.ip)).toMatch(/127\.0\.0\.1/);
    expect(progress.token_name).toBe('dashboard');
    expect(progress.response_summary).toContain('PS-1302');
    const triggered = rows.find((r) => r.status === 201)!;
    expect(triggered.token_name).toBe('ci-operator');
    expect(triggered.request_summary).toContain('"pair":"lab"');
    expect(triggered.upgrade_id).toMatch(/^upg-/);
    expect(rows.some((r) => r.status === 401)).toBe(true);
    expect(rows.some((r) => r.method === 'PROPFIND' && r.status === 405)).toBe(true);
    const everything = JSON.stringify(rows) + h.logs.join('\n');
    expect(everything).not.toContain(OPERATOR_TOKEN);
    expect(everything).not.toContain(VIEWER_TOKEN);
  });

  test('a failing log write does not fail the request', async () => {
    await h.db.exec('ALTER TABLE api_request_log RENAME TO api_request_log_away');
    try {
      const r = await call('GET', '/api/v1/upgrade/history');
      expect(r.status).toBe(200);
      await h.api.flushRequestLog();
      expect(h.logs.some((l) => l.includes('could not record a request'))).toBe(true);
    } finally {
      await h.db.exec('ALTER TABLE api_request_log_away RENAME TO api_request_log');
    }
  });
});

describe('separate servers', () => {
  test('500 when the source throws: a clear problem, the stack only in the server log', async () => {
    const broken = await startHarness({
      wrapSource: (s) =>
        new Proxy(s, {
          get(target, prop, recv) {
            if (prop === 'getUpgradeRequest') {
              return async () => {
                throw new Error('store exploded at secret-internal-place');
              };
            }
            const v = Reflect.get(target, prop, recv);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }) as ResourceSource,
    });
    try {
      const c = client(broken.api.url, checker);
      const r = await c('GET', '/api/v1/upgrade/progress/upg-20260101-00000002');
      expect(r.status).toBe(500);
      expect(r.body.code).toBe('PS-1901');
      expect(r.body.suggestion).toBe('retry');
      expect(r.text).not.toContain('secret-internal-place');
      expect(r.text).not.toContain('at ');
      expect(
        broken.logs.some((l) => l.includes('secret-internal-place') && l.includes('stack')),
      ).toBe(true);
    } finally {
      await broken.close();
    }
  });

  test('health is 503 DOWN, saying why, when the source is failing or the loop has stopped', async () => {
    let problem: string | undefined = 'following UpgradeRequests failed 3 time(s) in a row';
    let reconcilerRunning = true;
    const s = await startHarness({
      wrapSource: (src) =>
        new Proxy(src, {
          get(target, prop, recv) {
            if (prop === 'state') return () => ({ running: true, ...(problem ? { problem } : {}) });
            return Reflect.get(target, prop, recv);
          },
        }) as ResourceSource,
      operatorState: () => ({ sourceStarted: true, reconcilerRunning }),
    });
    try {
      const c = client(s.api.url, checker);
      const down = await c('GET', '/health', { token: null });
      expect(down.status).toBe(503);
      expect(down.body.status).toBe('DOWN');
      const source = down.body.checks.find((x: { name: string }) => x.name === 'source');
      expect(source).toMatchObject({ status: 'DOWN' });
      expect(source.message).toContain('failed 3 time(s) in a row');
      problem = undefined;
      expect((await c('GET', '/health', { token: null })).status).toBe(200);
      reconcilerRunning = false;
      const stopped = await c('GET', '/health', { token: null });
      expect(stopped.status).toBe(503);
      expect(
        stopped.body.checks.find((x: { name: string }) => x.name === 'reconciler'),
      ).toMatchObject({ status: 'DOWN', message: 'the reconcile loop is not running' });
    } finally {
      await s.close();
    }
  });

  test('403 for an address outside the allowlist', async () => {
    const closed = await startHarness({ pairs: [], allow: ['198.18.0.0/15'] });
    try {
      const c = client(closed.api.url, checker);
      const r = await c('GET', '/api/v1/upgrade/history');
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('PS-1202');
      expect((await c('GET', '/health', { token: null })).status).toBe(403);
    } finally {
      await closed.close();
    }
  });

  test('429 with Retry-After once the bucket is empty', async () => {
    const slow = await startHarness({
      pairs: [],
      limits: { rateLimit: { ratePerSecond: 1, burst: 3 } },
    });
    try {
      const c = client(slow.api.url, checker);
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await c('GET', '/api/v1/upgrade/history')).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const r = await c('GET', '/api/v1/upgrade/history');
      expect(r.body.code).toBe('PS-1701');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      await slow.close();
    }
  });
});

afterAll(() => {
  // Every response above was validated against the OpenAPI document.
  expect(checker.checked).toBeGreaterThan(50);
});
