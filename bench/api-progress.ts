// Throughput of GET /api/v1/upgrade/progress/{id} on the real API app
// against a plain express route answering a fixed JSON body of similar size,
// measured in the same run (target: progress ≥ 50 % of plain).
//
// The real app does everything it does in production: allowlist, rate limit
// (set high here), bearer token, the progress answer (from the in-memory
// progress view, src/api/progress-view.ts, which reads the UpgradeRequest,
// the task and its steps again whenever they change), the response, and one
// api_request_log row per request (written in batches).
// The load generator is a worker thread (its own event loop, so it does not
// steal the server's): N keep-alive connections (node:http Agent), each
// sending the next request as soon as the previous answer ends, for a fixed
// time. Runs alternate plain / progress / progress while its upgrade changes
// 10 times a second (the status rewritten and announced, as the reconciler
// does after each action, so the view reads the store again each time) /
// "express + the same store reads only" (what every request cost before the
// view: it separates the store's cost from the API layers'); medians. After
// each progress run the bench checks that api_request_log holds one row per
// answered request.
//
// Run (compiles just this script and what it imports):
//   npm run bench:api -- [connections=16] [seconds=3] [runs=5] [pglite|postgres]
// The store defaults to a throwaway PostgreSQL 15 cluster (what an operator
// runs with); `pglite` uses the embedded store instead.
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import express from 'express';
import { Subject } from 'rxjs';
import { startApiServer } from '../src/api/server.js';
import { parseHAPair } from '../src/inventory/hapair.js';
import { createLogger } from '../src/log/logger.js';
import { StandaloneSource } from '../src/sources/standalone.js';
import { migrate } from '../src/store/migrate.js';
import { openPglite } from '../src/store/pglite.js';
import { openPostgres } from '../src/store/postgres.js';
import { listSteps } from '../src/store/progress-store.js';
import type { SqlClient } from '../src/store/sql-client.js';
import { getUpgradeTask } from '../src/store/upgrades.js';
import { hapairYaml } from '../test/support/manifests.js';
import { type PgCluster, startPgCluster } from '../test/support/pg-cluster.js';

const TOKEN = 'bench-operator-token-0123456789abcdef';
const PAIR = hapairYaml('bench');

