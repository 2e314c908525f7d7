// The database engines' tools. PostgreSQL and GaussDB/openGauss speak the
// same protocol and take the same options for what the backup needs; only
// the programs' names differ (gs_dump/gs_restore/gsql). All live in
// spec.database.binDir.
export type DatabaseEngine = 'postgresql' | 'gaussdb' | 'opengauss';

export interface DatabaseTools {
  readonly dump: string;
  readonly restore: string;
  readonly client: string;
}

export const DATABASE_TOOLS: Readonly<Record<DatabaseEngine, DatabaseTools>> = {
  postgresql: { dump: 'pg_dump', restore: 'pg_restore', client: 'psql' },
  gaussdb: { dump: 'gs_dump', restore: 'gs_restore', client: 'gsql' },
  opengauss: { dump: 'gs_dump', restore: 'gs_restore', client: 'gsql' },
};

export function databaseTools(engine: DatabaseEngine, binDir: string): DatabaseTools {
  const t = DATABASE_TOOLS[engine];
  const dir = binDir.replace(/\/+$/, '');
  return { dump: `${dir}/${t.dump}`, restore: `${dir}/${t.restore}`, client: `${dir}/${t.client}` };
}
