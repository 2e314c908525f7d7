// Notifications over real HTTP (node:http on 127.0.0.1) with the delivery
// table on both stores: a receiver that refuses connections for a while
// then comes up gets every event, in order, and the table says after how
// many attempts; a receiver that never answers delays neither the caller
// nor a whole upgrade run by the reconciler; an operator restarted marks
// what it left undelivered as dropped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import type { ReceiverConfig } from '../../src/config/receivers.js';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { NotifyFact } from '../../src/core/notification.js';
import { HAPPY_PATH } from '../../src/core/phases.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { signature } from '../../src/notify/deliver.js';
import { Notifier, type NotifySettings } from '../../src/notify/notifier.js';
import { UpgradeReconciler } from '../../src/reconciler/reconciler.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { listDeliveries } from '../../src/store/notification-deliveries.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { hapairYaml } from '../support/manifests.js';
import { SimRuntime } from '../support/sim-runtime.js';
import { backends, migratedStore } from './backends.js';

jest.setTimeout(60_000);

interface Received {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A receiver answering 200 and keeping what it got; on a given port when asked. */
async function recordingReceiver(
  port = 0,
): Promise<{ server: Server; got: Received[]; url: string }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return { server, got, url: `http://127.0.0.1:${p}/hook` };
}

