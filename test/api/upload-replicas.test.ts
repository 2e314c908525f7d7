// Two operator replicas, as deploy/overlays/ha runs them: one store (a PGlite
// both sources read and write), one upload folder both mount at the same
// path, each with its API, janitor and marker. Replica A does not lead and
// receives the upload; replica B leads and must find the package whole and
// stage it. B restarting must not remove A's upload in progress, and a
// replica whose folder the leader does not share refuses an upload at once
// (503 PS-1903) instead of an upgrade that fails in PREPARE. The heartbeat
// keeps going while a janitor pass is stuck.

import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jest } from '@jest/globals';
import { type RunningApi, startApiServer } from '../../src/api/server.js';
import { type JanitorLogger, UploadJanitor } from '../../src/api/upload-janitor.js';
import {
  type LeadershipView,
  OWNER_FILE,
  REPLICAS_FOLDER,
  ReplicaPresence,
} from '../../src/api/upload-replicas.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { loadTrustedKey, type TrustedKey } from '../../src/packages/signing.js';
import { stagePackage } from '../../src/packages/stage.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { signedTestPackage } from '../support/signed-package.js';
import { hapairYaml, OPERATOR_TOKEN } from './support.js';

jest.setTimeout(60_000);

interface Replica {
  name: string;
  source: StandaloneSource;
  presence: ReplicaPresence;
  janitor: UploadJanitor;
  api: RunningApi;
}

let dir: string;
let shared: string;
let db: SqlClient;
let pkg: string;
let trustedKeys: TrustedKey[];
const replicas: Replica[] = [];
const lines: string[] = [];
const log: JanitorLogger = {
  info: (m) => lines.push(`info ${m}`),
  warn: (m) => lines.push(`warn ${m}`),
};
/** Who leads, as the Lease would say: B. */
const leader = 'op-b';
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function startReplica(name: string, workDir: string): Promise<Replica> {
  const source = new StandaloneSource({ db, resyncMs: 3_600_000 });
  await source.start();
  const presence = new ReplicaPresence({ workDir, replica: name });
  const janitor = new UploadJanitor({ workDir, source, logger: log, presence });
  // As pairshift operator: the start-up sweep (which announces) before the API.
  await janitor.sweepAtStart();
  const logger = createLogger({ level: 'error', format: 'json' });
  for (const t of logger.transports) t.silent = true;
  const view = (): LeadershipView => ({ leads: name === leader, leader });
  const api = await startApiServer('127.0.0.1:0', {
    source,
    db,
    logger,
    auth: { tokens: [{ token: OPERATOR_TOKEN, role: 'operator', name: 'ci' }] },
    allow: ['127.0.0.0/8'],
    upload: {
      workDir,
      trustedKeys,
      maxBytes: 4 * 1024 * 1024,
      owner: presence.self,
      leaderProblem: () => presence.leaderProblem(view()),
    },
  });
  const r = { name, source, presence, janitor, api };
  replicas.push(r);
  return r;
}

let a: Replica;
let b: Replica;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-replicas-'));
  shared = join(dir, 'shared-work');
  mkdirSync(shared);
  const keys = await signedTestPackage(dir);
  pkg = keys.path;
  trustedKeys = [await loadTrustedKey(keys.publicKeyPath)];
  db = await openPglite(join(dir, 'data'));
  await migrate(db);
  const seed = new StandaloneSource({ db, resyncMs: 3_600_000 });
  await seed.start();
  for (const p of ['lab', 'lab2', 'lab3']) await seed.putHAPair(parseHAPair(hapairYaml(p), p));
  await seed.stop();
  b = await startReplica('op-b', shared);
  a = await startReplica('op-a', shared);
});

