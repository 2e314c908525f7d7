// Issue 11: what runs after the gates. Strings the store cannot hold are
// refused at the edge with a 400 naming the field; the JSON trigger takes
// only versions a package may carry; page numbers are whole decimals.
import { jest } from '@jest/globals';
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
  h = await startHarness({ pairs: ['lab', 'lab2', 'lab3', 'lab4'] });
  call = client(h.api.url, checker);
});
afterAll(async () => {
  await h.close();
});

const PKG = { path: '/srv/pkgs/app-2.0.0.tar.gz', version: '2.0.0' };
/** What PostgreSQL cannot keep: NUL, and each kind of unpaired UTF-16 surrogate. */
const UNSTORABLE = ['a\u0000b', 'a\uD800b', 'a\uDC00b', '\uDBFF', 'x\u0001y'];

describe('strings the store cannot hold: 400 naming the field, never a 500', () => {
  const triggerFields: [string, (bad: string) => object][] = [
    ['pair', (bad) => ({ pair: bad, package: PKG })],
    ['package.path', (bad) => ({ pair: 'lab', package: { ...PKG, path: `/srv/${bad}` } })],
    [
      'package.signature_path',
      (bad) => ({ pair: 'lab', package: { ...PKG, signature_path: `/srv/${bad}.sig` } }),
    ],
    ['reason', (bad) => ({ pair: 'lab', package: PKG, reason: bad })],
  ];
  test.each(
    triggerFields.flatMap(([field, body]) => UNSTORABLE.map((bad) => [field, bad, body] as const)),
  )('trigger %s = %j', async (field, bad, body) => {
    const r = await call('POST', '/api/v1/upgrade/trigger', { body: body(bad) });
    expect(r.status).toBe(400);
    expect(r.body.detail).toContain(`: ${field}: `);
    expect(r.body.errors[0].field).toBe(field);
  });

  test.each(['cancel', 'rollback'])('%s reason', async (action) => {
    const t = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: action === 'cancel' ? 'lab2' : 'lab3', package: PKG },
    });
    expect(t.status).toBe(201);
    for (const bad of UNSTORABLE) {
      const r = await call('POST', `/api/v1/upgrade/${action}/${t.body.upgrade_id}`, {
        body: { reason: bad },
      });
      expect(r.status).toBe(400);
      expect(r.body.errors[0].field).toBe('reason');
    }
  });

  test('a reason of 1001 characters is refused, text with a paired surrogate and a newline is kept', async () => {
    const long = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab4', package: PKG, reason: 'x'.repeat(1001) },
    });
    expect(long.status).toBe(400);
    const ok = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab4', package: PKG, reason: 'window 🚀\nsecond line' },
    });
    expect(ok.status).toBe(201);
  });
});

describe('one version rule', () => {
  test.each([
    '02.0.0',
    '2.00.0',
    `${'9'.repeat(20_000)}.0.0`,
    '1234567890.0.0',
    '2.0',
    '2.0.0-rc1',
  ])('trigger refuses version #%#', async (version) => {
    const r = await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab', package: { ...PKG, version } },
    });
    expect(r.status).toBe(400);
    expect(r.body.errors[0].field).toBe('package.version');
  });
});

describe('whole decimal page numbers only', () => {
  test.each(['page=1e2', 'page_size=0x1F4', 'page=1.0', 'page= 1', 'page=+1', 'page_size=1e1'])(
    '%s is refused',
    async (q) => {
      const r = await call('GET', `/api/v1/upgrade/history?${q}`);
      expect(r.status).toBe(400);
    },
  );
  test('page=2&page_size=10 is served', async () => {
    const r = await call('GET', '/api/v1/upgrade/history?page=2&page_size=10');
    expect(r.status).toBe(200);
    expect([r.body.page, r.body.page_size]).toEqual([2, 10]);
  });
});

describe('the request log keeps no token, in any column, raw or encoded', () => {
  const hex = (s: string) =>
    [...Buffer.from(s)].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  test('a token as an id, percent-encoded in the path, as a JSON key and in the query', async () => {
    const t = OPERATOR_TOKEN;
    await call('GET', `/api/v1/upgrade/progress/${t}`);
    await call('GET', `/api/v1/upgrade/progress/${hex(t)}`);
    await call('GET', `/api/v1/upgrade/logs/${encodeURIComponent(VIEWER_TOKEN)}?x=${hex(t)}`);
    await call('POST', `/api/v1/upgrade/cancel/upg-20260101-00000000`, {
      body: { [t]: 'x', reason: `why ${t}` },
    });
    await call('POST', '/api/v1/upgrade/trigger', {
      body: { pair: 'lab', package: PKG, [`k-${VIEWER_TOKEN}`]: 1 },
    });
    await call('GET', `/api/v1/upgrade/history?${hex(t)}=1&upgrade_id=${t}`);
    await h.api.flushRequestLog();
    const rows = await h.db.query<Record<string, unknown>>(
      'SELECT path, upgrade_id, token_name, request_summary, response_summary FROM api_request_log',
    );
    expect(rows.length).toBeGreaterThanOrEqual(6);
    const text = JSON.stringify(rows);
    for (const secret of [OPERATOR_TOKEN, VIEWER_TOKEN]) {
      expect(text).not.toContain(secret);
      expect(text.toLowerCase()).not.toContain(hex(secret).toLowerCase());
      expect(decodeURIComponent(text)).not.toContain(secret);
    }
    expect(rows.some((r) => r.upgrade_id === 'upg-20260101-00000000')).toBe(true);
    // Only ids: every stored upgrade_id is one the API generated or the test used.
    expect(
      rows.map((r) => r.upgrade_id).filter((id) => id !== null && !/^upg-\d{8}-/.test(String(id))),
    ).toEqual([]);
  });
});

test('/health without a token says healthy or not and why, without paths', async () => {
  const r = await call('GET', '/health', { token: null });
  expect(r.status).toBe(200);
  expect(r.text).not.toMatch(/\/(tmp|var|etc|home)\b|manifests in|pglite|postgres:\/\//i);
  expect(r.body.checks.map((c: { name: string; status: string }) => c.status)).toEqual([
    'UP',
    'UP',
    'UP',
  ]);
});

test('a request without Host gets a problem+json 400, not node bare one', async () => {
  const { connect } = await import('node:net');
  const port = Number(new URL(h.api.url).port);
  const text = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', reject);
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    sock.write('GET /health HTTP/1.1\r\n\r\n');
  });
  expect(text).toMatch(/^HTTP\/1\.1 400 /);
  expect(text).toMatch(/content-type: application\/problem\+json/i);
  expect(text).toMatch(/connection: close/i);
  expect(text).toContain('needs a Host header');
});
