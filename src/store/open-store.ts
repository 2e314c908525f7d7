// Chooses the store: PostgreSQL when a URL is given, otherwise the embedded
// PGlite store in a data folder.
import { join } from 'node:path';
import { openPglite } from './pglite.js';
import { openPostgres } from './postgres.js';
import type { SqlClient } from './sql-client.js';

export interface StoreOptions {
  /** postgres://... ; when absent, $PAIRSHIFT_DATABASE_URL, else embedded. */
  databaseUrl?: string | undefined;
  /** Embedded data folder; default $PAIRSHIFT_DATA_DIR, else .pairshift/data under the cwd. */
  dataDir?: string | undefined;
  /** PostgreSQL only: the password in this file (password-file.ts); default $PAIRSHIFT_DATABASE_PASSWORD_FILE. */
  passwordFile?: string | undefined;
}

export type StoreChoice =
  | { kind: 'postgres'; databaseUrl: string; passwordFile?: string }
  | { kind: 'embedded'; dataDir: string };

/** Pure: which store the options and environment select. */
export function chooseStore(
  opts: StoreOptions,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): StoreChoice {
  if (opts.databaseUrl && opts.dataDir) {
    throw new Error('give either a database URL or a data folder, not both');
  }
  const databaseUrl = opts.databaseUrl || (opts.dataDir ? undefined : env.PAIRSHIFT_DATABASE_URL);
  const passwordFile = opts.passwordFile || env.PAIRSHIFT_DATABASE_PASSWORD_FILE;
  if (databaseUrl)
    return { kind: 'postgres', databaseUrl, ...(passwordFile ? { passwordFile } : {}) };
  if (opts.passwordFile)
    throw new Error('a password file is for a PostgreSQL store: give its URL too');
  return {
    kind: 'embedded',
    dataDir: opts.dataDir || env.PAIRSHIFT_DATA_DIR || join(cwd, '.pairshift', 'data'),
  };
}

export async function openStore(opts: StoreOptions = {}): Promise<SqlClient> {
  const choice = chooseStore(opts);
  return choice.kind === 'postgres'
    ? openPostgres(choice.databaseUrl, { passwordFile: choice.passwordFile })
    : openPglite(choice.dataDir);
}
