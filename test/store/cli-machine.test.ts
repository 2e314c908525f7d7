// `pairshift machine`: the store and the state machine, on the embedded store.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { runCli } from '../support/run-cli.js';

jest.setTimeout(120_000);

test('machine creates the store, migrates once, and prints the machine with the seeded defaults', async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'pairshift-machine-')), 'data');
  const saved = process.env.PAIRSHIFT_DATABASE_URL;
  // --data-dir wins over a database URL in the environment.
  process.env.PAIRSHIFT_DATABASE_URL = 'postgres://nobody@127.0.0.1:1/none';
  try {
    const first = await runCli('machine', '--data-dir', dataDir);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^store ready: applied 0001_upgrade_task\.sql/);
    expect(first.stdout).toContain('phases (13): IDLE, PREPARE, BACKUP');
    expect(first.stdout).toContain(
      'UPGRADE_BACKUP --BACKUP_NODE_HEALTHY [if backupNodePassedHealth]--> VIP_SWITCH',
    );
    for (const line of [
      'upgradeTimeout: 15m',
      'vipSwitchTimeout: 30s',
      'healthCheckTimeout: 30s',
      'backupRetention: 1',
    ]) {
      expect(first.stdout).toContain(line);
    }
    const second = await runCli('machine', '--data-dir', dataDir);
    expect(second.stdout).toMatch(/^store ready: migrations up to date/);
  } finally {
    if (saved === undefined) delete process.env.PAIRSHIFT_DATABASE_URL;
    else process.env.PAIRSHIFT_DATABASE_URL = saved;
  }
});
