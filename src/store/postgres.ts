// SqlClient on a real PostgreSQL server through a pg Pool. Connection
// failures become one sentence naming host:port and the reason, never the
// password.
import pg from 'pg';
import { PasswordFileError, readPasswordFile } from './password-file.js';
import { redactDatabaseUrl } from './redact.js';
import type { SqlClient, SqlExecutor } from './sql-client.js';

const CONNECT_TIMEOUT_MS = 10_000;

export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
}

/** Parses a postgres:// URL; the error message shows it redacted. */
export function parseDatabaseUrl(raw: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(
      `invalid database URL ${redactDatabaseUrl(raw)} (expected postgres://user@host:port/db)`,
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error(
      `invalid database URL ${redactDatabaseUrl(raw)} (scheme must be postgres:// or postgresql://)`,
    );
  }
  const host =
    url.hostname.replace(/^\[(.*)\]$/, '$1') || url.searchParams.get('host') || 'localhost';
  return {
    host,
    port: url.port ? Number(url.port) : 5432,
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || 'postgres',
  };
}

export function describeTarget(t: PostgresTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${host}:${t.port}`;
}

/** Why a connection failed, in a few words, from a pg / socket error. */
export function connectFailureReason(err: unknown): string {
  const first = err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err;
  const e = first as { code?: string; message?: string } | undefined;
  switch (e?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case 'ECONNRESET':
      return 'connection reset';
    case '28P01':
      return 'password authentication failed';
    case '28000':
      return 'not authorised by the server (pg_hba.conf or unknown role)';
    case '3D000':
      return 'database does not exist';
    case '57P03':
      return 'the server is starting up or shutting down';
  }
  const msg = e?.message ?? String(err);
  if (/timeout/i.test(msg)) return 'connection timed out';
  return msg;
}

class ConnectError extends Error {
  override name = 'ConnectError';
}

/**
 * A pg Client whose password is read from a file when it connects. pg takes
 * a function as the password, but a connection string overrides it with the
 * URL's own password even when the URL has none (''), hence the subclass.
 */
function clientWithPasswordFile(path: string): typeof pg.Client {
  return class extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      (this as unknown as { password: () => Promise<string> }).password = () =>
        readPasswordFile(path);
    }
  };
}

export interface PostgresOptions {
  /** The password, read from this file for every new connection (password-file.ts); the URL then has none. */
  readonly passwordFile?: string | undefined;
}

export async function openPostgres(
  databaseUrl: string,
  opts: PostgresOptions = {},
): Promise<SqlClient> {
  const target = parseDatabaseUrl(databaseUrl);
  const where = describeTarget(target);
  if (opts.passwordFile && new URL(databaseUrl).password) {
    throw new Error(
      `the store's URL for ${where} has a password and a password file is set too: give one`,
    );
  }
  const passwordFile = opts.passwordFile;
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    max: 4,
    ...(passwordFile ? { Client: clientWithPasswordFile(passwordFile) } : {}),
  });
  // An idle client losing its server must not crash the process; the next
  // query reports the failure instead.
  pool.on('error', () => {});

  // While a client is checked out the pool stops listening for its errors
  // (pg-pool removes its idle listener), and pg emits 'error' on a client
  // whose server goes away even mid-query: with no listener that event would
  // end the process. The query itself rejects with the error, and the pool
  // drops a client that is no longer queryable when it is released.
  const guarded = new WeakSet<pg.PoolClient>();
  const connect = async (): Promise<pg.PoolClient> => {
    try {
      const client = await pool.connect();
      if (!guarded.has(client)) {
        client.on('error', () => {});
        guarded.add(client);
      }
      return client;
    } catch (err) {
      if (err instanceof PasswordFileError) throw err;
      // The reason is complete on its own; pg's raw message would repeat it.
      throw new ConnectError(
        `cannot connect to PostgreSQL at ${where} (${connectFailureReason(err)})`,
      );
    }
  };

  const executor = (client: pg.PoolClient): SqlExecutor => ({
    async query<Row extends object>(text: string, params: readonly unknown[] = []) {
      const res = await client.query(text, params as unknown[]);
      return res.rows as Row[];
    },
    async exec(script: string) {
      // No parameters: pg uses the simple protocol, which accepts several
      // statements in one string.
      await client.query(script);
    },
  });

  // Connect once now so a wrong URL fails here, in one clear sentence.
  (await connect()).release();

  return {
    description: `PostgreSQL at ${where}/${target.database}`,
    async query<Row extends object>(text: string, params: readonly unknown[] = []) {
      const client = await connect();
      try {
        return await executor(client).query<Row>(text, params);
      } finally {
        client.release();
      }
    },
    async exec(script: string) {
      const client = await connect();
      try {
        await executor(client).exec(script);
      } finally {
        client.release();
      }
    },
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is unusable; drop it from the pool.
          broken = rollbackErr as Error;
        }
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async close() {
      await pool.end();
    },
  };
}
