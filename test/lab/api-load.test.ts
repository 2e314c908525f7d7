// The REST API under load while the real operator upgrades a real lab pair
// ("ld"): the operator in-process and the API beside it on the same source
// and store, wired as `pairshift operator --listen` wires them (token files,
// allowlist, upload folder, the reconciler's action feed into the progress
// view). The 1.0.0 -> 2.0.0 upgrade is triggered over
// the API; from then until it is terminal, CLIENTS keep-alive connections
// (half with the viewer token, half with the operator token) call progress,
// history and logs as fast as they are answered. Every answer must be 2xx,
// match the OpenAPI document and agree with what came before it (phases
// only forward, progress never back, totals never shrinking); the upgrade
// must finish as in the e2e test; api_request_log must hold every request
// by its X-Request-Id and no token. Needs root and what docs/lab.md lists.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import type { RunningApi } from '../../src/api/server.js';
import { startApiServer } from '../../src/api/server.js';
import { loadApiTokens } from '../../src/api/tokens.js';
import { HAPPY_PATH, PHASES, type Phase } from '../../src/core/phases.js';
import { createLogger } from '../../src/log/logger.js';
import { loadTrustedKey } from '../../src/packages/signing.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { OpenApiChecker } from '../api/support.js';
import {
  buildDist,
  type ClientProber,
  clientFigures,
  historyOf,
  type InProcessOperator,
  LAB_SETTINGS,
  OperatorLab,
  phaseDurations,
} from './operator-harness.js';

/** Concurrent keep-alive connections, one client each. */
const CLIENTS = 28;
/** The upgrade must be terminal by then (it takes ~30 s unloaded here). */
const UPGRADE_TIMEOUT_MS = 360_000;
/** One request without an answer this long is a transport error. */
const REQUEST_TIMEOUT_MS = 30_000;

jest.setTimeout(900_000);

const lab = new OperatorLab('ld');
let db: SqlClient | undefined;
let op: InProcessOperator | undefined;
let api: RunningApi | undefined;
let prober: ClientProber | undefined;
let load: Load | undefined;
const tokens = {
  operator: `ld-op-${randomBytes(18).toString('base64url')}`,
  viewer: `ld-view-${randomBytes(18).toString('base64url')}`,
};
let apiLogPath = '';

beforeAll(async () => {
  buildDist();
  await lab.up();
  await lab.buildPackages();
  db = (await lab.newStore()).db;
  op = await lab.startInProcess(db);
  // The API as src/cli/operator.ts starts it: token files (0600) read with
  // loadApiTokens (which registers the values with the redactor).
  const tokenDir = join(lab.work, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const entries = (['operator', 'viewer'] as const).map((role) => {
    const tokenFile = join(tokenDir, role);
    writeFileSync(tokenFile, `${tokens[role]}\n`, { mode: 0o600 });
    return { name: `load-${role}`, role, tokenFile };
  });
  // Uploads land in the operator's work folder, as with --listen.
  const uploadDir = join(lab.work, 'stage');
  mkdirSync(uploadDir, { recursive: true, mode: 0o700 });
  apiLogPath = join(lab.work, 'api.log');
  api = await startApiServer('127.0.0.1:0', {
    source: op.source,
    db,
    logger: createLogger({
      stream: createWriteStream(apiLogPath, { flags: 'a' }),
      format: 'json',
      level: 'debug',
    }),
    auth: { tokens: await loadApiTokens(entries) },
    allow: ['127.0.0.0/8'],
    // The test's own load all comes from 127.0.0.1: one bucket, never empty.
    limits: { rateLimit: { ratePerSecond: 1_000_000, burst: 1_000_000 } },
    operatorState: () => ({ sourceStarted: true, reconcilerRunning: !op!.operator.loop.stopped }),
    // The reconciler's writes reach the progress view at once.
    progressChanges$: op.operator.actions$,
    autoRollbackDefault: LAB_SETTINGS.autoRollback,
    upload: {
      workDir: uploadDir,
      trustedKeys: [await loadTrustedKey(lab.packages.publicKeyPath)],
      maxBytes: 1024 ** 3,
    },
  });
}, 600_000);

afterAll(async () => {
  try {
    if (load) await load.stop();
    prober?.kill();
    await api?.stop();
    await op?.stop();
    await db?.close();
  } finally {
    await lab.dispose();
  }
});

// ---- one HTTP exchange over a given keep-alive agent -------------------------

interface RawReply {
  status: number;
  contentType: string | null;
  requestId: string | null;
  text: string;
  newConnection: boolean;
}

function httpCall(
  agent: Agent,
  base: URL,
  method: 'GET' | 'POST',
  path: string,
  token: string,
  body?: unknown,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload !== undefined
            ? {
                'content-type': 'application/json',
                'content-length': Buffer.byteLength(payload),
              }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const id = res.headers['x-request-id'];
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? null,
            requestId: typeof id === 'string' ? id : null,
            text: Buffer.concat(chunks).toString('utf8'),
            newConnection: !req.reusedSocket,
          });
        });
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () =>
      req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)),
    );
    req.on('error', reject);
    req.end(payload);
  });
}

