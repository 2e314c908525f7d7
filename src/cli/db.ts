// `pairshift db migrate` and `pairshift db status`: bring the operator's
// store (PostgreSQL with --database-url, embedded otherwise) up to the
// migrations shipped with this pairshift, or show where it stands.
import type { Command } from 'commander';
import { migrate, migrationStatus } from '../store/migrate.js';
import { openStore } from '../store/open-store.js';
import type { SqlClient } from '../store/sql-client.js';

interface DbOptions {
  databaseUrl?: string;
  dataDir?: string;
}

/** Adds "while <doing>" to a failure, keeping the cause chain. */
function failWhile(doing: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  throw new Error(`${message} while ${doing}`, { cause: err });
}

async function withStore<T>(
  opts: DbOptions,
  doing: string,
  fn: (db: SqlClient) => Promise<T>,
): Promise<T> {
  let db: SqlClient;
  try {
    db = await openStore({ databaseUrl: opts.databaseUrl, dataDir: opts.dataDir });
  } catch (err) {
    failWhile(doing, err);
  }
  try {
    return await fn(db);
  } catch (err) {
    failWhile(doing, err);
  } finally {
    await db.close();
  }
}

function storeOptions(cmd: Command): Command {
  return cmd
    .option(
      '--database-url <url>',
      'PostgreSQL URL (default $PAIRSHIFT_DATABASE_URL, else embedded)',
    )
    .option(
      '--data-dir <dir>',
      'embedded store folder (default $PAIRSHIFT_DATA_DIR or ./.pairshift/data)',
    );
}

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description("the operator's own database (task list 1.1, 1.2)");

  storeOptions(db.command('migrate'))
    .description('apply the SQL migrations that are not applied yet')
    .action(async (opts: DbOptions) => {
      await withStore(opts, 'migrating', async (store) => {
        const out = (line: string) => process.stdout.write(`${line}\n`);
        const result = await migrate(store, { onApplied: (name) => out(`applied ${name}`) });
        if (result.applied.length === 0) out(`up to date (${store.description})`);
      });
    });

  storeOptions(db.command('status'))
    .description('show applied and pending migrations')
    .action(async (opts: DbOptions) => {
      await withStore(opts, 'reading migration status', async (store) => {
        const s = await migrationStatus(store);
        const lines = [`store: ${store.description}`];
        for (const a of s.applied) {
          const mark = s.changed.includes(a.name)
            ? 'CHANGED'
            : s.unknown.includes(a.name)
              ? 'UNKNOWN'
              : 'applied';
          lines.push(`${mark.padEnd(8)} ${a.name}  ${a.appliedAt.toISOString()}`);
        }
        for (const name of s.pending) lines.push(`${'pending'.padEnd(8)} ${name}`);
        lines.push(
          s.changed.length > 0 || s.unknown.length > 0
            ? 'the database does not match these migrations (CHANGED: file edited after it was applied; UNKNOWN: applied by another pairshift)'
            : s.pending.length > 0
              ? `${s.pending.length} pending: run pairshift db migrate`
              : 'up to date',
        );
        process.stdout.write(`${lines.join('\n')}\n`);
        if (s.changed.length > 0 || s.unknown.length > 0) process.exitCode = 1;
      });
    });
}
