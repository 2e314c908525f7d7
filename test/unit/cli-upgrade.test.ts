// `pairshift upgrade ...` against the real API app (PGlite store, standalone
// source; test/api/support.ts), plus a tiny stub for --watch (which needs an
// upgrade that reaches a terminal phase, and no reconciler runs here).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import express from 'express';
import { loadTrustedKey } from '../../src/packages/signing.js';
import { type Harness, OPERATOR_TOKEN, startHarness, VIEWER_TOKEN } from '../api/support.js';
import { runCli } from '../support/run-cli.js';
import { signedTestPackage } from '../support/signed-package.js';

jest.setTimeout(60_000);

let dir: string;
let pkg: string;
let opToken: string;
let viewerToken: string;
let h: Harness;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k-cli-upgrade-'));
  mkdirSync(join(dir, 'work'));
  const keys = await signedTestPackage(dir);
  pkg = keys.path;
  opToken = join(dir, 'op.token');
  viewerToken = join(dir, 'viewer.token');
  writeFileSync(opToken, `${OPERATOR_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(viewerToken, VIEWER_TOKEN, { mode: 0o600 });
  h = await startHarness({
    upload: {
      workDir: join(dir, 'work'),
      trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
      maxBytes: 4 * 1024 * 1024,
    },
  });
});

afterAll(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI and checks no token ever reaches its output. */
async function cli(...args: string[]) {
  const r = await runCli('upgrade', ...args);
  for (const secret of [OPERATOR_TOKEN, VIEWER_TOKEN]) {
    expect(r.stdout).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);
  }
  return r;
}

const api = () => ['--api', h.api.url];

describe('pairshift upgrade against the real API', () => {
  let upgradeId: string;

  it('trigger uploads the package (streamed) and prints the new upgrade', async () => {
    const r = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab',
      '--package',
      pkg,
      '--reason',
      'release 2.0.0',
      '--output',
      'json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.pair).toBe('lab');
    expect(out.target_version).toBe('2.0.0');
    upgradeId = out.upgrade_id;
    expect(upgradeId).toMatch(/^[a-z0-9][-a-z0-9.]*$/);
  });

  it('trigger --dry-run asks for a dry run (JSON reference and upload alike)', async () => {
    const byPath = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab2',
      '--package-path',
      '/srv/packages/app-2.0.0.tar.gz',
      '--version',
      '2.0.0',
      '--dry-run',
      '--output',
      'json',
    );
    expect(byPath.code).toBe(0);
    const req = await h.source.getUpgradeRequest(JSON.parse(byPath.stdout).upgrade_id);
    expect(req?.spec.options).toEqual({ dryRun: true });
    const uploaded = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab3',
      '--package',
      pkg,
      '--dry-run',
      '--output',
      'json',
    );
    expect(uploaded.code).toBe(0);
    const up = await h.source.getUpgradeRequest(JSON.parse(uploaded.stdout).upgrade_id);
    expect(up?.spec.options).toEqual({ dryRun: true });
  });

  it('progress shows the phase, in text and json', async () => {
    const t = await cli('progress', upgradeId, ...api(), '--token-file', viewerToken);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain(`${upgradeId}: lab -> 2.0.0`);
    const j = await cli(
      'progress',
      upgradeId,
      ...api(),
      '--token-file',
      viewerToken,
      '--output',
      'json',
    );
    expect(JSON.parse(j.stdout).upgrade_id).toBe(upgradeId);
  });

  it('the token may come from $PAIRSHIFT_API_TOKEN', async () => {
    process.env.PAIRSHIFT_API_TOKEN = VIEWER_TOKEN;
    try {
      const r = await cli('history', ...api());
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^page 1 of \d+ \(\d+ in all\)/);
    } finally {
      delete process.env.PAIRSHIFT_API_TOKEN;
    }
  });

  it('history and logs page through results', async () => {
    const hist = await cli(
      'history',
      ...api(),
      '--token-file',
      viewerToken,
      '--page',
      '1',
      '--page-size',
      '5',
      '--output',
      'json',
    );
    expect(hist.code).toBe(0);
    const body = JSON.parse(hist.stdout);
    expect(body.page_size).toBe(5);
    expect(body.total).toBeGreaterThanOrEqual(0);
    const logs = await cli(
      'logs',
      upgradeId,
      ...api(),
      '--token-file',
      viewerToken,
      '--level',
      'INFO',
    );
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/^page 1 of \d+/);
  });

  it('cancel needs a reason and is accepted for an operator', async () => {
    const r = await cli(
      'cancel',
      upgradeId,
      ...api(),
      '--token-file',
      opToken,
      '--reason',
      'wrong window',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`cancel of ${upgradeId} accepted`);
    const missing = await cli('cancel', upgradeId, ...api(), '--token-file', opToken);
    expect(missing.code).not.toBe(0);
  });

  it('rollback is answered (accepted, or a one-line conflict with a suggestion)', async () => {
    const r = await cli(
      'rollback',
      upgradeId,
      ...api(),
      '--token-file',
      opToken,
      '--reason',
      'bad release',
    );
    if (r.code === 0) expect(r.stdout).toContain(`rollback of ${upgradeId} accepted`);
    else expect(r.stderr).toMatch(/^pairshift: .*\(409 PS-\d{4}; suggestion: [a-z-]+\)\n$/);
  });

  it('a viewer may not trigger: one line with the code and suggestion, exit 1', async () => {
    const r = await cli(
      'trigger',
      ...api(),
      '--token-file',
      viewerToken,
      '--pair',
      'lab2',
      '--package-path',
      '/srv/p.tar.gz',
      '--version',
      '2.0.0',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pairshift: .*\(403 PS-1201; suggestion: contact-admin\)\n$/);
  });

  it('no token: 401', async () => {
    const r = await cli('history', ...api());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(401 PS-110\d; suggestion: authenticate\)/);
  });

  it('an unknown upgrade: 404', async () => {
    const r = await cli('progress', 'upg-does-not-exist', ...api(), '--token-file', viewerToken);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(404 PS-\d{4}/);
  });

  it('a refused package: 422 with the reason', async () => {
    const bad = join(dir, 'bad.tar.gz');
    writeFileSync(bad, 'not a package');
    writeFileSync(`${bad}.sig`, 'not a signature');
    const r = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab3',
      '--package',
      bad,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^pairshift: .*signature.*\(422 PS-\d{4}; suggestion: fix-package\)\n$/,
    );
  });

  it('an upload over the limit: the 413 answer, not a broken pipe', async () => {
    const big = join(dir, 'big.tar.gz');
    writeFileSync(big, Buffer.alloc(6 * 1024 * 1024, 1));
    writeFileSync(`${big}.sig`, '{}');
    const r = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab3',
      '--package',
      big,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(413 PS-\d{4}/);
  });

  it('usage errors before any call', async () => {
    const both = await cli(
      'trigger',
      ...api(),
      '--pair',
      'lab',
      '--package',
      pkg,
      '--package-path',
      '/x',
      '--version',
      '2.0.0',
    );
    expect(both.stderr).toContain(
      'give either --package FILE (upload) or --package-path PATH --version V',
    );
    const noVersion = await cli('trigger', ...api(), '--pair', 'lab', '--package-path', '/x');
    expect(noVersion.stderr).toContain('--package-path needs --version');
    const missing = await cli(
      'trigger',
      ...api(),
      '--token-file',
      opToken,
      '--pair',
      'lab',
      '--package',
      join(dir, 'nope.tar.gz'),
    );
    expect(missing.stderr).toMatch(/cannot read package file .*nope\.tar\.gz/);
    const badLevel = await cli('logs', 'x', ...api(), '--level', 'DEBUG');
    expect(badLevel.code).not.toBe(0);
    const noFile = await cli('history', ...api(), '--token-file', join(dir, 'missing.token'));
    expect(noFile.stderr).toMatch(/cannot read the token file/);
  });

  it('an API that is not there', async () => {
    const r = await cli('history', '--api', 'http://127.0.0.1:1', '--token-file', viewerToken);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pairshift: cannot reach the API at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('pairshift upgrade progress --watch', () => {
  it('polls until a terminal phase, printing each change once', async () => {
    const phases = ['PREFLIGHT', 'PREFLIGHT', 'UPGRADE_STANDBY', 'COMPLETE'];
    let calls = 0;
    let auth: string | undefined;
    const app = express();
    app.get('/api/v1/upgrade/progress/:id', (req, res) => {
      auth = req.headers.authorization;
      const phase = phases[Math.min(calls++, phases.length - 1)];
      res.json({
        upgrade_id: req.params.id,
        pair: 'lab',
        target_version: '2.0.0',
        phase,
        progress_percent: calls * 25,
        current_step: null,
        message: null,
      });
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await cli(
        'progress',
        'upg-1',
        '--api',
        url,
        '--token-file',
        viewerToken,
        '--watch',
        '--interval',
        '1',
      );
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.map((l) => l.split('  ')[1]?.split(' ')[0])).toEqual([
        'PREFLIGHT',
        'PREFLIGHT',
        'UPGRADE_STANDBY',
        'COMPLETE',
      ]);
      expect(calls).toBe(4);
      expect(auth).toBe(`Bearer ${VIEWER_TOKEN}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
