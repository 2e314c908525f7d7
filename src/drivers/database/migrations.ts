// A package's schema migrations, applied on the primary (task list 2.6.1).
// Ensure-style: the applied ones are recorded in the app database itself
// (pairshift_schema_migrations: name, checksum, applied_at), so a re-run
// applies nothing; a recorded migration whose text changed is refused (the
// package is not the one that ran). Before anything runs, every migration is
// checked for backward compatibility (compat.ts): the old version keeps
// running against this schema until the master is upgraded.
//
// All pending migrations run in ONE transaction (psql -1 with
// ON_ERROR_STOP), as the app's role (SET LOCAL ROLE) so the objects belong to
// the app, with a lock timeout so a migration stuck behind the running app's
// locks fails instead of queueing every later query behind it.
import { migrationChecksum as checksum } from '../../packages/hash.js';
import { DriverError, whileDoing } from '../errors.js';
import { incompatibilities } from './compat.js';
import { type DbContext, observeDb } from './observe.js';
import { querySql } from './psql.js';
import { SqlSyntaxError } from './sql-split.js';

export const MIGRATIONS_TABLE = 'pairshift_schema_migrations';

export interface Migration {
  /** File name, e.g. 0002_add_email.sql; unique; applied in the given order. */
  readonly name: string;
  readonly sql: string;
}

export interface MigrationsResult {
  readonly outcome: 'unchanged' | 'changed';
  /** Applied by this run (or, in a dry run, that would be). */
  readonly applied: readonly string[];
  /** Already recorded before this run. */
  readonly alreadyApplied: readonly string[];
}

/** Pure: every reason to refuse the set before touching a database. */
export function migrationProblems(migrations: readonly Migration[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const m of migrations) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$/.test(m.name))
      problems.push(`${m.name}: not a NAME.sql file name`);
    if (seen.has(m.name)) problems.push(`${m.name}: listed twice`);
    seen.add(m.name);
    // psql would run a backslash line as a meta-command (\! runs a shell).
    const meta = m.sql.split('\n').findIndex((l) => /^\s*\\/.test(l));
    if (meta >= 0)
      problems.push(
        `${m.name} line ${meta + 1}: psql meta-commands (\\...) are not allowed in migrations`,
      );
    try {
      for (const i of incompatibilities(m.sql))
        problems.push(`${m.name} line ${i.line}: ${i.reason} (${i.statement})`);
    } catch (err) {
      if (err instanceof SqlSyntaxError) problems.push(`${m.name}: ${err.message}`);
      else throw err;
    }
  }
  return problems;
}

/** Pure: the script that applies `pending` and records each, for psql -1. */
export function migrationScript(appRole: string, pending: readonly Migration[]): string {
  const ident = `"${appRole.replace(/"/g, '""')}"`;
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const parts = [
    "SET LOCAL lock_timeout = '10s';",
    `SET LOCAL ROLE ${ident};`,
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`,
    // Two operators racing: the second waits here, then fails on the primary key.
    `LOCK TABLE ${MIGRATIONS_TABLE} IN EXCLUSIVE MODE;`,
  ];
  for (const m of pending) {
    parts.push(`-- migration ${m.name}`, m.sql.trimEnd(), ';');
    parts.push(
      `INSERT INTO ${MIGRATIONS_TABLE} (name, checksum) VALUES (${lit(m.name)}, ${lit(checksum(m.sql))});`,
    );
  }
  return `${parts.join('\n')}\n`;
}

async function appliedMigrations(ctx: DbContext, node: string): Promise<Map<string, string>> {
  const [exists] = await querySql(
    ctx.shell,
    ctx.pair,
    ctx.flavour,
    node,
    `SELECT to_regclass('${MIGRATIONS_TABLE}') IS NOT NULL`,
  );
  if (exists?.[0] !== 't') return new Map();
  const rows = await querySql(
    ctx.shell,
    ctx.pair,
    ctx.flavour,
    node,
    `SELECT name, checksum FROM ${MIGRATIONS_TABLE} ORDER BY name`,
  );
  return new Map(rows.map((r) => [r[0]!, r[1]!]));
}

/** Applies what is not yet applied, in one transaction, on `primary`. */
export async function ensureMigrations(
  ctx: DbContext,
  primary: string,
  migrations: readonly Migration[],
  opts: { dryRun?: boolean; timeoutMs?: number } = {},
): Promise<MigrationsResult> {
  return whileDoing(
    `applying schema migrations on ${primary}`,
    async () => {
      // Refusal comes first: nothing has run when it is refused.
      const problems = migrationProblems(migrations);
      if (problems.length) {
        throw new DriverError(`refused: ${problems.join('; ')}`, {
          kind: 'terminal',
          node: primary,
        });
      }
      const state = await observeDb(ctx, primary);
      if (!state.running || state.inRecovery) {
        throw new DriverError('is not a running primary: migrations run on the primary only', {
          kind: 'terminal',
          node: primary,
        });
      }
      const before = await appliedMigrations(ctx, primary);
      const changed = migrations.filter(
        (m) => before.has(m.name) && before.get(m.name) !== checksum(m.sql),
      );
      if (changed.length) {
        throw new DriverError(
          `refused: ${changed.map((m) => m.name).join(', ')} already ran with different content (checksum mismatch); a migration must never change once applied`,
          { kind: 'terminal', node: primary },
        );
      }
      const pending = migrations.filter((m) => !before.has(m.name));
      const alreadyApplied = migrations.filter((m) => before.has(m.name)).map((m) => m.name);
      if (pending.length === 0) return { outcome: 'unchanged', applied: [], alreadyApplied };
      if (opts.dryRun)
        return { outcome: 'changed', applied: pending.map((m) => m.name), alreadyApplied };
      ctx.log(`${primary}: applying ${pending.map((m) => m.name).join(', ')} in one transaction`);
      await querySql(ctx.shell, ctx.pair, ctx.flavour, primary, pending[0]!.sql, {
        script: true,
        stdin: migrationScript(ctx.pair.spec.database.user, pending),
        timeoutMs: opts.timeoutMs ?? 300_000,
      });
      // Observe again: every one is recorded with its checksum.
      const after = await appliedMigrations(ctx, primary);
      const missing = migrations.filter((m) => after.get(m.name) !== checksum(m.sql));
      if (missing.length) {
        throw new DriverError(
          `after applying, ${missing.map((m) => m.name).join(', ')} is not recorded`,
          { kind: 'conflict', node: primary },
        );
      }
      return { outcome: 'changed', applied: pending.map((m) => m.name), alreadyApplied };
    },
    { kind: 'transient', node: primary },
  );
}
