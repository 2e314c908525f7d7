// The database check (task list 2.2.1, 3.1.2): connect with the node's own
// psql, run one query, and report whether this is the primary or a standby
// and where its WAL is. psql rather than a driver: the agent must run with
// Node's standard library only, and psql is on every database node (for
// GaussDB/openGauss, gsql accepts the same options).
import type { DatabaseConfig } from './config.js';
import { firstLine, runProgram } from './process.js';

export interface DatabaseFacts {
  readonly role: 'primary' | 'standby';
  readonly serverVersion: string;
  /** pg_current_wal_lsn() on a primary */
  readonly currentLsn: string | null;
  /** pg_last_wal_receive_lsn() / pg_last_wal_replay_lsn() on a standby */
  readonly receiveLsn: string | null;
  readonly replayLsn: string | null;
}

export const DATABASE_QUERY = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END,
  COALESCE(pg_last_wal_receive_lsn()::text, ''),
  COALESCE(pg_last_wal_replay_lsn()::text, ''),
  current_setting('server_version')`;

/** Parses psql's unaligned, tuples-only output of DATABASE_QUERY. */
export function parseDatabaseRow(stdout: string): DatabaseFacts {
  const line = stdout.trim().split('\n')[0] ?? '';
  const f = line.split('|');
  if (f.length !== 5 || (f[0] !== 't' && f[0] !== 'f')) {
    throw new Error(`unexpected answer from psql: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const orNull = (s: string | undefined) => (s ? s : null);
  return {
    role: f[0] === 't' ? 'standby' : 'primary',
    currentLsn: orNull(f[1]),
    receiveLsn: orNull(f[2]),
    replayLsn: orNull(f[3]),
    serverVersion: f[4] ?? '',
  };
}

export function psqlArgs(db: DatabaseConfig): string[] {
  return [
    '-X', // no ~/.psqlrc
    '-w', // never prompt for a password
    '-A',
    '-t',
    '-q',
    '-F',
    '|',
    '-v',
    'ON_ERROR_STOP=1',
    '-h',
    db.host,
    '-p',
    String(db.port),
    '-U',
    db.user,
    '-d',
    db.dbname,
    '-c',
    DATABASE_QUERY,
  ];
}

export async function queryDatabase(
  db: DatabaseConfig,
  signal: AbortSignal,
): Promise<DatabaseFacts> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    PGCONNECT_TIMEOUT: '2',
    PGAPPNAME: 'pairshift-agent',
    ...(db.passFile ? { PGPASSFILE: db.passFile } : {}),
  };
  const r = await runProgram(db.psql, psqlArgs(db), { signal, env, user: db.osUser });
  if (r.code !== 0) {
    throw new Error(`psql exited ${r.code}: ${firstLine(r.stderr) || 'no message'}`);
  }
  return parseDatabaseRow(r.stdout);
}
