// The migration runner on both stores: in order, exactly once, each file in
// its own transaction, edited files refused, and (on the real server) two
// migrators racing.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import {
  DEFAULT_MIGRATIONS_DIR,
  loadMigrations,
  migrate,
  migrationStatus,
  sha256,
} from '../../src/store/migrate.js';
import { openPostgres } from '../../src/store/postgres.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { backends } from './backends.js';

jest.setTimeout(180_000);

const SHIPPED = readdirSync(DEFAULT_MIGRATIONS_DIR)
  .filter((n) => n.endsWith('.sql'))
  .sort();

/** A private copy of the shipped migrations that a test may edit. */
function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-migrations-'));
  cpSync(DEFAULT_MIGRATIONS_DIR, dir, { recursive: true });
  return dir;
}

async function recorded(db: SqlClient): Promise<{ name: string; checksum: string }[]> {
  return db.query('SELECT name, checksum FROM schema_migrations ORDER BY name');
}

describe('the migrations folder', () => {
  it('is found next to the package, whatever the cwd', () => {
    expect(SHIPPED.length).toBeGreaterThanOrEqual(4);
    expect(SHIPPED[0]).toBe('0001_upgrade_task.sql');
    const elsewhere = mkdtempSync(join(tmpdir(), 'pairshift-cwd-'));
    const cwd = process.cwd();
    try {
      process.chdir(elsewhere);
      expect(loadMigrations().map((m) => m.name)).toEqual(SHIPPED);
    } finally {
      process.chdir(cwd);
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a badly named file, a duplicate number and transaction control', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pairshift-migrations-'));
    try {
      writeFileSync(join(dir, '0001_a.sql'), 'SELECT 1;');
      writeFileSync(join(dir, 'fix.sql'), 'SELECT 1;');
      expect(() => loadMigrations(dir)).toThrow(/fix\.sql .* not named NNNN_/);
      rmSync(join(dir, 'fix.sql'));
      writeFileSync(join(dir, '0001_b.sql'), 'SELECT 1;');
      expect(() => loadMigrations(dir)).toThrow(
        /0001_a\.sql and 0001_b\.sql share the number 0001/,
      );
      rmSync(join(dir, '0001_b.sql'));
      writeFileSync(join(dir, '0002_c.sql'), 'SELECT 1;\nCOMMIT;\nCREATE TABLE x (a int);');
      expect(() => loadMigrations(dir)).toThrow(/0002_c\.sql contains transaction control/);
      writeFileSync(join(dir, '0002_c.sql'), 'BEGIN;\nCREATE TABLE x (a int);');
      expect(() => loadMigrations(dir)).toThrow(/0002_c\.sql contains transaction control/);
      // a PL/pgSQL block is not transaction control
      writeFileSync(
        join(dir, '0002_c.sql'),
        "DO $$\nBEGIN\n  RAISE NOTICE 'hi';\nEND;\n$$;\n-- COMMIT in a comment is fine\n",
      );
      expect(loadMigrations(dir).map((m) => m.name)).toEqual(['0001_a.sql', '0002_c.sql']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(backends)('migrations on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  const tempDirs: string[] = [];
  beforeAll(() => backend.setup());
  afterAll(async () => {
    await backend.teardown();
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  function editable(): string {
    const d = copyOfMigrations();
    tempDirs.push(d);
    return d;
  }

  it('applies every file once, in order, recording its checksum; a second run is a no-op', async () => {
    const db = await backend.fresh();
    const seen: string[] = [];
    const first = await migrate(db, { onApplied: (n) => seen.push(n) });
    expect(first.applied).toEqual(SHIPPED);
    expect(seen).toEqual(SHIPPED);
    expect(await recorded(db)).toEqual(
      SHIPPED.map((name) => ({
        name,
        checksum: sha256(readFileSync(join(DEFAULT_MIGRATIONS_DIR, name), 'utf8')),
      })),
    );

    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    expect(await recorded(db)).toHaveLength(SHIPPED.length);
    const [cfg] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM upgrade_config');
    expect(cfg!.n).toBe(1); // the seed ran once

    const status = await migrationStatus(db);
    expect(status).toMatchObject({ pending: [], changed: [], unknown: [] });
    expect(status.applied.map((a) => a.name)).toEqual(SHIPPED);
  });

  it('reports a fresh database as all pending without creating anything', async () => {
    const db = await backend.fresh();
    const status = await migrationStatus(db);
    expect(status).toEqual({ applied: [], pending: SHIPPED, changed: [], unknown: [] });
    const [t] = await db.query<{ t: string | null }>(
      "SELECT to_regclass('schema_migrations')::text AS t",
    );
    expect(t!.t).toBeNull();
  });

  it('applies only the new file after an upgrade of pairshift', async () => {
    const db = await backend.fresh();
    const dir = editable();
    await migrate(db, { dir });
    writeFileSync(join(dir, '0999_extra.sql'), 'CREATE TABLE extra (id int PRIMARY KEY);');
    expect((await migrate(db, { dir })).applied).toEqual(['0999_extra.sql']);
    expect((await migrate(db, { dir })).applied).toEqual([]);
  });

  it('refuses to run when an applied file was edited, naming it, and applies nothing', async () => {
    const db = await backend.fresh();
    const dir = editable();
    await migrate(db, { dir });
    const edited = join(dir, '0002_operation_records.sql');
    writeFileSync(edited, `${readFileSync(edited, 'utf8')}\n-- a harmless-looking edit\n`);
    writeFileSync(join(dir, '0999_extra.sql'), 'CREATE TABLE extra (id int PRIMARY KEY);');

    await expect(migrate(db, { dir })).rejects.toThrow(
      /migration 0002_operation_records\.sql was changed after it was applied/,
    );
    expect((await recorded(db)).map((r) => r.name)).toEqual(SHIPPED);
    const [t] = await db.query<{ t: string | null }>("SELECT to_regclass('extra')::text AS t");
    expect(t!.t).toBeNull();
    expect((await migrationStatus(db, dir)).changed).toEqual(['0002_operation_records.sql']);
  });

  it('refuses a database migrated by a newer pairshift', async () => {
    const db = await backend.fresh();
    const dir = editable();
    writeFileSync(join(dir, '0999_extra.sql'), 'CREATE TABLE extra (id int PRIMARY KEY);');
    await migrate(db, { dir });
    await expect(migrate(db)).rejects.toThrow(
      /has migration 0999_extra\.sql that this pairshift does not know/,
    );
  });

  it('rolls a failing file back completely and records nothing for it', async () => {
    const db = await backend.fresh();
    const dir = editable();
    writeFileSync(
      join(dir, '0999_broken.sql'),
      'CREATE TABLE half_done (id int);\nINSERT INTO no_such_table VALUES (1);',
    );
    await expect(migrate(db, { dir })).rejects.toThrow(
      /migration 0999_broken\.sql failed: .*no_such_table/,
    );
    // the earlier files stay applied; the broken one left no trace
    expect((await recorded(db)).map((r) => r.name)).toEqual(SHIPPED);
    const [t] = await db.query<{ t: string | null }>("SELECT to_regclass('half_done')::text AS t");
    expect(t!.t).toBeNull();
  });

  if (_name === 'postgres') {
    it('lets two migrators race on separate connections: each file recorded once, no error', async () => {
      for (let round = 0; round < 3; round++) {
        const a = await backend.fresh();
        const b = await openPostgres(backend.lastUrl());
        try {
          const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
          // between them they applied every file exactly once
          expect([...ra.applied, ...rb.applied].sort()).toEqual(SHIPPED);
          expect((await recorded(a)).map((r) => r.name)).toEqual(SHIPPED);
          const [cfg] = await a.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM upgrade_config',
          );
          expect(cfg!.n).toBe(1);
        } finally {
          await b.close();
        }
      }
    });
  }
});
