// Fuzzing the API over real HTTP/1.1 on 127.0.0.1: thousands of random and
// malformed requests (methods, paths with traversal and unicode, huge,
// duplicate and malformed Authorization and Content-Type headers, bodies
// that are not JSON, deeply nested, with huge numbers or wrong types, and
// multipart) written as raw bytes so the client library cannot tidy them.
// No answer may be a 5xx except on the one route whose source is made to
// fail, every problem must match the OpenAPI Problem schema, and the server
// must still be healthy afterwards.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { generateSigningKeyPair, loadTrustedKey } from '../../src/packages/signing.js';
import type { ResourceSource } from '../../src/reconciler/source.js';
import {
  type Harness,
  OPERATOR_TOKEN,
  OpenApiChecker,
  startHarness,
  VIEWER_TOKEN,
} from './support.js';

jest.setTimeout(240_000);

const BOOM = 'upg-20260101-b00b00b0';
const checker = new OpenApiChecker();
let h: Harness;
let port: number;
let dir: string;
let work: string;

beforeAll(async () => {
  // Uploads on, so multipart bodies reach the package reader; none is validly signed.
  dir = mkdtempSync(join(tmpdir(), 'pairshift-api-fuzz-'));
  work = join(dir, 'work');
  mkdirSync(work);
  const keys = await generateSigningKeyPair(dir);
  h = await startHarness({
    upload: {
      workDir: work,
      trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
      maxBytes: 256 * 1024,
    },
    wrapSource: (s) =>
      new Proxy(s, {
        get(target, prop, recv) {
          const v = Reflect.get(target, prop, recv);
          if (prop === 'getUpgradeRequest') {
            return async (name: string) => {
              if (name === BOOM) throw new Error('injected failure');
              return target.getUpgradeRequest(name);
            };
          }
          return typeof v === 'function' ? v.bind(target) : v;
        },
      }) as ResourceSource,
  });
  port = Number(new URL(h.api.url).port);
});
afterAll(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

interface RawRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: Buffer | null;
  chunked: boolean;
}

const unicode = fc.string({ unit: 'grapheme', maxLength: 12 });
const segment = fc.oneof(
  fc.constantFrom(
    '..',
    '.',
    '%2e%2e',
    '%2F',
    '%00',
    '%',
    '%zz',
    '%E0%A4%A',
    '~',
    'upg-1',
    BOOM,
    'UPPER',
    '',
    OPERATOR_TOKEN,
    encodeURIComponent(VIEWER_TOKEN),
    [...Buffer.from(OPERATOR_TOKEN)].map((b) => `%${b.toString(16)}`).join(''),
  ),
  fc.stringMatching(/^[a-z0-9-]{1,20}$/),
  unicode.map((s) => encodeURIComponent(s)),
  fc.constant('a'.repeat(300)),
);
const knownPath = fc.constantFrom(
  '/health',
  '/api/v1/openapi.json',
  '/api/v1/upgrade/trigger',
  '/api/v1/upgrade/history',
  '/api/v1/upgrade/progress/',
  '/api/v1/upgrade/rollback/',
  '/api/v1/upgrade/cancel/',
  '/api/v1/upgrade/logs/',
  '/',
  '/api/v1/upgrade/',
);
const query = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    '?page=1',
    '?page=0',
    '?page_size=501',
    '?page=1&page=2',
    '?level=ERROR',
    '?level=x',
    '?page=1e3',
    '?page=%ff',
    '?token=abc',
  ),
  fc
    .dictionary(fc.stringMatching(/^[a-z_]{1,10}$/), fc.string({ maxLength: 10 }))
    .map((d) => `?${new URLSearchParams(d).toString()}`),
);
const path = fc
  .tuple(knownPath, fc.array(segment, { maxLength: 3 }), query)
  .map(([p, segs, q]) => `${p}${segs.join('/')}${q}`);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'POST') },
  { weight: 3, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS') },
  { weight: 1, arbitrary: fc.constantFrom('PROPFIND', 'FOO', 'get', 'G\tT', 'CONNECT') },
);

