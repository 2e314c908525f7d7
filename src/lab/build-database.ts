import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildContext, holder } from './build-context.js';
import { NODE_PATHS } from './layout.js';
import { inNode, shInNode } from './namespaces.js';
import { writeFile } from './node-files.js';
import type { NodeId } from './plan.js';
import { DB, PG_PORT, pgCtlCommand, pgHba, postgresqlConf } from './render.js';
import { run, waitFor } from './run.js';

export async function pgBin(): Promise<string> {
  return (await run('pg_config', ['--bindir'])).stdout.trim();
}

export function psqlAs(ctx: BuildContext, id: NodeId, sql: string, db = 'postgres') {
  return inNode(
    holder(ctx, id),
    [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      // no statement text in error messages (some carry passwords)
      '-v',
      'VERBOSITY=terse',
      '-At',
      '-d',
      db,
      '-f',
      '-',
    ],
    { input: sql },
  );
}

export async function startPrimary(ctx: BuildContext): Promise<void> {
  const bin = await pgBin();
  const dataDir = ctx.dirs.node('a').hostPath(NODE_PATHS.dataDir);
  await run('runuser', [
    '-u',
    'postgres',
    '--',
    `${bin}/initdb`,
    '-D',
    dataDir,
    '-U',
    DB.superuser,
    '--auth-local=peer',
    '--auth-host=scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const conf = readFileSync(join(dataDir, 'postgresql.conf'), 'utf8');
  writeFile(join(dataDir, 'postgresql.conf'), conf + postgresqlConf(), {
    mode: 0o600,
    owner: 'postgres',
  });
  writeFile(join(dataDir, 'pg_hba.conf'), pgHba(ctx.plan), { mode: 0o600, owner: 'postgres' });
  await shInNode(holder(ctx, 'a'), pgCtlCommand(bin, 'start'));
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const s = ctx.secrets;
  await psqlAs(
    ctx,
    'a',
    // the server must not log these statements either, even if one fails
    `SET log_min_error_statement = panic;
SET log_statement = none;
ALTER ROLE ${DB.superuser} PASSWORD ${q(s.postgres)};
CREATE ROLE ${DB.replicationUser} WITH REPLICATION LOGIN PASSWORD ${q(s.replicator)};
CREATE ROLE ${DB.user} WITH LOGIN PASSWORD ${q(s.app)};
CREATE DATABASE ${DB.name} OWNER ${DB.user};
`,
  );
  // the table the app writes (the app also creates it if missing)
  await psqlAs(
    ctx,
    'a',
    `SET ROLE ${DB.user};
CREATE TABLE IF NOT EXISTS app_heartbeat (instance text PRIMARY KEY, version text NOT NULL, beat_at timestamptz NOT NULL);
`,
    DB.name,
  );
}

export async function startStandby(ctx: BuildContext): Promise<void> {
  const bin = await pgBin();
  const { plan } = ctx;
  const pgpassPath = `${NODE_PATHS.dbRoot}/pgpass`;
  await inNode(holder(ctx, 'b'), [
    'runuser',
    '-u',
    'postgres',
    '--',
    'env',
    `PGPASSFILE=${pgpassPath}`,
    `${bin}/pg_basebackup`,
    '-h',
    plan.nodeAddress.a,
    '-p',
    String(PG_PORT),
    '-U',
    DB.replicationUser,
    '-D',
    NODE_PATHS.dataDir,
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  const dataDir = ctx.dirs.node('b').hostPath(NODE_PATHS.dataDir);
  // primary_conninfo names the pgpass file, never the password itself
  const conninfo = `host=${plan.nodeAddress.a} port=${PG_PORT} user=${DB.replicationUser} passfile=${pgpassPath} application_name=${plan.netns.b}`;
  const auto = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8');
  writeFile(join(dataDir, 'postgresql.auto.conf'), `${auto}primary_conninfo = '${conninfo}'\n`, {
    mode: 0o600,
    owner: 'postgres',
  });
  writeFile(join(dataDir, 'standby.signal'), '', { mode: 0o600, owner: 'postgres' });
  await shInNode(holder(ctx, 'b'), pgCtlCommand(bin, 'start'));
  await waitFor(
    'b to stream from a',
    async () => {
      const r = await psqlAs(
        ctx,
        'a',
        `SELECT state FROM pg_stat_replication WHERE application_name = ${`'${plan.netns.b}'`};`,
      );
      return r.stdout.trim() === 'streaming' ? true : undefined;
    },
    30_000,
  );
}