// ---- the load ----------------------------------------------------------------

type Endpoint = 'progress' | 'history' | 'logs';

interface Call {
  endpoint: Endpoint;
  path: string;
}

/** What client i asks for its k-th request: a fixed mix over the three endpoints, with filters and paging. */
function plan(upgradeId: string, i: number, k: number): Call {
  const n = (i * 7 + k) % 10;
  const pick = <T>(xs: readonly T[]) => xs[(i + k * 3) % xs.length]!;
  if (n < 4) return { endpoint: 'progress', path: `/api/v1/upgrade/progress/${upgradeId}` };
  if (n < 6) {
    const size = pick([1, 3, 20, 100]);
    const page = pick([1, 1, 2]);
    return {
      endpoint: 'history',
      path: `/api/v1/upgrade/history?upgrade_id=${upgradeId}&page=${page}&page_size=${size}`,
    };
  }
  if (n < 7) {
    return {
      endpoint: 'history',
      path: `/api/v1/upgrade/history?page=${pick([1, 2, 5])}&page_size=${pick([5, 20, 500])}`,
    };
  }
  const level = pick([null, 'INFO', 'WARNING', 'ERROR', 'INFO']);
  const q = [
    ...(level ? [`level=${level}`] : []),
    `page=${pick([1, 1, 2, 4])}`,
    `page_size=${pick([1, 5, 20, 500])}`,
  ];
  return { endpoint: 'logs', path: `/api/v1/upgrade/logs/${upgradeId}?${q.join('&')}` };
}

interface ProgressSample {
  start: number;
  end: number;
  phase: Phase;
  percent: number;
}

const phaseIndex = (p: Phase) => PHASES.indexOf(p);

class Load {
  stopped = false;
  readonly started = performance.now();
  readonly latencies: Record<Endpoint, number[]> = { progress: [], history: [], logs: [] };
  readonly byToken = { operator: 0, viewer: 0 };
  readonly requestIds: string[] = [];
  readonly progress: ProgressSample[] = [];
  readonly nonOk: string[] = [];
  readonly transport: string[] = [];
  readonly violations: string[] = [];
  nonOkCount = 0;
  transportCount = 0;
  violationCount = 0;
  connections = 0;
  #clients: Promise<void>[] = [];
  #agents: Agent[] = [];

  constructor(
    readonly base: URL,
    readonly upgradeId: string,
    readonly checker: OpenApiChecker,
  ) {}

  start(n: number): void {
    for (let i = 0; i < n; i++) this.#clients.push(this.#client(i));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.#clients);
    for (const a of this.#agents) a.destroy();
  }

  get total(): number {
    return Object.values(this.latencies).reduce((s, l) => s + l.length, 0);
  }

  #violation(what: string): void {
    this.violationCount++;
    if (this.violations.length < 30) this.violations.push(what);
  }