const authorization = fc.oneof(
  fc.constant<[string, string][]>([]),
  {
    weight: 6,
    arbitrary: fc.constant<[string, string][]>([['Authorization', `Bearer ${OPERATOR_TOKEN}`]]),
  },
  {
    weight: 2,
    arbitrary: fc.constant<[string, string][]>([['Authorization', `Bearer ${VIEWER_TOKEN}`]]),
  },
  fc.constant<[string, string][]>([['Authorization', 'Bearer ']]),
  fc.constant<[string, string][]>([['Authorization', `Bearer ${'x'.repeat(20_000)}`]]),
  fc.constant<[string, string][]>([['Authorization', `Bearer ${'y'.repeat(5000)}`]]),
  fc.constant<[string, string][]>([
    ['Authorization', `Bearer ${VIEWER_TOKEN}`],
    ['Authorization', `Bearer ${OPERATOR_TOKEN}`],
  ]),
  fc.constant<[string, string][]>([['Authorization', 'Basic b3A6b3A=']]),
  fc.string({ maxLength: 40 }).map((s): [string, string][] => [['Authorization', s]]),
);

const contentType = fc.oneof(
  fc.constant<[string, string][]>([]),
  { weight: 4, arbitrary: fc.constant<[string, string][]>([['Content-Type', 'application/json']]) },
  fc
    .constantFrom(
      'application/json',
      'application/json; charset=utf-16',
      'application/json; charset=koi8-r',
      'multipart/form-data',
      'multipart/form-data; boundary=',
      'multipart/form-data; boundary=zz',
      'multipart/form-data; boundary=zz; boundary=yy',
      'text/plain',
      'application/x-www-form-urlencoded',
      ';;;',
    )
    .map((v): [string, string][] => [['Content-Type', v]]),
  fc.string({ maxLength: 30 }).map((s): [string, string][] => [['Content-Type', s]]),
  fc.constant<[string, string][]>([
    ['Content-Type', 'application/json'],
    ['Content-Type', 'text/plain'],
  ]),
);

const validTrigger = JSON.stringify({
  pair: 'lab',
  package: { path: '/srv/p.tar.gz', version: '2.0.0' },
});
const body = fc.oneof(
  fc.constant(null),
  fc.constant(validTrigger),
  fc.constantFrom(
    '{',
    '{"pair":',
    'null',
    '[]',
    '"str"',
    '1e999999',
    '{"pair": 1e400}',
    '{"__proto__": {"x": 1}}',
    '\u0000\u0001',
  ),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 5_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  { weight: 2, arbitrary: fc.constant(`{"pair":"${'x'.repeat(70_000)}"}`) },
  fc.json({ maxDepth: 4 }),
  fc
    .record(
      {
        pair: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.constant('lab2')),
        package: fc.oneof(
          fc.record({
            path: fc.oneof(fc.string(), fc.constant('/a/b.tar.gz')),
            version: fc.oneof(fc.string(), fc.constant('2.0.0'), fc.double()),
          }),
          fc.anything(),
        ),
        reason: fc.oneof(fc.string(), fc.integer()),
        restore_database: fc.anything(),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o) ?? 'null'),
  { weight: 3, arbitrary: unstorableBody() },
  fc.constant(JSON.stringify({ [OPERATOR_TOKEN]: 1, reason: `r ${VIEWER_TOKEN}` })),
  fc.constant('--zz\r\nContent-Disposition: form-data; name="pair"\r\n\r\nlab\r\n--zz--\r\n'),
  { weight: 3, arbitrary: multipart() },
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1')),
);

/**
 * Valid-looking bodies with text the store cannot keep (NUL, each kind of
 * unpaired surrogate, control characters) in one string field each: the
 * answer must be a 400, never the store's 500.
 */
function unstorableBody(): fc.Arbitrary<string> {
  const bad = fc.constantFrom('\u0000', '\uD800', '\uDFFF', 'a\uDBFFb', '\u0007', '\u001B[2J');
  const field = fc.constantFrom('pair', 'path', 'signature_path', 'reason');
  return fc.tuple(bad, field).map(([b, f]) => {
    const body = {
      pair: f === 'pair' ? `lab${b}` : 'lab',
      package: {
        path: f === 'path' ? `/srv/p${b}.tar.gz` : '/srv/p.tar.gz',
        version: '2.0.0',
        ...(f === 'signature_path' ? { signature_path: `/srv/p${b}.sig` } : {}),
      },
      ...(f === 'reason' ? { reason: `why${b}` } : {}),
    };
    return JSON.stringify(body);
  });
}

