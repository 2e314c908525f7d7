// api_request_log written in batches against a real (embedded) store: every
// record arrives, in far fewer INSERTs than records; one bad row loses only
// itself; a store that does not keep up costs bounded memory and says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestLog, type RequestRecord } from '../../src/api/request-log.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import type { SqlClient, SqlExecutor } from '../../src/store/sql-client.js';

let dir: string;
let db: SqlClient;
let lines: string[];
let logger: Logger;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-reqlog-'));
  db = await openPglite(join(dir, 'data'));
  await migrate(db);
});
afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.query('DELETE FROM api_request_log');
  lines = [];
  logger = createLogger({ level: 'debug', format: 'json' });
  for (const t of logger.transports) t.silent = true;
  logger.on('data', (info: unknown) => lines.push(JSON.stringify(info)));
});

/** The store, counting INSERTs, optionally held until released. */
function counting(inner: SqlExecutor) {
  let inserts = 0;
  let held: Promise<void> | null = null;
  let release = () => {};
  const exec: SqlExecutor = {
    async query(text, params) {
      if (held) await held;
      if (text.trimStart().startsWith('INSERT')) inserts++;
      return inner.query(text, params);
    },
    exec: (script) => inner.exec(script),
  };
  return {
    exec,
    get inserts() {
      return inserts;
    },
    hold() {
      held = new Promise((r) => {
        release = r;
      });
    },
    release() {
      held = null;
      release();
    },
  };
}

const record = (i: number, over: Partial<RequestRecord> = {}): RequestRecord => ({
  at: new Date(),
  requestId: `req-${i}`,
  method: 'GET',
  path: `/api/v1/upgrade/progress/upg-20261129-${String(i).padStart(8, '0')}`,
  status: 200,
  durationMs: 1.4,
  clientIp: '127.0.0.1',
  upgradeId: `upg-20261129-${String(i).padStart(8, '0')}`,
  tokenName: 'dashboard',
  query: {},
  body: undefined,
  response: { phase: 'PREPARE' },
  ...over,
});

const count = async () =>
  (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_request_log'))[0]!.n;

test('every record arrives, batched into few INSERTs, with the token name in its column', async () => {
  const store = counting(db);
  const log = new RequestLog(store.exec, logger, { batchSize: 100, flushAfterMs: 20 });
  for (let i = 0; i < 450; i++) log.record(record(i));
  await log.flush();
  expect(await count()).toBe(450);
  expect(store.inserts).toBeLessThanOrEqual(5);
  const ids = await db.query<{ request_id: string; token_name: string }>(
    'SELECT request_id, token_name FROM api_request_log ORDER BY id',
  );
  expect(ids.map((r) => r.request_id)).toEqual(Array.from({ length: 450 }, (_, i) => `req-${i}`));
  expect(new Set(ids.map((r) => r.token_name))).toEqual(new Set(['dashboard']));
});

test('a lone record is written after the short wait, without a flush', async () => {
  const log = new RequestLog(db, logger, { flushAfterMs: 20 });
  log.record(record(1));
  const until = Date.now() + 5000;
  while ((await count()) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  expect(await count()).toBe(1);
});

test('records arriving while a batch is written are written too', async () => {
  const store = counting(db);
  const log = new RequestLog(store.exec, logger, { batchSize: 10, flushAfterMs: 5 });
  store.hold();
  for (let i = 0; i < 10; i++) log.record(record(i)); // starts a write, held
  for (let i = 10; i < 15; i++) log.record(record(i)); // queued behind it
  store.release();
  const until = Date.now() + 5000;
  while ((await count()) < 15 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  expect(await count()).toBe(15);
});

test('one bad row loses only itself, and is reported once', async () => {
  const log = new RequestLog(db, logger, { batchSize: 50 });
  for (let i = 0; i < 20; i++) {
    log.record(record(i, i === 7 ? { clientIp: 'not-an-address' } : {}));
  }
  await log.flush();
  expect(await count()).toBe(19);
  const warnings = lines.filter((l) => l.includes('could not record a request'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('"failed":1');
});

test('a store that does not keep up costs bounded memory; what was dropped is counted', async () => {
  const store = counting(db);
  const log = new RequestLog(store.exec, logger, { batchSize: 5, flushAfterMs: 5, maxQueued: 20 });
  store.hold();
  log.record(record(0));
  await new Promise((r) => setTimeout(r, 30)); // the writer is now waiting on the store
  for (let i = 1; i < 60; i++) log.record(record(i));
  store.release();
  await log.flush();
  // The batch being written (1) plus the queue's 20; the other 39 were dropped.
  expect(await count()).toBe(21);
  expect(lines.some((l) => l.includes('did not keep up') && l.includes('"dropped":39'))).toBe(true);
});

test('methods outside the usual seven are recorded; secrets in paths and bodies are redacted', async () => {
  const log = new RequestLog(db, logger);
  log.record(record(1, { method: 'PROPFIND', status: 405 }));
  log.record(
    record(2, {
      method: 'POST',
      path: '/api/v1/upgrade/trigger',
      body: { pair: 'lab', password: 'hunter2-hunter2' },
    }),
  );
  await log.flush();
  const rows = await db.query<{ method: string; request_summary: string }>(
    'SELECT method, request_summary FROM api_request_log ORDER BY id',
  );
  expect(rows.map((r) => r.method)).toEqual(['PROPFIND', 'POST']);
  expect(rows[1]!.request_summary).toContain('"pair":"lab"');
  expect(JSON.stringify(rows)).not.toContain('hunter2');
});