  async #client(i: number): Promise<void> {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    this.#agents.push(agent);
    const role = i % 2 === 0 ? 'viewer' : 'operator';
    // What this client saw last, per query: totals only grow.
    const lastTotal = new Map<string, number>();
    for (let k = 0; !this.stopped; k++) {
      const call = plan(this.upgradeId, i, k);
      const t0 = performance.now();
      let r: RawReply;
      try {
        r = await httpCall(agent, this.base, 'GET', call.path, tokens[role]);
      } catch (e) {
        this.transportCount++;
        if (this.transport.length < 20)
          this.transport.push(`client ${i} ${call.path}: ${(e as Error).message}`);
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      const t1 = performance.now();
      if (r.newConnection) this.connections++;
      this.latencies[call.endpoint].push(t1 - t0);
      this.byToken[role]++;
      if (r.requestId) this.requestIds.push(r.requestId);
      else this.#violation(`${call.path}: no X-Request-Id`);
      if (r.status < 200 || r.status > 299) {
        this.nonOkCount++;
        if (this.nonOk.length < 20)
          this.nonOk.push(`${call.path} -> ${r.status} ${r.text.slice(0, 300)}`);
      }
      let body: unknown;
      try {
        body = JSON.parse(r.text);
      } catch {
        this.#violation(`${call.path}: not JSON: ${r.text.slice(0, 200)}`);
        continue;
      }
      try {
        this.checker.check('GET', call.path, r.status, r.contentType, body);
      } catch (e) {
        this.#violation((e as Error).message.slice(0, 600));
        continue;
      }
      if (r.status !== 200) continue;
      this.#consistent(call, body, t0, t1, lastTotal);
    }
  }

  /** What one answer must agree with beyond its schema. */
  #consistent(
    call: Call,
    // biome-ignore lint/suspicious/noExplicitAny: schema-checked reply, read field by field
    b: any,
    t0: number,
    t1: number,
    lastTotal: Map<string, number>,
  ): void {
    const q = new URLSearchParams(call.path.split('?')[1] ?? '');
    if (call.endpoint === 'progress') {
      if (b.upgrade_id !== this.upgradeId) this.#violation(`progress for ${b.upgrade_id}`);
      this.progress.push({ start: t0, end: t1, phase: b.phase, percent: b.progress_percent });
      return;
    }
    const size = Number(q.get('page_size') ?? 20);
    if (b.items.length > size) this.#violation(`${call.path}: ${b.items.length} items > page_size`);
    if (b.page !== Number(q.get('page') ?? 1) || b.page_size !== size)
      this.#violation(`${call.path}: page ${b.page}/${b.page_size} echoed`);
    // biome-ignore lint/suspicious/noExplicitAny: as above
    const ids = b.items.map((x: any) => x.id as number);
    if (ids.some((id: number, j: number) => j > 0 && id >= ids[j - 1]))
      this.#violation(`${call.path}: not newest first: ${ids.join(',')}`);
    // Rows are only ever added: a later answer to the same query never has fewer.
    const prev = lastTotal.get(call.path) ?? 0;
    if (b.total < prev) this.#violation(`${call.path}: total ${b.total} after ${prev}`);
    lastTotal.set(call.path, b.total);
    if (call.endpoint === 'history') {
      const filtered = q.get('upgrade_id');
      if (filtered) {
        // biome-ignore lint/suspicious/noExplicitAny: as above
        const items = b.items as any[];
        if (items.some((x) => x.upgrade_id !== filtered))
          this.#violation(`${call.path}: another upgrade's transition`);
        // Newest first, so the phases reached go backwards along the page.
        for (let j = 1; j < items.length; j++) {
          if (phaseIndex(items[j].to_phase) > phaseIndex(items[j - 1].to_phase))
            this.#violation(
              `${call.path}: history ${items[j].to_phase} recorded after ${items[j - 1].to_phase}`,
            );
        }
      }
    } else {
      if (b.upgrade_id !== this.upgradeId) this.#violation(`logs for ${b.upgrade_id}`);
      const level = q.get('level');
      // biome-ignore lint/suspicious/noExplicitAny: as above
      if (level && b.items.some((x: any) => x.level !== level))
        this.#violation(`${call.path}: an entry of another level`);
    }
  }
}

/**
 * Phases only forward, progress never back: for every answer, compared with
 * every answer received before its request was sent (by any client).
 */
