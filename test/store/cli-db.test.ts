// `pairshift db migrate|status` through the real CLI entry (main), with its
// output captured: what an operator sees, including the one-line failure
// when the database is unreachable.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { DEFAULT_MIGRATIONS_DIR } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { freePort, type PgCluster, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(120_000);

const SHIPPED = readdirSync(DEFAULT_MIGRATIONS_DIR)
  .filter((n) => n.endsWith('.sql'))
  .sort();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pairshift ...args` in this process and captures its output. */
async function pairshift(...args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const realOut = process.stdout.write;
  const realErr = process.stderr.write;
  process.stdout.write = ((chunk: string) =>
    out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) =>
    err.push(String(chunk)) > 0) as typeof process.stderr.write;
  const before = process.exitCode;
  process.exitCode = 0;
  try {
    await main(['node', 'pairshift', ...args]);
    return { code: Number(process.exitCode ?? 0), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = realOut;
    process.stderr.write = realErr;
    process.exitCode = before;
  }
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pairshift-cli-db-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('when the database cannot be reached', () => {
  it('prints one line naming host:port and the reason, never the password, and exits 1', async () => {
    const port = await freePort();
    const r = await pairshift(
      'db',
      'migrate',
      '--database-url',
      `postgres://alice:s3cret@127.0.0.1:${port}/ops`,
    );
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `pairshift: cannot connect to PostgreSQL at 127.0.0.1:${port} (connection refused) while migrating\n`,
    });
  });

  it('says what it was doing for status too', async () => {
    const port = await freePort();
    const r = await pairshift('db', 'status', '--database-url', `postgres://127.0.0.1:${port}/ops`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `pairshift: cannot connect to PostgreSQL at 127.0.0.1:${port} (connection refused) while reading migration status\n`,
    );
  });

  it('redacts the password of a malformed URL', async () => {
    const r = await pairshift(
      'db',
      'migrate',
      '--database-url',
      'postgres://alice:s3cret@db:port/ops',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'pairshift: invalid database URL postgres://alice:***@db:port/ops (expected postgres://user@host:port/db) while migrating\n',
    );
  });
});

describe('on the embedded store', () => {
  it('applies the migrations, then reports up to date, and shows the status', async () => {
    const dir = join(tmp, 'data');
    const first = await pairshift('db', 'migrate', '--data-dir', dir);
    expect(first).toEqual({
      code: 0,
      stderr: '',
      stdout: SHIPPED.map((name) => `applied ${name}\n`).join(''),
    });
    const second = await pairshift('db', 'migrate', '--data-dir', dir);
    expect(second).toEqual({
      code: 0,
      stderr: '',
      stdout: `up to date (embedded store at ${dir})\n`,
    });

    const status = await pairshift('db', 'status', '--data-dir', dir);
    expect(status.code).toBe(0);
    const lines = status.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`store: embedded store at ${dir}`);
    expect(lines[1]).toMatch(/^applied {2}0001_upgrade_task\.sql {2}\d{4}-\d\d-\d\dT/);
    expect(lines.at(-1)).toBe('up to date');
  });

  it('refuses a data folder another process has open, in one line', async () => {
    const dir = join(tmp, 'busy');
    const holder = await openPglite(dir);
    try {
      const r = await pairshift('db', 'migrate', '--data-dir', dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `pairshift: the embedded store at ${dir} is in use by another pairshift process (pid ${process.pid}); ` +
          'stop it, or use another --data-dir while migrating\n',
      );
    } finally {
      await holder.close();
    }
  });
});

describe('on a PostgreSQL server', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPgCluster();
  });
  afterAll(() => cluster.stop());

  it('migrates, then is up to date, and shows pending before and applied after', async () => {
    const pending = await pairshift('db', 'status', '--database-url', cluster.url);
    expect(pending.stdout).toContain('pending  0001_upgrade_task.sql');
    expect(pending.stdout).toContain(`${SHIPPED.length} pending: run pairshift db migrate`);

    const first = await pairshift('db', 'migrate', '--database-url', cluster.url);
    expect(first.stdout).toBe(SHIPPED.map((name) => `applied ${name}\n`).join(''));
    const second = await pairshift('db', 'migrate', '--database-url', cluster.url);
    expect(second.stdout).toBe(`up to date (PostgreSQL at 127.0.0.1:${cluster.port}/postgres)\n`);
  });
});
