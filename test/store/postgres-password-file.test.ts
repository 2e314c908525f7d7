// The PostgreSQL store with its password in a file (store.passwordFile,
// $PAIRSHIFT_DATABASE_PASSWORD_FILE), against a real server that demands
// SCRAM passwords on TCP: the file's password opens the store; a group-
// readable file (a Kubernetes Secret under fsGroup, 0440) is accepted; a
// file others may read, a missing, empty or wrong one is refused with a
// sentence that names the file and never its contents; a rotated file is
// read by the next new connection.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import pg from 'pg';
import { chooseStore, openStore } from '../../src/store/open-store.js';
import { openPostgres } from '../../src/store/postgres.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { type PgCluster, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(60_000);

const PASSWORD = 'correct horse battery staple';
let cluster: PgCluster;
let dir: string;
let noPasswordUrl: string;

beforeAll(async () => {
  cluster = await startPgCluster();
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query(`CREATE ROLE store_user LOGIN PASSWORD '${PASSWORD}'`);
  await admin.query('GRANT CREATE ON SCHEMA public TO store_user');
  // TCP from now on needs the password; the trust line stays for the socket.
  writeFileSync(
    join(cluster.dataDir, 'pg_hba.conf'),
    'local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n',
  );
  await admin.query('SELECT pg_reload_conf()');
  await admin.end();
  noPasswordUrl = `postgres://store_user@127.0.0.1:${cluster.port}/postgres`;
  dir = mkdtempSync(join(tmpdir(), 'pairshift-pwfile-'));
});
afterAll(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function passwordFile(name: string, content: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

async function failure(p: Promise<SqlClient>): Promise<string> {
  try {
    const db = await p;
    await db.close();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the store to be refused');
}

test('without the file the server refuses (the test can fail)', async () => {
  expect(await failure(openPostgres(noPasswordUrl))).toMatch(/password/i);
});

test("a 0600 file, and a group-readable 0440 one (a Secret's), open the store; a trailing newline is the file's", async () => {
  for (const mode of [0o600, 0o440]) {
    const db = await openPostgres(noPasswordUrl, {
      passwordFile: passwordFile(`ok-${mode}`, `${PASSWORD}\n`, mode),
    });
    expect(await db.query<{ u: string }>('SELECT current_user AS u')).toEqual([
      { u: 'store_user' },
    ]);
    await db.close();
  }
});

test('chosen from the environment: $PAIRSHIFT_DATABASE_PASSWORD_FILE', async () => {
  const file = passwordFile('env', PASSWORD, 0o600);
  process.env.PAIRSHIFT_DATABASE_PASSWORD_FILE = file;
  try {
    const db = await openStore({ databaseUrl: noPasswordUrl });
    expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await db.close();
  } finally {
    delete process.env.PAIRSHIFT_DATABASE_PASSWORD_FILE;
  }
});

test('refused: readable by others, missing, empty, wrong, and together with a password in the URL; never the contents', async () => {
  const secretish = 'do-not-print-this-password';
  const cases: [string | undefined, RegExp][] = [
    [
      passwordFile('world', secretish, 0o644),
      /can be read or written by others \(mode 0644\).*chmod 0600 or 0440/,
    ],
    [join(dir, 'missing'), /cannot read the store's password file .*missing \(ENOENT\)/],
    [passwordFile('empty', '\n', 0o600), /password file .*empty is empty/],
    [passwordFile('wrong', secretish, 0o600), /password authentication failed/],
  ];
  for (const [file, expected] of cases) {
    const message = await failure(openPostgres(noPasswordUrl, { passwordFile: file }));
    expect(message).toMatch(expected);
    expect(message).not.toContain(secretish);
  }
  const withPassword = `postgres://store_user:${encodeURIComponent(PASSWORD)}@127.0.0.1:${cluster.port}/postgres`;
  const both = await failure(
    openPostgres(withPassword, { passwordFile: passwordFile('both', PASSWORD, 0o600) }),
  );
  expect(both).toMatch(/has a password and a password file is set too/);
  expect(both).not.toContain(PASSWORD);
  expect(() => chooseStore({ dataDir: dir, passwordFile: join(dir, 'x') })).toThrow(
    /password file is for a PostgreSQL store/,
  );
});

test('a rotated password is read by the next new connection, without a restart', async () => {
  const file = passwordFile('rotating', PASSWORD, 0o600);
  const db = await openPostgres(noPasswordUrl, { passwordFile: file });
  try {
    const [before] = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    execFileSync('runuser', [
      '-u',
      'postgres',
      '--',
      'psql',
      '-h',
      '127.0.0.1',
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      '-c',
      "ALTER ROLE store_user PASSWORD 'rotated-2'",
    ]);
    writeFileSync(file, 'rotated-2\n');
    // connections the pool holds were opened with the old password and stay
    // good; a new one (after the pool dropped them) must use the new file
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'store_user'",
    );
    await admin.end();
    await new Promise((r) => setTimeout(r, 300)); // the pool drops the cut-off idle client
    const [after] = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    expect(after!.pid).not.toBe(before!.pid);
  } finally {
    await db.close();
  }
});
