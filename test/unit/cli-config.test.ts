import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'pairshift-cli-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

test('config check prints the settings in force', async () => {
  const r = await runCli('config', 'check', file('ok.yaml', 'upgrade:\n  vipSwitchTimeout: 10s\n'));
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('vipSwitchTimeout: 10s (set)');
  expect(r.stdout).toContain('upgradeTimeout: 15m');
});

test('a bad configuration file gives one line naming the field and a non-zero exit', async () => {
  const bad = file('bad.yaml', 'upgrade:\n  healthCheckTimeout: soon\n');
  const r = await runCli('config', 'check', bad);
  expect(r.code).toBe(1);
  expect(r.stderr).toBe(
    `pairshift: ${bad}: upgrade.healthCheckTimeout: expected a positive duration like "30s", "15m" or "1h", got "soon"\n`,
  );
  expect(r.stdout).toBe('');
});

test('the database URL password is not printed', async () => {
  const r = await runCli(
    'config',
    'check',
    file(
      'db.yaml',
      'store:\n  databaseUrl: postgres://op:hunter2secret@db.example:5432/pairshift\n',
    ),
  );
  expect(r.code).toBe(0);
  expect(r.stdout).not.toContain('hunter2secret');
  expect(r.stdout).toContain('db.example');
});