/** Multipart bodies (boundary zz) with random, missing, repeated and hostile parts. */
function multipart(): fc.Arbitrary<string> {
  const part = fc.record({
    name: fc.constantFrom('package', 'signature', 'pair', 'reason', 'other', '', 'package"; x="'),
    filename: fc.option(
      fc.constantFrom('p.tar.gz', '../../etc/passwd', '/abs', '', 'a\u0000b', 'ü.tar.gz'),
      { nil: undefined },
    ),
    data: fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constant('lab'),
      fc.constant('\x1f\x8b\x08\x00garbage'),
    ),
  });
  return fc
    .tuple(fc.array(part, { maxLength: 6 }), fc.boolean())
    .map(
      ([parts, closed]) =>
        parts
          .map(
            (p) =>
              `--zz\r\nContent-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}\r\n\r\n${p.data}\r\n`,
          )
          .join('') + (closed ? '--zz--\r\n' : ''),
    );
}

const randomRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    method,
    path,
    auth: authorization,
    ct: contentType,
    body,
    chunked: fc.boolean(),
    extra: fc.array(
      fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,12}$/), fc.string({ maxLength: 30 })),
      { maxLength: 3 },
    ),
  })
  .map((r) => ({
    method: r.method,
    path: r.path,
    headers: [...r.auth, ...r.ct, ...r.extra],
    body: r.body === null ? null : Buffer.from(r.body, 'utf8'),
    chunked: r.chunked,
  }));

/**
 * Aimed past the front door: a valid operator token, an exact endpoint and
 * the media type it takes, with a random body, so the handlers, the JSON
 * validation and the package reader see the garbage too.
 */
const aimedRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    endpoint: fc.constantFrom(
      ['POST', '/api/v1/upgrade/trigger'],
      ['POST', '/api/v1/upgrade/rollback/'],
      ['POST', '/api/v1/upgrade/cancel/'],
      ['GET', '/api/v1/upgrade/progress/'],
      ['GET', '/api/v1/upgrade/logs/'],
      ['GET', '/api/v1/upgrade/history'],
    ),
    id: fc.oneof(fc.constant('upg-20260101-00000000'), fc.constant(BOOM), segment),
    q: query,
    multipart: fc.boolean(),
    body,
  })
  .map((r) => {
    const [m, p] = r.endpoint as [string, string];
    const path = p.endsWith('/') ? `${p}${r.id}${r.q}` : `${p}${r.q}`;
    const ct = r.multipart ? 'multipart/form-data; boundary=zz' : 'application/json';
    return {
      method: m,
      path,
      headers: [
        ['Authorization', `Bearer ${OPERATOR_TOKEN}`],
        ['Content-Type', ct],
      ] as [string, string][],
      body: m === 'POST' && r.body !== null ? Buffer.from(r.body, 'utf8') : null,
      chunked: false,
    };
  });

const request = fc.oneof(randomRequest, aimedRequest);

function oversized(r: RawRequest): boolean {
  const headerBytes = r.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0);
  return headerBytes > 16 * 1024 || (r.body?.length ?? 0) > 64 * 1024;
}

