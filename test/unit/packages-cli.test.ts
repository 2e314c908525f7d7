// `pairshift package keygen|build|sign|verify` end to end, in-process.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { runCli } from '../support/run-cli.js';

jest.setTimeout(60_000);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'k-pkg-cli-'));
  writeFileSync(join(dir, 'app.jar'), 'jar bytes');
  writeFileSync(join(dir, 'worker.py'), 'print(1)\n');
  mkdirSync(join(dir, 'mig'));
  writeFileSync(join(dir, 'mig', '001_a.sql'), 'SELECT 1;\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('keygen, build, sign and verify; an untrusted key is refused in one line with exit 1', async () => {
  const keygen = await runCli('package', 'keygen', '--out', join(dir, 'keys'));
  expect(keygen).toMatchObject({ code: 0, stderr: '' });
  expect(statSync(join(dir, 'keys', 'package-signing.key')).mode & 0o777).toBe(0o600);

  const out = join(dir, 'app-2.0.0.tar.gz');
  const build = await runCli(
    'package',
    'build',
    '--version',
    '2.0.0',
    '--from-versions',
    '1.0.0, 1.5.0',
    '--jar',
    join(dir, 'app.jar'),
    '--python',
    join(dir, 'worker.py'),
    '--migrations',
    join(dir, 'mig'),
    '--out',
    out,
  );
  expect(build.stderr).toBe('');
  expect(build.stdout).toMatch(/built .*app-2\.0\.0\.tar\.gz: app 2\.0\.0, 3 files, 1 migrations/);

  const sign = await runCli(
    'package',
    'sign',
    '--key',
    join(dir, 'keys', 'package-signing.key'),
    out,
  );
  expect(sign.code).toBe(0);
  expect(statSync(`${out}.sig`).size).toBeGreaterThan(0);

  const ok = await runCli(
    'package',
    'verify',
    '--pubkey',
    join(dir, 'keys', 'package-signing.pub'),
    out,
  );
  expect(ok).toMatchObject({ code: 0, stderr: '' });
  expect(ok.stdout).toMatch(
    /^ok: app 2\.0\.0 \(upgrades from 1\.0\.0, 1\.5\.0\), 3 files verified, signed by [0-9a-f]{16}\n$/,
  );

  const json = await runCli(
    'package',
    'verify',
    '--output',
    'json',
    '--pubkey',
    join(dir, 'keys', 'package-signing.pub'),
    out,
  );
  expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, manifest: { version: '2.0.0' } });

  await runCli('package', 'keygen', '--out', join(dir, 'other'));
  const bad = await runCli(
    'package',
    'verify',
    '--pubkey',
    join(dir, 'other', 'package-signing.pub'),
    out,
  );
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(
    /^pairshift: the package is signed by key [0-9a-f]{16}, which is not among the trusted keys/,
  );
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
});

it('refuses bad input with one clear line', async () => {
  const noKey = await runCli('package', 'verify', join(dir, 'x.tar.gz'));
  expect(noKey).toMatchObject({
    code: 1,
    stderr: 'pairshift: give at least one trusted key with --pubkey\n',
  });
  const badVersion = await runCli(
    'package',
    'build',
    '--version',
    '2.0',
    '--from-versions',
    '1.0.0',
    '--jar',
    join(dir, 'app.jar'),
    '--python',
    join(dir, 'worker.py'),
    '--out',
    join(dir, 'p.tar.gz'),
  );
  expect(badVersion.code).toBe(1);
  expect(badVersion.stderr).toMatch(/"2\.0" is not a version: expected MAJOR\.MINOR\.PATCH/);
  const older = await runCli(
    'package',
    'build',
    '--version',
    '2.0.0',
    '--from-versions',
    '3.0.0',
    '--jar',
    join(dir, 'app.jar'),
    '--python',
    join(dir, 'worker.py'),
    '--out',
    join(dir, 'p.tar.gz'),
  );
  expect(older.stderr).toMatch(
    /upgradesFrom 3\.0\.0 is not older than the package version 2\.0\.0/,
  );
  expect(() => statSync(join(dir, 'p.tar.gz'))).toThrow();
});