// The load generator (plain JS: runs in a worker thread via eval).
const LOADGEN = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, connections, seconds, token } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const target = new URL(url);
let done = 0, errors = 0, statuses = {};
const end = Date.now() + seconds * 1000;
function one() {
  return new Promise((resolve) => {
    const req = http.request({ agent, host: target.hostname, port: target.port, path: target.pathname,
      headers: { authorization: 'Bearer ' + token } }, (res) => {
      statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) done++; else errors++; resolve(); });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end();
  });
}
async function loop() { while (Date.now() < end) await one(); }
const t0 = Date.now();
Promise.all(Array.from({ length: connections }, loop)).then(() => {
  agent.destroy();
  parentPort.postMessage({ done, errors, statuses, ms: Date.now() - t0 });
});
`;

interface LoadResult {
  done: number;
  errors: number;
  statuses: Record<string, number>;
  ms: number;
}

function load(url: string, connections: number, seconds: number): Promise<LoadResult> {
  return new Promise((resolvePromise, reject) => {
    const w = new Worker(LOADGEN, {
      eval: true,
      workerData: { url, connections, seconds, token: TOKEN },
    });
    w.once('message', (m: LoadResult) => {
      void w.terminate();
      resolvePromise(m);
    });
    w.once('error', reject);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const connections = Number(process.argv[2] ?? 16);
  const seconds = Number(process.argv[3] ?? 3);
  const runs = Number(process.argv[4] ?? 5);
  const store = process.argv[5] ?? 'postgres';
  const dir = mkdtempSync(join(tmpdir(), 'k-bench-api-'));
  let cluster: PgCluster | undefined;
  let db: SqlClient;
  if (store === 'pglite') db = await openPglite(join(dir, 'data'));
  else {
    cluster = await startPgCluster();
    db = await openPostgres(cluster.url);
  }
  const source = new StandaloneSource({ db, resyncMs: 3_600_000 });
  const logger = createLogger({ level: 'warn', format: 'json' });
  for (const t of logger.transports) t.silent = true;
  let api: Awaited<ReturnType<typeof startApiServer>> | undefined;
  const progressChanged = new Subject<string>();
  let plainServer: ReturnType<express.Express['listen']> | undefined;
  try {
    await migrate(db, { dir: resolve('migrations') });
    await source.start();
    await source.putHAPair(parseHAPair(PAIR, 'bench'));
    api = await startApiServer('127.0.0.1:0', {
      source,
      db,
      logger,
      auth: { tokens: [{ token: TOKEN, role: 'operator', name: 'bench' }] },
      allow: ['127.0.0.0/8'],
      limits: { rateLimit: { ratePerSecond: 1e9, burst: 1e9 } },
      progressChanges$: progressChanged,
    });
    const trig = await fetch(`${api.url}/api/v1/upgrade/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        pair: 'bench',
        package: { path: '/srv/packages/app-2.0.0.tar.gz', version: '2.0.0' },
        reason: 'bench',
      }),
    });
    const created = (await trig.json()) as { upgrade_id?: string; detail?: string };
    if (!created.upgrade_id)
      throw new Error(`trigger failed: ${trig.status} ${JSON.stringify(created)}`);
    const progressUrl = `${api.url}/api/v1/upgrade/progress/${created.upgrade_id}`;
    const sample = await (
      await fetch(progressUrl, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();

    // The baseline: express, JSON, a body of the same size, nothing else.
    const plain = express();
    const fixed = JSON.parse(sample);
    plain.get('/plain', (_req, res) => {
      res.json(fixed);
    });
    // The same store reads as the progress handler (UpgradeRequest from the
    // source, the task and its steps), without the API's layers (allowlist,
    // rate limit, token, validation, api_request_log): separates the cost of
    // reading from the cost of the layers.
    plain.get('/reads/:id', async (req, res) => {
      const [r, task] = await Promise.all([
        source.getUpgradeRequest(req.params.id),
        getUpgradeTask(db, req.params.id),
      ]);
      const steps = task ? await listSteps(db, req.params.id) : [];
      res.json({ ...fixed, phase: r?.status?.phase ?? fixed.phase, steps: steps.length });
    });
    plainServer = plain.listen(0, '127.0.0.1');
    await new Promise((r) => plainServer!.once('listening', r));
    const plainBase = `http://127.0.0.1:${(plainServer.address() as AddressInfo).port}`;
    const plainUrl = `${plainBase}/plain`;
    const readsUrl = `${plainBase}/reads/${created.upgrade_id}`;

    await load(plainUrl, connections, 1); // warm-up both
    await load(progressUrl, connections, 1);
    const id = created.upgrade_id;
    const logged = async () =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM api_request_log'))[0]!.n;
    /** A progress run; every answered request must have its api_request_log row. */
    const progressRun = async (): Promise<LoadResult> => {
      await api!.flushRequestLog();
      const before = await logged();
      const res = await load(progressUrl, connections, seconds);
      await api!.flushRequestLog();
      const rows = (await logged()) - before;
      const answered = res.done + res.errors;
      if (rows !== answered) missingRows += answered - rows;
      return res;
    };
    let missingRows = 0;
    /** The reconciler's part: a status written and announced, 10 times a second. */
    const churn = async <T>(fn: () => Promise<T>): Promise<T> => {
      let n = 0;
      const base = (await source.getUpgradeRequest(id))?.status;
      const timer = setInterval(() => {
        void source
          .updateStatus(id, {
            ...(base ?? { phase: 'PREPARE', progress: 0, completedSteps: [], conditions: [] }),
            message: `churn ${++n}`,
          } as never)
          .then(() => progressChanged.next(id));
      }, 100);
      try {
        return await fn();
      } finally {
        clearInterval(timer);
      }
    };
    const p: number[] = [];
    const q: number[] = [];
    const qc: number[] = [];
    const r: number[] = [];
    let errors = 0;
    for (let i = 0; i < runs; i++) {
      const a = await load(plainUrl, connections, seconds);
      const b = await progressRun();
      const bc = await churn(progressRun);
      const c = await load(readsUrl, connections, seconds);
      p.push((a.done / a.ms) * 1000);
      q.push((b.done / b.ms) * 1000);
      qc.push((bc.done / bc.ms) * 1000);
      r.push((c.done / c.ms) * 1000);
      errors += a.errors + b.errors + bc.errors + c.errors;
      for (const [what, x] of [
        ['progress', b],
        ['progress (changing)', bc],
      ] as const) {
        if (x.errors > 0)
          console.log(`${what} run ${i + 1}: statuses ${JSON.stringify(x.statuses)}`);
      }
    }
    console.log(
      `${connections} keep-alive connections, ${seconds} s per run, ${runs} runs each, alternating; ` +
        `store ${store}; ${cpus().length} CPUs, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}; response ${sample.length} bytes`,
    );
    const row = (name: string, xs: number[]) =>
      `${name.padEnd(40)} median ${median(xs).toFixed(0).padStart(6)} req/s  runs ${xs.map((x) => x.toFixed(0)).join(' ')}`;
    console.log(row('plain express route (fixed JSON)', p));
    console.log(row('express + the same store reads only', r));
    console.log(row('GET /api/v1/upgrade/progress/{id}', q));
    console.log(row('  the same, upgrade changing 10x/s', qc));
    console.log(`errors (non-200 or failed): ${errors}`);
    console.log(`answered requests without an api_request_log row: ${missingRows}`);
    console.log(`progress / plain: ${((median(q) / median(p)) * 100).toFixed(0)}%`);
    console.log(`progress while changing / plain: ${((median(qc) / median(p)) * 100).toFixed(0)}%`);
  } finally {
    if (plainServer) await new Promise((r) => plainServer!.close(r));
    await api?.stop();
    await source.stop();
    await db.close();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
