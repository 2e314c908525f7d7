// The upload janitor against a real store (PGlite), the standalone source and
// the real API: a package uploaded over HTTP stays while its upgrade runs and
// is removed when the upgrade ends or its UpgradeRequest is gone; the
// start-up sweep removes half-written and orphaned upload folders and nothing
// else.

import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { jest } from '@jest/globals';
import { merge, Subject } from 'rxjs';
import { type RunningApi, startApiServer } from '../../src/api/server.js';
import { type JanitorLogger, UploadJanitor } from '../../src/api/upload-janitor.js';
import type { Phase } from '../../src/core/phases.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { loadTrustedKey } from '../../src/packages/signing.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { signedTestPackage } from '../support/signed-package.js';
import { hapairYaml, OPERATOR_TOKEN } from './support.js';

jest.setTimeout(60_000);

let dir: string;
let work: string;
let pkg: string;
let db: SqlClient;
let source: StandaloneSource;
let api: RunningApi;
const lines: string[] = [];
const log: JanitorLogger = {
  info: (m) => lines.push(`info ${m}`),
  warn: (m) => lines.push(`warn ${m}`),
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-janitor-'));
  work = join(dir, 'work');
  mkdirSync(work);
  const keys = await signedTestPackage(dir);
  pkg = keys.path;
  db = await openPglite(join(dir, 'data'));
  await migrate(db);
  source = new StandaloneSource({ db, resyncMs: 3_600_000 });
  await source.start();
  for (const p of ['lab', 'lab2', 'lab3', 'lab4'])
    await source.putHAPair(parseHAPair(hapairYaml(p), `test ${p}`));
  const logger = createLogger({ level: 'error', format: 'json' });
  for (const t of logger.transports) t.silent = true;
  api = await startApiServer('127.0.0.1:0', {
    source,
    db,
    logger,
    auth: { tokens: [{ token: OPERATOR_TOKEN, role: 'operator', name: 'ci' }] },
    allow: ['127.0.0.0/8'],
    upload: {
      workDir: work,
      trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
      maxBytes: 4 * 1024 * 1024,
    },
  });
});

