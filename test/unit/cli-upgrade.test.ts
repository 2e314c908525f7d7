// `pairshift upgrade ...` against the real API app (PGlite store, standalone
// source; test/api/support.ts), plus tiny stubs for an API that goes away and
// comes back. No reconciler runs here: the tests move an upgrade's status
// themselves, as the reconciler would, while a watch runs (src/cli/exit-codes.ts
// for the codes checked).

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import express from 'express';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { EXIT } from '../../src/cli/exit-codes.js';
import type { Phase } from '../../src/core/phases.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import { loadTrustedKey } from '../../src/packages/signing.js';
import { createUpgradeTask, recordTransition } from '../../src/store/upgrades.js';
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

  it('rollback --restore-database asks for the database too; without it, the database is kept', async () => {
    for (const restore of [true, false]) {
      const name = await upgradeIn('UPGRADE_MASTER');
      // the API refuses a rollback before a verified backup (PS-1503): the
      // task's history passes BACKUP -> UPGRADE_BACKUP, as the reconciler's would
      await createUpgradeTask(h.db, {
        upgradeId: name,
        pairName: `lab-rollback-${restore}`,
        targetVersion: '2.0.0',
        requestedBy: 'test',
      });
      const path = ['IDLE', 'PREPARE', 'BACKUP', 'UPGRADE_BACKUP', 'UPGRADE_MASTER'] as const;
      for (let i = 1; i < path.length; i++) {
        await recordTransition(h.db, name, {
          from: path[i - 1]!,
          to: path[i]!,
          cause: 'test',
          actor: 'test',
          at: new Date(),
        });
      }
      const r = await cli(
        'rollback',
        name,
        ...api(),
        '--token-file',
        opToken,
        '--reason',
        'bad data',
        ...(restore ? ['--restore-database'] : []),
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(restore ? 'and the database' : 'are restored');
      if (!restore) expect(r.stdout).not.toContain('and the database');
      const spec = (await h.source.getUpgradeRequest(name))?.spec;
      expect(spec?.rollback?.reason).toBe('bad data');
      expect(spec?.rollback?.restoreDatabase).toBe(restore ? true : undefined);
    }
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

  it('an unknown upgrade: 404, exit 3 (not found) from every command that names one', async () => {
    const r = await cli('progress', 'upg-does-not-exist', ...api(), '--token-file', viewerToken);
    expect(r.code).toBe(EXIT.NOT_FOUND);
    expect(r.stderr).toMatch(/\(404 PS-\d{4}/);
    for (const action of ['cancel', 'rollback']) {
      const a = await cli(
        action,
        'upg-does-not-exist',
        ...api(),
        '--token-file',
        opToken,
        '--reason',
        'x',
      );
      expect(a.code).toBe(EXIT.NOT_FOUND);
      expect(a.stderr).toMatch(/\(404 PS-\d{4}/);
    }
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
    expect(both.code).toBe(EXIT.USAGE);
    const noVersion = await cli('trigger', ...api(), '--pair', 'lab', '--package-path', '/x');
    expect(noVersion.stderr).toContain('--package-path needs --version');
    expect(noVersion.code).toBe(EXIT.USAGE);
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
    expect(missing.code).toBe(EXIT.USAGE);
    const badLevel = await cli('logs', 'x', ...api(), '--level', 'DEBUG');
    expect(badLevel.code).toBe(EXIT.USAGE);
    const noFile = await cli('history', ...api(), '--token-file', join(dir, 'missing.token'));
    expect(noFile.stderr).toMatch(/cannot read the token file/);
    expect(noFile.code).toBe(EXIT.USAGE);
    const help = await cli('--help');
    expect(help.code).toBe(EXIT.OK);
    expect(help.stdout).toMatch(
      /Exit codes:\n {3}0 {2}done.*\n(.*\n)* {3}7 {2}the upgrade ended in FAILED/,
    );
    // commander's own checks, our value parsers and a malformed id (the API's 400)
    const usage: [string[], RegExp][] = [
      [['history', '--bogus'], /unknown option '--bogus'/],
      [['progress'], /missing required argument 'id'/],
      [['progress', 'x', '--watch', '--interval', '0'], /--interval takes seconds/],
      [['progress', 'x', '--watch', '--timeout', 'soon'], /--timeout takes a duration like 90s/],
      [['progress', 'x', '--timeout', '5s'], /--timeout goes with --watch/],
      [['history', '-o', 'xml'], /argument 'xml' is invalid/],
      [['history', '--api', 'ftp://x'], /expected an http:\/\/ or https:\/\/ URL/],
      [['progress', 'Not_An_Id!', '--token-file', viewerToken], /\(400 PS-1003/],
    ];
    for (const [args, message] of usage) {
      // the API first, so that a --api in args wins
      const r = await cli(args[0]!, ...api(), ...args.slice(1));
      expect({ args, code: r.code }).toEqual({ args, code: EXIT.USAGE });
      expect(r.stderr).toMatch(message);
    }
  });

  it('an API that is not there', async () => {
    const r = await cli('history', '--api', 'http://127.0.0.1:1', '--token-file', viewerToken);
    expect(r.code).toBe(EXIT.API_UNREACHABLE);
    expect(r.stderr).toMatch(/^pairshift: cannot reach the API at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('pairshift upgrade progress --watch', () => {
  it('polls until a terminal phase, printing each change once', async () => {
    const phases = ['PREPARE', 'PREPARE', 'UPGRADE_BACKUP', 'COMPLETE'];
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
        '200ms',
      );
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines.map((l) => l.split('  ')[1]?.split(' ')[0])).toEqual([
        'PREPARE',
        'PREPARE',
        'UPGRADE_BACKUP',
        'COMPLETE',
      ]);
      expect(calls).toBe(4);
      expect(auth).toBe(`Bearer ${VIEWER_TOKEN}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

// ---- watching the real API: exit codes, --timeout, halts, formats ----------

let made = 0;
/** How many times the API has read each UpgradeRequest (to act right after a watch's first look). */
const reads = new Map<string, number>();

/** An upgrade in `phase`, written as the reconciler writes one (no task row: a request alone is enough). */
async function upgradeIn(phase: Phase, extra: Partial<UpgradeRequestStatus> = {}): Promise<string> {
  const name = `upg-20261206-${(0xa0000000 + made++).toString(16)}`;
  await h.source.createUpgradeRequest({
    metadata: { name },
    spec: {
      pairRef: { name: 'lab' },
      package: { path: '/srv/app-2.0.0.tar.gz', version: '2.0.0' },
    },
  });
  await moveTo(name, phase, extra);
  return name;
}

async function moveTo(name: string, phase: Phase, extra: Partial<UpgradeRequestStatus> = {}) {
  await h.source.updateStatus(name, {
    phase,
    progress: phase === 'COMPLETE' ? 100 : 40,
    completedSteps: [],
    conditions: [],
    message: `now ${phase}`,
    ...extra,
  });
  h.progressChanged.next(name);
}

const stalled = (at: string): UpgradeRequestStatus['conditions'] => [
  {
    type: 'Stalled',
    status: 'True',
    reason: 'SplitBrain',
    message: 'both nodes hold the VIP',
    lastTransitionTime: at,
  },
];

async function until(what: string, test: () => boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!test()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a watch, lets it take its first look, then runs `change` while it goes on watching. */
async function watchThrough(name: string, change: () => Promise<void>, ...extra: string[]) {
  const before = reads.get(name) ?? 0;
  const run = cli(
    'progress',
    name,
    ...api(),
    '--token-file',
    viewerToken,
    '--watch',
    '--interval',
    '100ms',
    ...extra,
  );
  await until(`the first look at ${name}`, () => (reads.get(name) ?? 0) > before);
  await change();
  return run;
}

describe('progress --watch against the real API: the exit code says how it ended', () => {
  beforeAll(() => {
    const read = h.source.getUpgradeRequest.bind(h.source);
    jest.spyOn(h.source, 'getUpgradeRequest').mockImplementation(async (name: string) => {
      const r = await read(name);
      reads.set(name, (reads.get(name) ?? 0) + 1);
      return r;
    });
  });
  afterAll(() => jest.restoreAllMocks());

  it.each([
    ['COMPLETE', EXIT.OK],
    ['FAILED', EXIT.UPGRADE_FAILED],
    ['TIMEOUT', EXIT.UPGRADE_FAILED],
    ['UNREACHABLE', EXIT.UPGRADE_FAILED],
    ['CANCELLED', EXIT.UPGRADE_FAILED],
  ] as const)('%s: exit %d', async (end, code) => {
    const name = await upgradeIn('UPGRADE_BACKUP');
    const r = await watchThrough(name, () => moveTo(name, end));
    expect(r.code).toBe(code);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toContain(`${name}: lab -> 2.0.0  UPGRADE_BACKUP 40%`);
    expect(lines.at(-1)).toContain(`  ${end} `);
    if (code === EXIT.OK) expect(r.stderr).toBe('');
    else expect(r.stderr).toBe(`pairshift: upgrade ${name} ended in ${end}: now ${end}\n`);
    // one look at a finished upgrade is judged the same way
    const once = await cli('progress', name, ...api(), '--token-file', viewerToken);
    expect(once.code).toBe(code);
  });

  it('a halt (Stalled=True) ends the watch with exit 6 and says why; the answer carries it', async () => {
    const name = await upgradeIn('VIP_SWITCH');
    const at = '2026-12-06T04:00:00.000Z';
    const r = await watchThrough(name, () =>
      moveTo(name, 'VIP_SWITCH', { conditions: stalled(at) }),
    );
    expect(r.code).toBe(EXIT.HALTED);
    expect(r.stdout.trim().split('\n').at(-1)).toContain(
      'VIP_SWITCH 40% HALTED (SplitBrain: both nodes hold the VIP)',
    );
    expect(r.stderr).toMatch(
      new RegExp(
        `^pairshift: upgrade ${name} is halted in VIP_SWITCH 40%: SplitBrain: both nodes hold the VIP`,
      ),
    );
    const j = await cli('progress', name, ...api(), '--token-file', viewerToken, '-o', 'json');
    expect(j.code).toBe(EXIT.HALTED);
    expect(JSON.parse(j.stdout).halted).toEqual({
      reason: 'SplitBrain',
      message: 'both nodes hold the VIP',
      since: at,
    });
    // a finished upgrade is never halted, whatever an old condition says
    await moveTo(name, 'FAILED', { conditions: stalled(at) });
    const done = await cli('progress', name, ...api(), '--token-file', viewerToken, '-o', 'json');
    expect(done.code).toBe(EXIT.UPGRADE_FAILED);
    expect(JSON.parse(done.stdout).halted).toBeNull();
  });

  it('--timeout: exit 5 naming the phase it was in, soon after the limit', async () => {
    const name = await upgradeIn('PREPARE');
    const t0 = performance.now();
    const r = await cli(
      'progress',
      name,
      ...api(),
      '--token-file',
      viewerToken,
      '--watch',
      '--interval',
      '100ms',
      '--timeout',
      '700ms',
    );
    const took = performance.now() - t0;
    expect(r.code).toBe(EXIT.WAIT_TIMEOUT);
    expect(r.stderr).toBe(
      `pairshift: timed out after 700ms waiting for upgrade ${name} to end: it is in PREPARE 40%\n`,
    );
    expect(took).toBeGreaterThanOrEqual(700);
    expect(took).toBeLessThan(5_000);
    // each change is printed once: the phase did not change
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('-o yaml on every read command; a watch prints one YAML document per change', async () => {
    const name = await upgradeIn('BACKUP');
    const p = await cli('progress', name, ...api(), '--token-file', viewerToken, '-o', 'yaml');
    expect(p.code).toBe(EXIT.OK);
    expect(parseYaml(p.stdout)).toMatchObject({ upgrade_id: name, phase: 'BACKUP', halted: null });
    const hist = await cli(
      'history',
      ...api(),
      '--token-file',
      viewerToken,
      '--page-size',
      '2',
      '-o',
      'yaml',
    );
    expect(parseYaml(hist.stdout)).toMatchObject({ page: 1, page_size: 2 });
    const logs = await cli('logs', name, ...api(), '--token-file', viewerToken, '-o', 'yaml');
    expect(parseYaml(logs.stdout)).toMatchObject({ page: 1, items: [] });
    const w = await watchThrough(name, () => moveTo(name, 'COMPLETE'), '-o', 'yaml');
    expect(w.code).toBe(EXIT.OK);
    const docs = parseAllDocuments(w.stdout).map((d) => d.toJS());
    expect(docs.map((d) => d.phase)).toEqual(['BACKUP', 'COMPLETE']);
  });

  it('on a terminal the block is redrawn in place; without one, plain lines', async () => {
    const name = await upgradeIn('UPGRADE_MASTER', {
      currentStep: 'UPGRADE_MASTER/INSTALL_PACKAGE@node-a',
      downtime: { httpLongestMs: 120, httpTotalMs: 300, budgetMs: 240_000, withinBudget: true },
    });
    const tty = Object.getOwnPropertyDescriptor(process.stdout, 'isTTY');
    const columns = Object.getOwnPropertyDescriptor(process.stdout, 'columns');
    Object.defineProperty(process.stdout, 'isTTY', { value: true, configurable: true });
    Object.defineProperty(process.stdout, 'columns', { value: 100, configurable: true });
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await watchThrough(name, () => moveTo(name, 'COMPLETE'));
    } finally {
      for (const [key, d] of [
        ['isTTY', tty],
        ['columns', columns],
      ] as const) {
        if (d) Object.defineProperty(process.stdout, key, d);
        else delete (process.stdout as unknown as Record<string, unknown>)[key];
      }
    }
    expect(r.code).toBe(EXIT.OK);
    // the second drawing moves up over the first (6 rows) and clears
    expect(r.stdout).toContain('\x1b[6F\x1b[J');
    const first = r.stdout.split('\x1b[')[0]!.split('\n');
    expect(first[1]).toMatch(/^phase +UPGRADE_MASTER +\[########------------\] 40%$/);
    expect(first[2]).toBe('step      UPGRADE_MASTER/INSTALL_PACKAGE@node-a');
    expect(first).toContain('downtime  longest 120 ms, total 300 ms (within the budget of 4m)');
    for (const line of r.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(100 + 8);
    const plain = await cli('progress', name, ...api(), '--token-file', viewerToken, '--watch');
    expect(plain.stdout).not.toContain('\x1b');
  });
});

describe('progress --watch when the API goes away', () => {
  /** A port nothing listens on (taken, then given back). */
  async function freePort(): Promise<number> {
    const s: Server = express().listen(0, '127.0.0.1');
    await new Promise((r) => s.once('listening', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
  }

  it('keeps trying with backoff for --reconnect-for, then exits 4', async () => {
    const t0 = performance.now();
    const r = await cli(
      'progress',
      'upg-1',
      '--api',
      `http://127.0.0.1:${await freePort()}`,
      '--token-file',
      viewerToken,
      '--watch',
      '--reconnect-for',
      '1500ms',
    );
    const took = performance.now() - t0;
    expect(r.code).toBe(EXIT.API_UNREACHABLE);
    expect(r.stderr).toMatch(
      /^pairshift: cannot reach the API at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*; trying again for up to 1500ms\n/,
    );
    expect(r.stderr).toMatch(/gave up after trying for 1500ms/);
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(6_000);
  });

  it('--timeout still counts while the API is away: exit 5', async () => {
    const r = await cli(
      'progress',
      'upg-1',
      '--api',
      `http://127.0.0.1:${await freePort()}`,
      '--token-file',
      viewerToken,
      '--watch',
      '--timeout',
      '600ms',
    );
    expect(r.code).toBe(EXIT.WAIT_TIMEOUT);
    expect(r.stderr).toMatch(
      /timed out after 600ms waiting for upgrade upg-1 to end: the API has not answered for/,
    );
  });

  it('an API that comes back (refusing, then 503, then answering) is followed to the end', async () => {
    const port = await freePort();
    let calls = 0;
    const app = express();
    app.get('/api/v1/upgrade/progress/:id', (req, res) => {
      if (calls++ === 0) {
        res.status(503).json({ title: 'store unavailable', status: 503 });
        return;
      }
      res.json({
        upgrade_id: req.params.id,
        pair: 'lab',
        target_version: '2.0.0',
        phase: 'COMPLETE',
        progress_percent: 100,
        current_step: null,
        message: null,
        halted: null,
      });
    });
    let server: Server | undefined;
    const later = setTimeout(() => {
      server = app.listen(port, '127.0.0.1');
    }, 300);
    try {
      const r = await cli(
        'progress',
        'upg-1',
        '--api',
        `http://127.0.0.1:${port}`,
        '--token-file',
        viewerToken,
        '--watch',
        '--reconnect-for',
        '20s',
      );
      expect(r.code).toBe(EXIT.OK);
      expect(calls).toBe(2);
      expect(r.stderr).toMatch(/trying again for up to 20s\n.*the API answers again/s);
      expect(r.stdout).toContain('upg-1: lab -> 2.0.0  COMPLETE 100%');
    } finally {
      clearTimeout(later);
      if (server) {
        const s = server;
        await new Promise((res) => s.close(res));
      }
    }
  });
});