afterAll(async () => {
  for (const r of replicas) {
    await r.api.stop();
    await r.janitor.stop();
    await r.source.stop();
  }
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

function form(pair: string): FormData {
  const f = new FormData();
  f.append('pair', pair);
  f.append('package', new Blob([readFileSync(pkg)]), 'app-2.0.0.tar.gz');
  f.append('signature', new Blob([readFileSync(`${pkg}.sig`)]), 'app-2.0.0.tar.gz.sig');
  return f;
}

async function upload(r: Replica, pair: string): Promise<Response> {
  return fetch(`${r.api.url}/api/v1/upgrade/trigger`, {
    method: 'POST',
    body: form(pair),
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  });
}

const uploadFolders = (work: string) => readdirSync(work).filter((n) => n.startsWith('upload_'));

let firstId: string;

test('replica A receives the upload; leader B finds the same package whole and stages it', async () => {
  const res = await upload(a, 'lab');
  expect(res.status).toBe(201);
  const { upgrade_id } = (await res.json()) as { upgrade_id: string };
  firstId = upgrade_id;
  // B's view: its own source over the shared store, its own API.
  const req = await b.source.getUpgradeRequest(upgrade_id);
  expect(req).not.toBeNull();
  const path = req!.spec.package.path;
  expect(dirname(dirname(path))).toBe(shared);
  expect(sha256(path)).toBe(sha256(pkg));
  expect(sha256(req!.spec.package.signaturePath!)).toBe(sha256(`${pkg}.sig`));
  expect(JSON.parse(readFileSync(join(dirname(path), OWNER_FILE), 'utf8'))).toEqual(
    a.presence.self,
  );
  const progress = await fetch(`${b.api.url}/api/v1/upgrade/progress/${upgrade_id}`, {
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  });
  expect(progress.status).toBe(200);
  // What B's PREPARE does with it: verify and stage from the shared folder.
  mkdirSync(join(shared, upgrade_id));
  const staged = await stagePackage({
    path,
    sigPath: req!.spec.package.signaturePath!,
    trustedKeys,
    workDir: join(shared, upgrade_id),
  });
  expect(staged.version).toBe('2.0.0');
  await staged.cleanup();
  // Both janitors keep the folder while the upgrade runs.
  await a.janitor.tidy();
  await b.janitor.tidy();
  expect(existsSync(path)).toBe(true);
});

/** Sends all of an upload to A but its end; returns a function that sends the rest. */
async function uploadInProgress(
  r: Replica,
  pair: string,
): Promise<{ finish: () => Promise<{ status: number; body: string }> }> {
  const encoded = new Request('http://x/', { method: 'POST', body: form(pair) });
  const bytes = Buffer.from(await encoded.arrayBuffer());
  const cut = bytes.indexOf('name="signature"');
  expect(cut).toBeGreaterThan(0);
  let pending: () => void = () => undefined;
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${r.api.url}/api/v1/upgrade/trigger`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${OPERATOR_TOKEN}`,
          'content-type': encoded.headers.get('content-type')!,
          'content-length': String(bytes.length),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.write(bytes.subarray(0, cut));
    pending = () => req.end(bytes.subarray(cut));
  });
  return {
    finish: () => {
      pending();
      return done;
    },
  };
}

test('B restarting sweeps only dead replicas’ leftovers: A’s upload in progress and its running upgrade stay', async () => {
  const before = new Set(uploadFolders(shared));
  const inProgress = await uploadInProgress(a, 'lab2');
  const deadline = Date.now() + 10_000;
  let receiving: string | undefined;
  while (!receiving) {
    receiving = uploadFolders(shared).find(
      (n) => !before.has(n) && existsSync(join(shared, n, 'package.tar.gz')),
    );
    if (Date.now() > deadline) throw new Error('the upload never started');
    await new Promise((r) => setTimeout(r, 20));
  }
  // Leftovers: B's previous start's upload, a replica with no marker, one
  // whose marker went stale, an ownerless folder just made and an old one.
  const leftover = (name: string, owner?: object, ageMs = 0) => {
    mkdirSync(join(shared, name));
    if (owner) writeFileSync(join(shared, name, OWNER_FILE), JSON.stringify(owner));
    writeFileSync(join(shared, name, 'package.tar.gz'), 'partial');
    const t = (Date.now() - ageMs) / 1000;
    utimesSync(join(shared, name), t, t);
  };
  leftover('upload_bPrev1', { replica: 'op-b', boot: b.presence.self.boot });
  leftover('upload_gone01', { replica: 'op-c', boot: 'c-boot' });
  mkdirSync(join(shared, REPLICAS_FOLDER), { recursive: true });
  const staleMarker = join(shared, REPLICAS_FOLDER, 'op-d.json');
  writeFileSync(staleMarker, JSON.stringify({ replica: 'op-d', boot: 'd1', workDir: shared }));
  const old = (Date.now() - 6 * 60_000) / 1000;
  utimesSync(staleMarker, old, old);
  leftover('upload_stale1', { replica: 'op-d', boot: 'd1' });
  leftover('upload_noOwn1');
  leftover('upload_noOwn2', undefined, 11 * 60_000);

  // B restarts: a new process, same replica name, same store and folder.
  const b2 = new UploadJanitor({
    workDir: shared,
    source: b.source,
    logger: log,
    presence: new ReplicaPresence({ workDir: shared, replica: 'op-b' }),
  });
  const verdicts = await b2.sweepAtStart();
  const removed = verdicts.filter((v) => v.remove).map((v) => v.folder);
  expect(removed.sort()).toEqual([
    'upload_bPrev1',
    'upload_gone01',
    'upload_noOwn2',
    'upload_stale1',
  ]);
  expect(verdicts.find((v) => v.folder === receiving)?.reason).toMatch(
    /upload in progress on op-a/,
  );
  expect(existsSync(join(shared, receiving, 'package.tar.gz'))).toBe(true);
  expect(existsSync(join(shared, 'upload_noOwn1'))).toBe(true);
  const first = await b.source.getUpgradeRequest(firstId);
  expect(existsSync(first!.spec.package.path)).toBe(true);

  // The upload completes after B's sweep; the leader finds it whole.
  const answer = await inProgress.finish();
  expect(answer.status).toBe(201);
  const id = (JSON.parse(answer.body) as { upgrade_id: string }).upgrade_id;
  const req = await b.source.getUpgradeRequest(id);
  expect(dirname(req!.spec.package.path)).toBe(join(shared, receiving));
  expect(sha256(req!.spec.package.path)).toBe(sha256(pkg));

  // The first upgrade ends: either replica's janitor removes its folder.
  await b.source.updateStatus(firstId, {
    phase: 'COMPLETE',
    progress: 100,
    completedSteps: [],
    conditions: [],
  });
  await b2.tidy();
  expect(existsSync(dirname(first!.spec.package.path))).toBe(false);
  expect(existsSync(join(shared, receiving))).toBe(true);
  await b2.stop();
});

