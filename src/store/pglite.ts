// SqlClient on the embedded store: PGlite (PostgreSQL compiled to WASM) in a
// data folder, guarded by a lock file so one process at a time opens it.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { acquireDataDirLock } from './data-dir-lock.js';
import type { SqlClient, SqlExecutor } from './sql-client.js';

function executor(db: PGlite | Transaction): SqlExecutor {
  return {
    async query<Row extends object>(text: string, params: readonly unknown[] = []) {
      const res = await db.query<Row>(text, params as unknown[]);
      return res.rows;
    },
    async exec(script: string) {
      await db.exec(script);
    },
  };
}

export async function openPglite(dataDir: string): Promise<SqlClient> {
  const dir = resolve(dataDir);
  // 0700: the store holds upgrade journals of the operator's machines.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = acquireDataDirLock(dir);
  let db: PGlite;
  try {
    db = await PGlite.create(dir);
  } catch (err) {
    lock.release();
    throw new Error(`cannot open the embedded store at ${dir}`, { cause: err });
  }
  const run = executor(db);
  return {
    description: `embedded store at ${dir}`,
    query: run.query,
    exec: run.exec,
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(executor(tx)));
    },
    async close() {
      try {
        await db.close();
      } finally {
        lock.release();
      }
    },
  };
}