/** A receiver that accepts connections and never answers. */
async function hangingReceiver(): Promise<{ server: Server; url: string; seen: () => number }> {
  let seen = 0;
  const server = createServer(() => {
    seen++; // never answered
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = (server.address() as AddressInfo).port;
  return { server, url: `http://127.0.0.1:${p}/hook`, seen: () => seen };
}

/** A port nothing listens on now (connections to it are refused). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function close(s: Server): Promise<void> {
  s.closeAllConnections();
  return new Promise((r) => s.close(() => r()));
}

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}; log: ${logText.slice(-2000)}`);
}

const fast: NotifySettings = {
  requestTimeoutMs: 2000,
  queueLimit: 100,
  retry: { maxAttempts: 100, maxAgeMs: 30_000, baseDelayMs: 100, maxDelayMs: 400 },
};

const logged = new PassThrough();
let logText = '';
logged.on('data', (c: Buffer) => (logText += c.toString()));
const logger = createLogger({ stream: logged, format: 'json', level: 'debug' });

describe.each(backends)('notifications on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let dir: string;
  const servers: Server[] = [];
  const notifiers: Notifier[] = [];
  const TOKEN = 'bearer-token-0123456789abcdef';
  const SECRET = 'hmac-secret-0123456789abcdef';

  beforeAll(async () => {
    db = await migratedStore(backend);
    dir = mkdtempSync(join(tmpdir(), 'pairshift-notify-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  });
  afterEach(async () => {
    for (const n of notifiers.splice(0)) await n.stop();
    for (const s of servers.splice(0)) await close(s);
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await backend.teardown();
  });

  function notifier(
    receivers: ReceiverConfig[],
    more: Partial<ConstructorParameters<typeof Notifier>[0]> = {},
  ) {
    const n = new Notifier({
      db,
      receivers,
      pairReceivers: async () => [],
      settings: fast,
      owner: 'operator@test',
      logger,
      ...more,
    });
    notifiers.push(n);
    return n;
  }

  const at0 = Date.UTC(2026, 11, 6, 4, 0, 0);
  function phase(upgradeId: string, i: number): NotifyFact {
    return {
      kind: 'phase',
      upgradeId,
      pair: 'p',
      at: new Date(at0 + i * 1000),
      fromVersion: '1.0.0',
      toVersion: '2.0.0',
      message: `step ${i}`,
      from: HAPPY_PATH[i]!,
      to: HAPPY_PATH[i + 1]!,
    };
  }

  test('a receiver refusing connections, then up: every event arrives, in order, signed; the table counts the attempts', async () => {
    const port = await freePort();
    const n = notifier([
      {
        name: 'down-then-up',
        url: `http://127.0.0.1:${port}/hook`,
        bearerTokenFile: join(dir, 'token'),
        hmacSecretFile: join(dir, 'secret'),
      },
    ]);
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) n.notify(phase('u-down', i));
    n.notify({
      ...phase('u-down', 6),
      kind: 'result',
      phase: 'COMPLETE',
      rolledBack: false,
      downtime: { longestMs: 1200, totalMs: 1800 },
    });
    // Five notifications queued without waiting for anything.
    expect(performance.now() - t0).toBeLessThan(50);
    // Down: the first event is tried again and again; the others wait behind it.
    await until('three refused attempts', async () => {
      const rows = await listDeliveries(db, 'u-down');
      // Down for 2 s at least, whatever the machine's speed.
      return rows.length === 5 && rows[0]!.attempts >= 3 && performance.now() - t0 > 2000;
    });
    const down = await listDeliveries(db, 'u-down');
    expect(down[0]).toMatchObject({
      outcome: 'pending',
      lastStatus: null,
      lastError: 'ECONNREFUSED',
    });
    expect(down.slice(1).every((r) => r.attempts === 0 && r.outcome === 'pending')).toBe(true);
    const refused = down[0]!.attempts;

    const up = await recordingReceiver(port);
    servers.push(up.server);
    await n.idle();
    const events = up.got.map((g) => JSON.parse(g.body));
    expect(events.map((e) => e.type)).toEqual([
      ...Array(4).fill('io.pairshift.upgrade.phase.changed'),
      'io.pairshift.upgrade.completed',
    ]);
    expect(events.slice(0, 4).map((e) => e.data.phase)).toEqual(HAPPY_PATH.slice(1, 5));
    expect(events[4]).toMatchObject({
      specversion: '1.0',
      subject: 'u-down',
      source: '/pairshift/pairs/p',
      data: { phase: 'COMPLETE', downtime: { longestMs: 1200, totalMs: 1800 } },
    });
    for (const g of up.got) {
      expect(g.headers['content-type']).toBe('application/cloudevents+json');
      expect(g.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(g.headers['x-pairshift-signature']).toBe(signature(SECRET, g.body));
    }
    const rows = await listDeliveries(db, 'u-down');
    expect(rows.map((r) => [r.outcome, r.attempts, r.lastStatus])).toEqual([
      ['delivered', refused + 1, 200],
      ['delivered', 1, 200],
      ['delivered', 1, 200],
      ['delivered', 1, 200],
      ['delivered', 1, 200],
    ]);
    expect(rows.every((r) => r.receiver === 'down-then-up' && r.finishedAt !== null)).toBe(true);
    expect(rows[4]!.eventType).toBe('io.pairshift.upgrade.completed');
    // The secrets are in no record and no log line.
    const stored = JSON.stringify(await db.query('SELECT * FROM notification_delivery'));
    for (const secret of [TOKEN, SECRET]) {
      expect(stored).not.toContain(secret);
      expect(logText).not.toContain(secret);
    }

    // The same fact again (a status write retried): not sent twice.
    n.notify(phase('u-down', 0));
    await n.idle();
    expect(up.got).toHaveLength(5);
    expect(await listDeliveries(db, 'u-down')).toHaveLength(5);
  });

  test('a receiver that gives up: the bound of attempts and a 4xx are final', async () => {
    const bad = createServer((_q, s) => s.writeHead(404).end());
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
    servers.push(bad);
    const port = await freePort();
    const n = notifier(
      [
        { name: 'gone', url: `http://127.0.0.1:${(bad.address() as AddressInfo).port}/x` },
        { name: 'never-up', url: `http://127.0.0.1:${port}/x`, events: ['result'] },
      ],
      { settings: { ...fast, retry: { ...fast.retry, maxAttempts: 3 } } },
    );
    n.notify(phase('u-give-up', 0));
    n.notify({ ...phase('u-give-up', 1), kind: 'halted', phase: 'PREPARE', reason: 'SplitBrain' });
    n.notify({
      ...phase('u-give-up', 2),
      kind: 'result',
      phase: 'FAILED',
      rolledBack: true,
      downtime: null,
    });
    await n.idle();
    // By receiver (each receiver's rows in its queue's order); "never-up" only wants results.
    const rows = (await listDeliveries(db, 'u-give-up')).sort((a, b) =>
      a.receiver.localeCompare(b.receiver),
    );
    expect(
      rows.map((r) => [r.receiver, r.eventType.split('.').pop(), r.outcome, r.attempts]),
    ).toEqual([
      ['gone', 'changed', 'gave-up', 1],
      ['gone', 'halted', 'gave-up', 1],
      ['gone', 'failed', 'gave-up', 1],
      ['never-up', 'failed', 'gave-up', 3],
    ]);
    expect(rows[0]).toMatchObject({ lastStatus: 404, lastError: 'HTTP 404' });
    expect(rows[3]!.lastError).toMatch(/^ECONNREFUSED; 3 attempt\(s\) failed$/);
  });

  test('a whole upgrade with a receiver that never answers: no step waits; the pair receiver gets every phase in order', async () => {
    const hang = await hangingReceiver();
    const rec = await recordingReceiver();
    servers.push(hang.server, rec.server);
    const source = new StandaloneSource({ db });
    const base = parseHAPair(
      hapairYaml('p-notify').replace(/name: (a|b),/g, 'name: node-$1,'),
      'test',
    );
    await source.putHAPair({
      ...base,
      spec: {
        ...base.spec,
        notifications: { receivers: [{ name: 'chat', url: rec.url, format: 'slack' }] },
      },
    });
    await source.createUpgradeRequest({
      metadata: { name: 'u-run' },
      spec: {
        pairRef: { name: 'p-notify' },
        package: { path: '/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
      },
    });
    // One attempt may take 20 s: a reconciler that waited for even one would show it.
    const n = notifier([{ name: 'hangs', url: hang.url }], {
      settings: { ...fast, requestTimeoutMs: 20_000 },
      pairReceivers: async (p) => (await source.getHAPair(p))?.spec.notifications?.receivers ?? [],
    });
    let clock = at0;
    const rt = new SimRuntime();
    const r = new UpgradeReconciler({
      maxStepsPerReconcile: 50,
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => rt,
      logger,
      now: () => {
        clock += 500;
        return new Date(clock);
      },
      actor: 'operator@test',
      notifier: n,
      // Both nodes claim the VIP for a few looks as UPGRADE_BACKUP begins: a halt.
      afterAction: (_id, a) => {
        if (a.kind === 'event' && a.event.type === 'BACKUP_VERIFIED')
          rt.sim.inject({ kind: 'split-brain', rounds: 4 });
      },
    });
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) {
      const out = await r.reconcile('u-run');
      if (out.requeueAfterMs === undefined) break;
      clock += out.requeueAfterMs;
    }
    const tookMs = performance.now() - t0;
    expect((await source.getUpgradeRequest('u-run'))?.status?.phase).toBe('COMPLETE');
    expect(tookMs).toBeLessThan(15_000);
    // The hanging receiver holds its first event still: the upgrade did not wait for it.
    await until('the hanging receiver to be reached', () => hang.seen() >= 1);
    // Queued in order on the notifier's own chain: the rows appear shortly after.
    await until(
      'every event recorded',
      async () => (await listDeliveries(db, 'u-run')).length === 2 * (HAPPY_PATH.length + 1),
    );
    const hangs = (await listDeliveries(db, 'u-run')).filter((d) => d.receiver === 'hangs');
    expect(hangs.length).toBe(HAPPY_PATH.length + 1);
    expect(hangs.every((d) => d.outcome === 'pending' && d.attempts === 0)).toBe(true);

    // The pair's own receiver (named after its pair) got the Slack text of each phase, then the result.
    await until(
      'the pair receiver to have everything',
      () => rec.got.length === HAPPY_PATH.length + 1,
    );
    const all = rec.got.map((g) => JSON.parse(g.body).text as string);
    // One halt, however many looks it lasted, between the phase changes.
    const halts = all.filter((t) => t.includes(' is halted in '));
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatch(
      /is halted in UPGRADE_BACKUP \(SplitBrain\): halted: split brain: both node-a and node-b hold the VIP/,
    );
    expect(all.indexOf(halts[0]!)).toBe(HAPPY_PATH.indexOf('UPGRADE_BACKUP'));
    const texts = all.filter((t) => !t.includes(' is halted in '));
    const arrows = HAPPY_PATH.slice(1).map((to, i) => `${HAPPY_PATH[i]} → ${to}`);
    for (const [i, a] of arrows.entries()) expect(texts[i]).toContain(a);
    expect(texts.at(-1)).toMatch(/ended COMPLETE: .*longest client outage 0 ms/);
    const chatRows = async () =>
      (await listDeliveries(db, 'u-run')).filter((d) => d.receiver === 'p-notify/chat');
    // The receiver has the body a moment before the row says delivered.
    await until('every chat delivery recorded', async () =>
      (await chatRows()).every((d) => d.outcome === 'delivered'),
    );
    const chat = await chatRows();
    expect(chat.map((d) => d.attempts)).toEqual(Array(HAPPY_PATH.length + 1).fill(1));
    expect(chat.at(-1)!.eventType).toBe('io.pairshift.upgrade.completed');

    // Stopping the operator: what the hanging receiver never took is recorded dropped.
    await n.stop();
    const after = (await listDeliveries(db, 'u-run')).filter((d) => d.receiver === 'hangs');
    expect(after.every((d) => d.outcome === 'dropped')).toBe(true);
    expect(after[0]!.lastError).toBe('the operator stopped before it was delivered');
    await source.stop();
  });

  test('an upgrade cancelled before it started: one cancelled result, downtime null (nothing measured)', async () => {
    const rec = await recordingReceiver();
    servers.push(rec.server);
    const source = new StandaloneSource({ db });
    await source.putHAPair(parseHAPair(hapairYaml('p-cancel'), 'test'));
    await source.createUpgradeRequest({
      metadata: { name: 'u-cancel' },
      spec: {
        pairRef: { name: 'p-cancel' },
        package: { path: '/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
        cancel: { reason: 'not tonight' },
      },
    });
    const n = notifier([{ name: 'all', url: rec.url }]);
    const r = new UpgradeReconciler({
      source,
      db,
      settings: BUILT_IN_DEFAULTS,
      runtimes: async () => {
        throw new Error('no runtime is needed to cancel');
      },
      logger,
      now: () => new Date(at0),
      actor: 'operator@test',
      notifier: n,
    });
    expect(await r.reconcile('u-cancel')).toEqual({});
    expect(await r.reconcile('u-cancel')).toEqual({});
    await n.idle();
    const events = rec.got.map((g) => JSON.parse(g.body));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'io.pairshift.upgrade.cancelled',
      subject: 'u-cancel',
      data: { phase: 'CANCELLED', downtime: null, rolledBack: false, toVersion: '2.0.0' },
    });
    await source.stop();
  });

  test('an operator restarted marks what it left pending as dropped, saying so', async () => {
    const hang = await hangingReceiver();
    servers.push(hang.server);
    const crashed = notifier([{ name: 'hangs', url: hang.url }], {
      settings: { ...fast, requestTimeoutMs: 20_000 },
    });
    crashed.notify(phase('u-restart', 0));
    crashed.notify(phase('u-restart', 1));
    await until('both recorded', async () => (await listDeliveries(db, 'u-restart')).length === 2);
    // A new process of the same operator (the first one "crashed": never stopped).
    const next = notifier([{ name: 'hangs', url: hang.url }]);
    expect(await next.start()).toBe(2);
    const rows = await listDeliveries(db, 'u-restart');
    expect(rows.map((r) => r.outcome)).toEqual(['dropped', 'dropped']);
    expect(rows[0]!.lastError).toBe('not delivered before the operator stopped');
    // Another operator's pending rows (younger than a delivery may live) are left alone.
    const other = notifier([{ name: 'hangs', url: hang.url }], { owner: 'other@test' });
    other.notify(phase('u-restart-other', 0));
    await until('recorded', async () => (await listDeliveries(db, 'u-restart-other')).length === 1);
    expect(await notifier([], {}).start()).toBe(0);
    expect((await listDeliveries(db, 'u-restart-other'))[0]!.outcome).toBe('pending');
  });
});