test('a replica whose upload folder the leader does not share refuses the upload at once (503)', async () => {
  const own = join(dir, 'own-work');
  mkdirSync(own);
  const e = await startReplica('op-e', own);
  const res = await upload(e, 'lab3');
  expect(res.status).toBe(503);
  const problem = (await res.json()) as { code: string; reason: string; detail: string };
  expect(problem.code).toBe('PS-1903');
  expect(problem.reason).toBe('upload-not-shared');
  expect(problem.detail).toMatch(/leader op-b has no marker/);
  expect(problem.detail).not.toContain(own);
  // Nothing was received or created.
  expect(uploadFolders(own)).toEqual([]);
  expect(
    (await e.source.listUpgradeRequests()).filter((u) => u.spec.pairRef.name === 'lab3'),
  ).toEqual([]);
});

test('leaderProblem: the leader must have a fresh marker naming the same path', async () => {
  const work = join(dir, 'lp');
  mkdirSync(work);
  let now = Date.now();
  const me = new ReplicaPresence({ workDir: work, replica: 'me', now: () => now });
  const lead = new ReplicaPresence({ workDir: work, replica: 'lead' });
  await me.announce();
  expect(await me.leaderProblem({ leads: true, leader: 'me' })).toBeNull();
  expect(await me.leaderProblem({ leads: false, leader: 'lead' })).toMatch(/has no marker/);
  expect(await me.leaderProblem({ leads: false, leader: '' })).toMatch(/no replica leads/);
  await lead.announce();
  expect(await me.leaderProblem({ leads: false, leader: 'lead' })).toBeNull();
  expect(await me.leaderProblem({ leads: false, leader: '' })).toBeNull();
  // The same volume mounted elsewhere by the leader: the paths would not match.
  const elsewhere = new ReplicaPresence({ workDir: '/mnt/other', replica: 'lead' });
  writeFileSync(
    join(work, REPLICAS_FOLDER, 'lead.json'),
    JSON.stringify({ ...elsewhere.self, workDir: '/mnt/other' }),
  );
  expect(await me.leaderProblem({ leads: false, leader: 'lead' })).toMatch(/another path/);
  await lead.announce();
  now += 6 * 60_000;
  expect(await me.leaderProblem({ leads: false, leader: 'lead' })).toMatch(/not refreshed/);
  // A clean stop removes only its own start's marker.
  await lead.withdraw();
  expect(existsSync(join(work, REPLICAS_FOLDER, 'lead.json'))).toBe(false);
});

test('the heartbeat goes on while a pass is stuck on the source', async () => {
  const work = join(dir, 'hb');
  mkdirSync(join(work, 'upload_Stuck1'), { recursive: true });
  let release: (v: never[]) => void = () => undefined;
  const stuck = new Promise<never[]>((r) => {
    release = r;
  });
  const presence = new ReplicaPresence({ workDir: work, replica: 'op-h' });
  const janitor = new UploadJanitor({
    workDir: work,
    source: { listUpgradeRequests: () => stuck },
    logger: log,
    presence,
    intervalMs: 60_000,
    heartbeatMs: 50,
  });
  const pass = janitor.tidy(); // announces, then waits on the source forever
  janitor.start();
  const marker = join(work, REPLICAS_FOLDER, 'op-h.json');
  const deadline = Date.now() + 5000;
  while (!existsSync(marker)) await new Promise((r) => setTimeout(r, 10));
  const old = (Date.now() - 60_000) / 1000;
  utimesSync(marker, old, old);
  const [m0] = await presence.markers();
  while ((await presence.markers())[0]!.heartbeatMs <= m0!.heartbeatMs) {
    if (Date.now() > deadline) throw new Error('no heartbeat while the pass was stuck');
    await new Promise((r) => setTimeout(r, 20));
  }
  release([]);
  await pass;
  await janitor.stop();
  // Stopped: no more beats (after one that may have been under way).
  await new Promise((r) => setTimeout(r, 100));
  utimesSync(marker, old, old);
  await new Promise((r) => setTimeout(r, 200));
  expect((await presence.markers())[0]!.heartbeatMs).toBe(m0!.heartbeatMs);
});
