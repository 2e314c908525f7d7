// Applies migrations/NNNN_name.sql in order, each exactly once, each in its
// own transaction, and records name + SHA-256 of the file in
// schema_migrations.
//
// Invariants:
// - A file already applied must not change: a different checksum stops the
//   run before anything is applied, naming the file.
// - Two migrators starting together (two operators, two replicas) are safe:
//   every transaction first takes the same advisory transaction lock and then
//   re-reads schema_migrations, so a file applied by the other one meanwhile
//   is skipped, not applied twice.
// - The migrations folder is found next to the package (import.meta.url),
//   never through the current directory.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlClient, SqlExecutor } from './sql-client.js';

/** src/store/ and dist/store/ are both two levels below the package root. */
export const DEFAULT_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/** pg_advisory_xact_lock key: "pairshif" in ASCII, fixed forever. */
export const MIGRATION_LOCK_KEY = '8097869545272273254';

const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/;

// Statements that start or end a transaction. PL/pgSQL's block "BEGIN" (no
// semicolon) and "END;" (DO blocks, trigger functions) do not match; a bare
// "END;" meaning COMMIT is not caught.
const TRANSACTION_CONTROL =
  /^\s*(BEGIN\s*;|BEGIN\s+(TRANSACTION|WORK|ISOLATION)\b|START\s+TRANSACTION\b|COMMIT\b|ROLLBACK\b|END\s+(TRANSACTION|WORK)\b)/im;

export interface MigrationFile {
  name: string;
  checksum: string;
  sql: string;
}

export interface AppliedMigration {
  name: string;
  checksum: string;
  appliedAt: Date;
}

export interface MigrationStatus {
  applied: AppliedMigration[];
  pending: string[];
  /** Applied files whose content changed since. */
  changed: string[];
  /** Recorded in the database but absent from this pairshift's folder. */
  unknown: string[];
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Reads and checks the folder; pure apart from reading files. */
export function loadMigrations(dir: string = DEFAULT_MIGRATIONS_DIR): MigrationFile[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sql'));
  } catch (err) {
    throw new Error(`cannot read the migrations folder ${dir}`, { cause: err });
  }
  names.sort();
  const seen = new Map<string, string>();
  const files: MigrationFile[] = [];
  for (const name of names) {
    const m = FILE_PATTERN.exec(name);
    if (!m) {
      throw new Error(`migration file ${name} in ${dir} is not named NNNN_lowercase_words.sql`);
    }
    const number = m[1]!;
    const other = seen.get(number);
    if (other) throw new Error(`migration files ${other} and ${name} share the number ${number}`);
    seen.set(number, name);
    const sql = readFileSync(join(dir, name), 'utf8');
    // The runner owns the transaction; a COMMIT inside a file would end it
    // early and break "applied and recorded together".
    if (TRANSACTION_CONTROL.test(sql)) {
      throw new Error(`migration ${name} contains transaction control (BEGIN/COMMIT); remove it`);
    }
    files.push({ name, checksum: sha256(sql), sql });
  }
  return files;
}

const CREATE_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    name          text PRIMARY KEY,
    checksum      text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    applied_at    timestamptz NOT NULL DEFAULT now(),
    execution_ms  integer NOT NULL CHECK (execution_ms >= 0)
  )`;

async function lockAndEnsureTable(tx: SqlExecutor): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  await tx.query(CREATE_TABLE);
}

async function readApplied(db: SqlExecutor): Promise<AppliedMigration[]> {
  const rows = await db.query<{ name: string; checksum: string; applied_at: Date }>(
    'SELECT name, checksum, applied_at FROM schema_migrations ORDER BY name',
  );
  return rows.map((r) => ({
    name: r.name,
    checksum: r.checksum,
    appliedAt: new Date(r.applied_at),
  }));
}

/** Pure: compare the folder with what the database recorded. */
export function compareMigrations(
  files: readonly MigrationFile[],
  applied: readonly AppliedMigration[],
): MigrationStatus {
  const byName = new Map(applied.map((a) => [a.name, a]));
  const fileNames = new Set(files.map((f) => f.name));
  return {
    applied: [...applied],
    pending: files.filter((f) => !byName.has(f.name)).map((f) => f.name),
    changed: files
      .filter((f) => byName.has(f.name) && byName.get(f.name)!.checksum !== f.checksum)
      .map((f) => f.name),
    unknown: applied.filter((a) => !fileNames.has(a.name)).map((a) => a.name),
  };
}

function refuseChanged(changed: readonly string[]): void {
  if (changed.length > 0) {
    throw new Error(
      `migration ${changed.join(', ')} was changed after it was applied (checksum differs); ` +
        'restore the original file and put the change in a new migration',
    );
  }
}

/** What the database has, without changing anything. */
export async function migrationStatus(
  db: SqlClient,
  dir: string = DEFAULT_MIGRATIONS_DIR,
): Promise<MigrationStatus> {
  const files = loadMigrations(dir);
  const [exists] = await db.query<{ t: string | null }>(
    "SELECT to_regclass('schema_migrations')::text AS t",
  );
  const applied = exists?.t ? await readApplied(db) : [];
  return compareMigrations(files, applied);
}

export interface MigrateResult {
  /** Names applied by this run, in order; empty means it was up to date. */
  applied: string[];
}

export async function migrate(
  db: SqlClient,
  opts: { dir?: string; onApplied?: (name: string) => void } = {},
): Promise<MigrateResult> {
  const files = loadMigrations(opts.dir);
  // Check every recorded checksum before touching anything.
  const before = await db.transaction(async (tx) => {
    await lockAndEnsureTable(tx);
    return compareMigrations(files, await readApplied(tx));
  });
  refuseChanged(before.changed);
  if (before.unknown.length > 0) {
    throw new Error(
      `the database has migration ${before.unknown.join(', ')} that this pairshift does not know; ` +
        'it was migrated by a newer pairshift, so use that one',
    );
  }

  const applied: string[] = [];
  for (const file of files) {
    if (!before.pending.includes(file.name)) continue;
    const didApply = await db.transaction(async (tx) => {
      await lockAndEnsureTable(tx);
      // Another migrator may have applied it while we waited for the lock.
      const [row] = await tx.query<{ checksum: string }>(
        'SELECT checksum FROM schema_migrations WHERE name = $1',
        [file.name],
      );
      if (row) {
        refuseChanged(row.checksum === file.checksum ? [] : [file.name]);
        return false;
      }
      const started = performance.now();
      try {
        await tx.exec(file.sql);
      } catch (err) {
        throw new Error(`migration ${file.name} failed: ${(err as Error).message}`, { cause: err });
      }
      await tx.query(
        'INSERT INTO schema_migrations (name, checksum, execution_ms) VALUES ($1, $2, $3)',
        [file.name, file.checksum, Math.round(performance.now() - started)],
      );
      return true;
    });
    if (didApply) {
      applied.push(file.name);
      opts.onApplied?.(file.name);
    }
  }
  return { applied };
}