/** Writes the request byte for byte and reads the whole answer (Connection: close). */
function send(r: RawRequest): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.setTimeout(20_000, () => sock.destroy(new Error(`no answer to ${r.method} ${r.path}`)));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // The server may answer early and close (413 for a body over the
      // limit, 431 for headers over 16 KiB) while we are still writing; the
      // kernel then resets the connection and may drop the answer. Accept
      // that only for those oversized requests.
      if (chunks.length > 0) return done();
      if (e.code === 'ECONNRESET' && oversized(r)) {
        finished = true;
        return resolve({ status: 0, headers: '', body: '' });
      }
      reject(e);
    });
    sock.on('end', () => done());
    let finished = false;
    function done() {
      if (finished) return;
      finished = true;
      sock.destroy();
      const text = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m)
        return reject(
          new Error(
            `no status line for ${r.method} ${r.path}: ${JSON.stringify(text.slice(0, 100))}`,
          ),
        );
      // Only the first answer: after a malformed body node may add a second (400) one.
      const raw = Buffer.concat(chunks);
      const split = raw.indexOf('\r\n\r\n');
      const headers = raw.subarray(0, split).toString('utf8');
      const length = Number(/^content-length: *(\d+)/im.exec(headers)?.[1] ?? raw.length);
      const body = raw.subarray(split + 4, split + 4 + length).toString('utf8');
      resolve({ status: Number(m[1]), headers, body });
    }
    const lines = [`${r.method} ${r.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [k, v] of r.headers) lines.push(`${k}: ${v.replace(/[\r\n]/g, ' ')}`);
    if (r.body && r.chunked) lines.push('Transfer-Encoding: chunked');
    else if (r.body) lines.push(`Content-Length: ${r.body.length}`);
    sock.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    if (r.body && r.chunked) {
      sock.write(`${r.body.length.toString(16)}\r\n`);
      sock.write(r.body);
      sock.write('\r\n0\r\n\r\n');
    } else if (r.body) sock.write(r.body);
  });
}

const seen = new Map<number, number>();
let sent = 0;

function checkAnswer(r: RawRequest, a: { status: number; headers: string; body: string }): void {
  seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
  if (a.status === 0) return; // reset after an early answer to an oversized request (see send)
  if (a.status >= 500 && !(a.status === 500 && r.path.includes(BOOM))) {
    throw new Error(`${a.status} for ${r.method} ${r.path.slice(0, 120)}: ${a.body.slice(0, 300)}`);
  }
  const ct = /^content-type: *(.*)$/im.exec(a.headers)?.[1] ?? null;
  if (a.status >= 400 && r.method !== 'HEAD') {
    if (!ct?.startsWith('application/problem+json'))
      throw new Error(`${a.status} without problem+json for ${r.method} ${r.path.slice(0, 120)}`);
    const problem = JSON.parse(a.body) as { status: number; detail: string };
    if (problem.status !== a.status)
      throw new Error(`problem.status ${problem.status} != ${a.status}`);
    if (
      /\n\s+at /.test(a.body) ||
      a.body.includes(OPERATOR_TOKEN) ||
      a.body.includes(VIEWER_TOKEN)
    ) {
      throw new Error(`a stack or a token in a response: ${a.body.slice(0, 300)}`);
    }
    const standard = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].includes(r.method);
    checker.check(
      standard ? r.method : 'GET',
      standard ? r.path : '/not-an-operation',
      a.status,
      ct,
      problem,
    );
  } else if (a.status < 300 && ct?.startsWith('application/json') && r.method !== 'HEAD') {
    checker.check(r.method, r.path, a.status, ct, JSON.parse(a.body));
  }
}

test('thousands of random and malformed requests: no 5xx, every problem well formed, server alive', async () => {
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(fc.array(request, { minLength: 25, maxLength: 25 }), async (batch) => {
      const answers = await Promise.all(batch.map((r) => send(r)));
      sent += batch.length;
      for (const [i, r] of batch.entries()) checkAnswer(r, answers[i]!);
    }),
    { numRuns: 210, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
  );
  expect(sent).toBeGreaterThanOrEqual(5000);
  // The spread of answers, to show the fuzz reached past the front door.
  console.log(
    `fuzz: ${sent} requests in ${Date.now() - started} ms; statuses ${JSON.stringify(Object.fromEntries([...seen].sort()))}`,
  );
  for (const s of [200, 400, 401, 403, 404, 405, 415]) expect(seen.get(s) ?? 0).toBeGreaterThan(0);

  const health = await send({
    method: 'GET',
    path: '/health',
    headers: [],
    body: null,
    chunked: false,
  });
  expect(health.status).toBe(200);
  const boom = await send({
    method: 'GET',
    path: `/api/v1/upgrade/progress/${BOOM}`,
    headers: [['Authorization', `Bearer ${VIEWER_TOKEN}`]],
    body: null,
    chunked: false,
  });
  expect(boom.status).toBe(500);
  await h.api.flushRequestLog();
  const [row] = await h.db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_request_log');
  expect(row!.n).toBeGreaterThan(4000);
  // No token in any column, raw or percent-decoded (keys and values alike).
  const rows = await h.db.query<Record<string, unknown>>(
    'SELECT path, upgrade_id, token_name, request_summary, response_summary FROM api_request_log',
  );
  const decode = (t: string) =>
    t.replace(/(%[0-9A-Fa-f]{2})+/g, (r) => {
      try {
        return decodeURIComponent(r);
      } catch {
        return r;
      }
    });
  const leaked = rows.filter((r) =>
    Object.values(r).some(
      (v) =>
        typeof v === 'string' &&
        [v, decode(v)].some((t) => t.includes(OPERATOR_TOKEN) || t.includes(VIEWER_TOKEN)),
    ),
  );
  expect(leaked).toEqual([]);
  // Every refused upload removed its folder.
  expect(readdirSync(work)).toEqual([]);
});
