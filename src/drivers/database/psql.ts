// SQL on a node, the same way in the lab and in production: the node's own
// SQL client over SSH, as the database's OS user through the local socket
// (peer authentication). The operator needs no database network access and
// no database password. Output is unaligned, tuples only, fields separated by
// the ASCII unit separator and NULL printed as \N, so values parse without
// guessing; building the argv and parsing the output are pure.
import type { HAPair } from '../../inventory/hapair.js';
import { DriverError } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';
import type { DatabaseFlavour } from './flavour.js';

export const FIELD_SEP = '\x1f';
export const NULL_TEXT = '\\N';

type DbSpec = HAPair['spec']['database'];

/** Prefix that runs a command as the database's OS user. */
export function asOsUser(pair: HAPair): string[] {
  const os = pair.spec.database.osUser;
  if (pair.spec.ssh.user === os) return [];
  // root (the lab, many pairs) switches user directly; others need sudo rights.
  return pair.spec.ssh.user === 'root'
    ? ['runuser', '-u', os, '--']
    : ['sudo', '-n', '-u', os, '--'];
}

export interface PsqlOptions {
  /** Database to connect to (default: the app database). */
  readonly database?: string;
  /** Read SQL from stdin in one transaction (-1) instead of -c. */
  readonly script?: boolean;
}

export function psqlArgv(
  pair: HAPair,
  flavour: DatabaseFlavour,
  sql: string | null,
  opts: PsqlOptions = {},
): string[] {
  const db: DbSpec = pair.spec.database;
  const argv = [
    ...asOsUser(pair),
    `${db.binDir}/${flavour.sqlClient}`,
    '-X',
    '-A',
    '-t',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-P',
    `null=${NULL_TEXT}`,
    '-F',
    FIELD_SEP,
    '-p',
    String(db.port),
    '-U',
    db.superuser,
    '-d',
    opts.database ?? db.name,
  ];
  if (db.socketDir) argv.push('-h', db.socketDir);
  if (opts.script) argv.push('-1', '-f', '-');
  else if (sql !== null) argv.push('-c', sql);
  return argv;
}

export type Row = readonly (string | null)[];

/** Rows of psql -A -t output with FIELD_SEP between fields and \N for NULL. */
export function parseRows(stdout: string): Row[] {
  // No rows print nothing; one row holding '' prints an empty line.
  if (stdout === '') return [];
  const text = stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout;
  return text
    .split('\n')
    .map((line) => line.split(FIELD_SEP).map((f) => (f === NULL_TEXT ? null : f)));
}

export function parseBool(v: string | null): boolean | null {
  if (v === null) return null;
  if (v === 't' || v === 'true' || v === 'on') return true;
  if (v === 'f' || v === 'false' || v === 'off') return false;
  throw new Error(`not a boolean: "${v}"`);
}

/** Runs SQL on a node; a failure names the SQL's first line. */
export async function querySql(
  shell: NodeShell,
  pair: HAPair,
  flavour: DatabaseFlavour,
  node: string,
  sql: string,
  opts: PsqlOptions & { timeoutMs?: number; stdin?: string } = {},
): Promise<Row[]> {
  try {
    const r = await shell.exec(node, psqlArgv(pair, flavour, opts.script ? null : sql, opts), {
      timeoutMs: opts.timeoutMs,
      stdin: opts.stdin,
    });
    return parseRows(r.stdout);
  } catch (err) {
    if (err instanceof DriverError) throw err.within(`running SQL "${firstLine(sql)}"`);
    throw err;
  }
}

function firstLine(sql: string): string {
  const l = sql.trim().split('\n')[0] ?? '';
  return l.length > 80 ? `${l.slice(0, 80)}…` : l;
}
