// The two stores every store test runs against: a real PostgreSQL 15 server
// (a throwaway cluster per test file) and embedded PGlite (a temp folder per
// database). fresh() hands out an empty database each time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { openPostgres } from '../../src/store/postgres.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { createUpgradeTask } from '../../src/store/upgrades.js';
import { type PgCluster, startPgCluster } from '../support/pg-cluster.js';

export interface TestBackend {
  readonly name: 'postgres' | 'pglite';
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new, empty database; closed by teardown(). */
  fresh(): Promise<SqlClient>;
  /** For postgres: the URL of the last fresh() database (for second clients). */
  lastUrl(): string;
}

function postgresBackend(): TestBackend {
  let cluster: PgCluster | undefined;
  let admin: SqlClient | undefined;
  let counter = 0;
  let url = '';
  const opened: SqlClient[] = [];
  return {
    name: 'postgres',
    async setup() {
      cluster = await startPgCluster();
      admin = await openPostgres(cluster.url);
    },
    async teardown() {
      for (const c of opened.splice(0)) await c.close().catch(() => {});
      await admin?.close().catch(() => {});
      await cluster?.stop();
    },
    async fresh() {
      const name = `t${++counter}`;
      await admin!.exec(`CREATE DATABASE ${name}`);
      url = `postgres://postgres@127.0.0.1:${cluster!.port}/${name}`;
      const db = await openPostgres(url);
      opened.push(db);
      return db;
    },
    lastUrl: () => url,
  };
}

function pgliteBackend(): TestBackend {
  const dirs: string[] = [];
  const opened: SqlClient[] = [];
  return {
    name: 'pglite',
    async setup() {},
    async teardown() {
      for (const c of opened.splice(0)) await c.close().catch(() => {});
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'pairshift-pglite-'));
      dirs.push(dir);
      const db = await openPglite(join(dir, 'data'));
      opened.push(db);
      return db;
    },
    lastUrl: () => {
      throw new Error('pglite has no URL');
    },
  };
}

/** For describe.each: one factory per backend, so each describe owns its own. */
export const backends: [string, () => TestBackend][] = [
  ['postgres', postgresBackend],
  ['pglite', pgliteBackend],
];

/** Starts the backend and hands out a fresh database with every migration applied. */
export async function migratedStore(backend: TestBackend): Promise<SqlClient> {
  await backend.setup();
  const db = await backend.fresh();
  await migrate(db);
  return db;
}

/** An IDLE task of pair p, to 2.0.0, for tests that need a row to write against. */
export async function createTestTask(db: SqlClient, upgradeId: string): Promise<void> {
  await createUpgradeTask(db, {
    upgradeId,
    pairName: 'p',
    targetVersion: '2.0.0',
    requestedBy: 't',
  });
}

/** Resolves to the error a statement failed with; fails the test if it succeeded. */
export async function failure(
  p: Promise<unknown>,
): Promise<{ code?: string; constraint?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; constraint?: string; message: string };
  }
  throw new Error('expected the statement to be rejected, but it succeeded');
}