afterAll(async () => {
  await api.stop();
  await source.stop();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Uploads the package for a pair; returns the upgrade and its upload folder. */
async function upload(pair: string): Promise<{ id: string; folder: string }> {
  const form = new FormData();
  form.append('pair', pair);
  form.append('package', new Blob([readFileSync(pkg)]), 'app-2.0.0.tar.gz');
  form.append('signature', new Blob([readFileSync(`${pkg}.sig`)]), 'app-2.0.0.tar.gz.sig');
  const res = await fetch(`${api.url}/api/v1/upgrade/trigger`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
  });
  const body = (await res.json()) as { upgrade_id: string };
  expect(res.status).toBe(201);
  const req = await source.getUpgradeRequest(body.upgrade_id);
  const folder = dirname(req!.spec.package.path);
  expect(dirname(folder)).toBe(work);
  expect(existsSync(join(folder, 'package.tar.gz'))).toBe(true);
  return { id: body.upgrade_id, folder };
}

async function setPhase(id: string, phase: Phase): Promise<void> {
  await source.updateStatus(id, { phase, progress: 100, completedSteps: [], conditions: [] });
}

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('an uploaded package stays while its upgrade runs and goes when it completes', async () => {
  const janitor = new UploadJanitor({ workDir: work, source, logger: log });
  const { id, folder } = await upload('lab');
  expect(basename(folder)).toMatch(/^upload_[A-Za-z0-9]{6}$/);
  for (const phase of [undefined, 'PREPARE', 'ROLLBACK'] as const) {
    if (phase) await setPhase(id, phase);
    const [v] = await janitor.tidy();
    expect(v).toMatchObject({ folder: basename(folder), remove: false, upgrade: id });
    expect(existsSync(folder)).toBe(true);
  }
  await setPhase(id, 'COMPLETE');
  const [v] = await janitor.tidy();
  expect(v).toMatchObject({ remove: true, reason: `upgrade ${id} ended (COMPLETE)` });
  expect(existsSync(folder)).toBe(false);
  expect(lines).toContain(
    `info removed upload folder ${basename(folder)}: upgrade ${id} ended (COMPLETE)`,
  );
});

test('the folder goes when its UpgradeRequest is gone', async () => {
  const janitor = new UploadJanitor({ workDir: work, source, logger: log });
  const { id, folder } = await upload('lab2');
  expect((await janitor.tidy())[0]?.remove).toBe(false);
  // The standalone store has no delete endpoint; this is what removing the
  // resource (kubectl delete in a cluster, a removed manifest) leaves.
  await db.query(`DELETE FROM resource WHERE kind = 'UpgradeRequest' AND name = $1`, [id]);
  const [v] = await janitor.tidy();
  expect(v).toMatchObject({ remove: true, reason: `the UpgradeRequest ${id} is gone` });
  expect(existsSync(folder)).toBe(false);
});

test('started, a pass runs when woken (a finished reconcile) and removes an ended upgrade', async () => {
  const reconciled = new Subject<string>();
  const janitor = new UploadJanitor({
    workDir: work,
    source,
    logger: log,
    wake$: merge(source.changes$, reconciled),
    intervalMs: 3_600_000,
    batchMs: 20,
  });
  janitor.start();
  try {
    const { id, folder } = await upload('lab3');
    await setPhase(id, 'FAILED');
    expect(existsSync(folder)).toBe(true);
    reconciled.next(id);
    await until(() => !existsSync(folder));
  } finally {
    await janitor.stop();
  }
});

test('the start-up sweep removes half-written and orphaned uploads, and nothing else', async () => {
  // in use: an upload whose upgrade has not started (lab runs 2.0.0 by now)
  const running = await upload('lab4');
  // ended: a folder an upgrade (created from a manifest or JSON) pointed into
  const ended = join(work, 'upload_Ended1');
  mkdirSync(ended);
  writeFileSync(join(ended, 'package.tar.gz'), 'x');
  await source.createUpgradeRequest({
    metadata: { name: 'upg-ended' },
    spec: {
      pairRef: { name: 'lab3' },
      package: { path: join(ended, 'package.tar.gz'), version: '2.0.0' },
    },
  });
  await setPhase('upg-ended', 'CANCELLED');
  // half-written: a killed operator mid-upload (no upgrade ever pointed here)
  const half = join(work, 'upload_Half01');
  mkdirSync(half);
  writeFileSync(join(half, 'package.tar.gz'), readFileSync(pkg).subarray(0, 1000));
  // from before the upload_ prefix
  const legacy = join(work, 'upload-Old123');
  mkdirSync(legacy);
  // not uploads: an upgrade's work folder, a file and a link with upload names
  const upgradeWork = join(work, 'upg-20261129-0a1b2c3d');
  mkdirSync(join(upgradeWork, 'stage'), { recursive: true });
  writeFileSync(join(work, 'upload_File01'), 'not a folder');
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'keep'), 'keep');
  symlinkSync(outside, join(work, 'upload_Link01'));

  const janitor = new UploadJanitor({ workDir: work, source, logger: log });
  const verdicts = await janitor.sweepAtStart();
  expect(Object.fromEntries(verdicts.map((v) => [v.folder, v.remove]))).toEqual({
    [basename(running.folder)]: false,
    upload_Ended1: true,
    upload_Half01: true,
    'upload-Old123': true,
  });
  expect(readdirSync(work).sort()).toEqual(
    [basename(running.folder), 'upg-20261129-0a1b2c3d', 'upload_File01', 'upload_Link01'].sort(),
  );
  expect(lstatSync(join(work, 'upload_Link01')).isSymbolicLink()).toBe(true);
  expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('keep');
  expect(existsSync(join(running.folder, 'package.tar.gz'))).toBe(true);

  // a second sweep finds nothing more to do, and the running upload is kept
  expect((await janitor.sweepAtStart()).filter((v) => v.remove)).toEqual([]);
});

test('a store that cannot be read removes nothing', async () => {
  const failing = {
    listUpgradeRequests: async () => {
      throw new Error('connection refused');
    },
  };
  const folder = join(work, 'upload_Store1');
  mkdirSync(folder);
  const janitor = new UploadJanitor({ workDir: work, source: failing, logger: log });
  expect(await janitor.sweepAtStart()).toEqual([]);
  expect(existsSync(folder)).toBe(true);
  expect(lines).toContain('warn upload folders not tidied this time: connection refused');
  rmSync(folder, { recursive: true });
});