function orderViolations(samples: readonly ProgressSample[]): string[] {
  const byStart = [...samples].sort((a, b) => a.start - b.start);
  const byEnd = [...samples].sort((a, b) => a.end - b.end);
  const rolledBack = samples.some((s) => s.phase === 'ROLLBACK');
  const out: string[] = [];
  let j = 0;
  let maxPhase: ProgressSample | null = null;
  let maxPercent: ProgressSample | null = null;
  for (const s of byStart) {
    while (j < byEnd.length && byEnd[j]!.end < s.start) {
      const e = byEnd[j++]!;
      if (!maxPhase || phaseIndex(e.phase) > phaseIndex(maxPhase.phase)) maxPhase = e;
      if (!maxPercent || e.percent > maxPercent.percent) maxPercent = e;
    }
    if (maxPhase && phaseIndex(s.phase) < phaseIndex(maxPhase.phase))
      out.push(`phase ${s.phase} answered after ${maxPhase.phase} had been`);
    if (!rolledBack && maxPercent && s.percent < maxPercent.percent)
      out.push(
        `progress ${s.percent}% (${s.phase}) answered after ${maxPercent.percent}% (${maxPercent.phase})`,
      );
  }
  return out;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

// ---- the test ----------------------------------------------------------------

describe('the REST API while the operator upgrades lab ld', () => {
  it(`${CLIENTS} keep-alive clients on progress, history and logs through a 1.0.0 -> 2.0.0 upgrade triggered over the API: no errors, answers consistent, every request recorded`, async () => {
    const checker = new OpenApiChecker(
      (await (await fetch(`${api!.url}/api/v1/openapi.json`)).json()) as object,
    );
    const base = new URL(api!.url);
    const runStart = new Date();
    prober = lab.startClientProber();
    await prober.started(); // measuring from here on
    await new Promise((r) => setTimeout(r, 1500)); // the prober sees the pair serving first

    const triggerAgent = new Agent({ keepAlive: false });
    const trig = await httpCall(
      triggerAgent,
      base,
      'POST',
      '/api/v1/upgrade/trigger',
      tokens.operator,
      {
        pair: lab.pair.metadata.name,
        package: { path: lab.packages.v2.packagePath, version: '2.0.0' },
        reason: 'api load test',
      },
    );
    const trigBody = JSON.parse(trig.text);
    checker.check('POST', '/api/v1/upgrade/trigger', trig.status, trig.contentType, trigBody);
    expect(trig.status).toBe(201);
    const upgradeId: string = trigBody.upgrade_id;
    const started = Date.now();

    load = new Load(base, upgradeId, checker);
    load.start(CLIENTS);
    let final: Awaited<ReturnType<InProcessOperator['waitTerminal']>>;
    try {
      final = await op!.waitTerminal(upgradeId, UPGRADE_TIMEOUT_MS);
      // a little longer: the clients see the terminal phase too
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      await load.stop();
    }
    const loadSeconds = (performance.now() - load.started) / 1000;
    const upgradeSeconds = (Date.now() - started) / 1000;
    const probe = await prober.stop();
    prober = undefined;

    // The summary first, so a failing run still says what it saw.
    const summary = (['progress', 'history', 'logs'] as const).map((e) => {
      const l = load!.latencies[e];
      return `${e} ${l.length} (p50 ${percentile(l, 50).toFixed(1)} ms, p99 ${percentile(l, 99).toFixed(1)} ms)`;
    });
    const history = await historyOf(db!, upgradeId);
    const c = clientFigures(probe);
    const pair = await lab.pairState();
    console.log(
      `ld load: ${load.total} requests in ${loadSeconds.toFixed(1)} s (${(load.total / loadSeconds).toFixed(0)}/s) over ${load.connections} connections ` +
        `(viewer ${load.byToken.viewer}, operator ${load.byToken.operator}); ${summary.join('; ')}; ` +
        `non-2xx ${load.nonOkCount}, transport errors ${load.transportCount}, inconsistent ${load.violationCount}\n` +
        `ld upgrade ${upgradeId}: ${final.status!.phase} in ${upgradeSeconds.toFixed(1)} s; phases ${JSON.stringify(phaseDurations(history))}; ` +
        `clients: HTTP longest ${c.httpLongestMs} ms, writes longest ${c.writeLongestMs} ms, ${c.acked} acked, ${c.lost} lost; ` +
        `operator-measured HTTP longest ${final.status!.downtime?.httpLongestMs} ms; versions ${JSON.stringify(pair.versions)}`,
    );

    // No errors of any kind, every answer as documented and consistent.
    expect(load.transport).toEqual([]);
    expect(load.nonOk).toEqual([]);
    expect(load.violations).toEqual([]);
    expect(load.connections).toBe(CLIENTS); // keep-alive held: no reconnects
    expect(load.total).toBeGreaterThan(CLIENTS * 20);
    for (const e of ['progress', 'history', 'logs'] as const)
      expect(load.latencies[e].length).toBeGreaterThan(0);
    expect(orderViolations(load.progress).slice(0, 10)).toEqual([]);
    // The load covered the whole upgrade: every forward phase was answered.
    const seen = new Set(load.progress.map((s) => s.phase));
    for (const p of HAPPY_PATH.slice(1)) expect([p, seen.has(p)]).toEqual([p, true]);

    // The upgrade itself, as in the e2e test.
    expect(final.status!.phase).toBe('COMPLETE');
    expect(final.status!.progress).toBe(100);
    expect(history.map((h) => h.to)).toEqual(HAPPY_PATH);
    expect(pair.versions).toEqual({ a: '2.0.0', b: '2.0.0' });
    expect(pair.vipHolders).toHaveLength(1);
    expect(pair.vipHolderHealthy).toBe(true);
    expect(pair.vipVersion).toBe('2.0.0');
    const d = final.status!.downtime!;
    expect(d.withinBudget).toBe(true);
    expect(d.httpLongestMs).toBeLessThan(d.budgetMs);
    expect(c.acked).toBeGreaterThan(50);
    expect(c.lost).toBe(0);
    expect(c.httpLongestMs).toBeLessThan(2000);
    expect(c.writeLongestMs).toBeLessThan(2000);

    // The API's last word agrees.
    const last = await httpCall(
      triggerAgent,
      base,
      'GET',
      `/api/v1/upgrade/progress/${upgradeId}`,
      tokens.viewer,
    );
    const lastBody = JSON.parse(last.text);
    checker.check(
      'GET',
      `/api/v1/upgrade/progress/${upgradeId}`,
      last.status,
      last.contentType,
      lastBody,
    );
    expect([lastBody.phase, lastBody.progress_percent]).toEqual(['COMPLETE', 100]);
    expect(lastBody.downtime?.within_budget).toBe(true);
    triggerAgent.destroy();

    // api_request_log: a row for every request answered (by its X-Request-Id), no token anywhere.
    await api!.flushRequestLog();
    const rows = await db!.query<{ request_id: string | null }>(
      'SELECT request_id FROM api_request_log WHERE at >= $1',
      [runStart],
    );
    const recorded = new Set(rows.map((r) => r.request_id));
    const missing = load.requestIds.filter((id) => !recorded.has(id));
    console.log(
      `ld api_request_log: ${rows.length} rows since the run started for ${load.requestIds.length} load requests; ${missing.length} missing`,
    );
    expect(missing.length).toBe(0);
    // ...and only those: the load, the trigger and the last progress call, each once.
    expect(rows.length).toBe(load.requestIds.length + 2);
    expect(recorded.has(trig.requestId)).toBe(true);
    const [leak] = await db!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM api_request_log t
        WHERE position($1 in t::text) > 0 OR position($2 in t::text) > 0`,
      [tokens.operator, tokens.viewer],
    );
    expect(leak!.n).toBe(0);
    // ...and the callers are there by name, so the check above looked at real rows.
    const [named] = await db!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM api_request_log t
        WHERE at >= $1 AND (t::text LIKE '%load-viewer%' OR t::text LIKE '%load-operator%')`,
      [runStart],
    );
    expect(named!.n).toBeGreaterThanOrEqual(load.requestIds.length);
    // The API's server log: no token, no internal error.
    const apiLog = readFileSync(apiLogPath, 'utf8');
    expect(apiLog.includes(tokens.operator) || apiLog.includes(tokens.viewer)).toBe(false);
    expect(apiLog).not.toContain('api: internal error');
  });
});
