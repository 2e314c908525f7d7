// `pairshift operator --listen` serves the API beside the reconciler, on the
// same source and store: a trigger over HTTP becomes an UpgradeRequest the
// running reconciler picks up (held here by approved: false, so no node is
// contacted). Runs the CLI in-process from source; tokens come from a file
// named in the configuration and never show in what the operator prints.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { generateSigningKeyPair } from '../../src/packages/signing.js';
import { freePort } from '../support/pg-cluster.js';
import { runCli } from '../support/run-cli.js';
import { hapairYaml } from './support.js';

jest.setTimeout(90_000);

const TOKEN = 'cli-test-operator-token-5f2a9c0e7b';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-api-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function waitFor<T>(fn: () => Promise<T | null>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('pairshift operator --listen: health, trigger, progress from the reconciler, clean stop', async () => {
  const manifests = join(dir, 'manifests');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'pair.yaml'), hapairYaml('lab'));
  mkdirSync(join(dir, 'keys'));
  const keys = await generateSigningKeyPair(join(dir, 'keys'));
  writeFileSync(join(dir, 'api.token'), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'config.yaml'),
    `api:\n  tokens:\n    - {name: ci, role: operator, tokenFile: ${join(dir, 'api.token')}}\n  allow: [127.0.0.0/8]\n`,
  );
  // left by an earlier run: a half-written upload (made by this replica's
  // earlier start, as its owner file says), one from before owner files (an
  // hour old), and an upgrade's work folder
  mkdirSync(join(dir, 'work', 'upload_Half01'), { recursive: true });
  writeFileSync(join(dir, 'work', 'upload_Half01', 'package.tar.gz'), 'cut short');
  writeFileSync(
    join(dir, 'work', 'upload_Half01', 'owner.json'),
    JSON.stringify({ replica: process.env.POD_NAME ?? hostname(), boot: 'an-earlier-start' }),
  );
  mkdirSync(join(dir, 'work', 'upload_Old001'));
  const hourAgo = (Date.now() - 3_600_000) / 1000;
  utimesSync(join(dir, 'work', 'upload_Old001'), hourAgo, hourAgo);
  mkdirSync(join(dir, 'work', 'upg-20261129-0a1b2c3d'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const run = runCli(
    'operator',
    '--config',
    join(dir, 'config.yaml'),
    '--data-dir',
    join(dir, 'data'),
    '--manifests',
    manifests,
    '--trusted-key',
    keys.publicKeyPath,
    '--work-dir',
    join(dir, 'work'),
    '--listen',
    `127.0.0.1:${port}`,
  );
  try {
    const health = await waitFor(async () => {
      const r = await fetch(`${base}/health`);
      return r.status === 200 ? ((await r.json()) as { status: string }) : null;
    }, 30_000);
    expect(health.status).toBe('UP');
    // swept before the API came up
    expect(readdirSync(join(dir, 'work')).sort()).toEqual(['.replicas', 'upg-20261129-0a1b2c3d']);

    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const t = await fetch(`${base}/api/v1/upgrade/trigger`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        pair: 'lab',
        package: { path: '/srv/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
        options: { approved: false },
      }),
    });
    expect(t.status).toBe(201);
    const { upgrade_id } = (await t.json()) as { upgrade_id: string };
    // The reconciler of the same process wrote the status the API reads.
    const progress = await waitFor(async () => {
      const r = await fetch(`${base}/api/v1/upgrade/progress/${upgrade_id}`, { headers: auth });
      const body = (await r.json()) as { message: string | null; phase: string };
      return body.message?.includes('approval') ? body : null;
    }, 30_000);
    expect(progress.phase).toBe('IDLE');
    expect((await fetch(`${base}/api/v1/upgrade/history`)).status).toBe(401);
  } finally {
    process.emit('SIGTERM');
  }
  const result = await run;
  expect(result.code).toBe(0);
  expect(`${result.stdout}${result.stderr}`).toContain(`API listening on ${base}`);
  expect(`${result.stdout}${result.stderr}`).toContain(
    'removed upload folder upload_Half01: no upgrade uses it',
  );
  expect(`${result.stdout}${result.stderr}`).toContain(
    'removed upload folder upload_Old001: no upgrade uses it',
  );
  // A clean stop withdraws this replica's marker from the upload folder.
  expect(readdirSync(join(dir, 'work', '.replicas'))).toEqual([]);
  expect(`${result.stdout}${result.stderr}`).not.toContain(TOKEN);
  await expect(fetch(`${base}/health`)).rejects.toThrow();
});

test('--listen without tokens is refused with a clear message', async () => {
  const port = await freePort();
  const keys = join(dir, 'keys2');
  mkdirSync(keys);
  const k = await generateSigningKeyPair(keys);
  const r = await runCli(
    'operator',
    '--data-dir',
    join(dir, 'data2'),
    '--trusted-key',
    k.publicKeyPath,
    '--work-dir',
    join(dir, 'work2'),
    '--listen',
    `127.0.0.1:${port}`,
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('api.tokens');
});
