// The lab releases' schema migrations are backward compatible: applied in
// order (twice, they are idempotent) while the 1.0.0 jar runs against the
// database, its /health stays 200 throughout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import pg from 'pg';
import { buildAppRelease } from '../../src/lab/app/build.js';
import { javaCommand, renderAppProperties } from '../../src/lab/app/commands.js';
import { LAB_BROKEN_VERSION, labMigrationsFor } from '../../src/lab/app/releases.js';
import { httpGet, type Service, startService } from '../../src/lab/app/service-process.js';
import { freePort, type PgCluster, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(120_000);

let cluster: PgCluster;
let dir: string;
let app: Service | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k-app-rel-'));
  cluster = await startPgCluster();
});
afterAll(async () => {
  await app?.stop();
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('migrations up to the broken release keep the 1.0.0 service healthy, and re-run cleanly', async () => {
  writeFileSync(join(dir, 'root.key'), 'k', { mode: 0o600 });
  writeFileSync(
    join(dir, 'app.properties'),
    renderAppProperties({
      host: '127.0.0.1',
      port: cluster.port,
      name: 'postgres',
      user: 'postgres',
    }),
  );
  const v1 = await buildAppRelease({ version: '1.0.0', outDir: join(dir, 'v1') });
  const port = await freePort();
  app = await startService(
    javaCommand(v1.jarPath, { host: '127.0.0.1', port, configDir: dir }),
    port,
  );
  expect((await httpGet(port, '/health')).status).toBe(200);

  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    for (let round = 0; round < 2; round++) {
      for (const m of labMigrationsFor(LAB_BROKEN_VERSION)) {
        await client.query(m.sql);
        const h = await httpGet(port, '/health');
        expect([m.name, h.status]).toEqual([m.name, 200]);
      }
    }
    const cols = await client.query(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'app_heartbeat' ORDER BY 1",
    );
    expect(cols.rows.map((r) => r.column_name)).toEqual(['beat_at', 'host', 'instance', 'version']);
    const idx = await client.query(
      "SELECT indexname FROM pg_indexes WHERE tablename = 'app_events' ORDER BY 1",
    );
    expect(idx.rows.map((r) => r.indexname)).toEqual(['app_events_at_idx', 'app_events_pkey']);
  } finally {
    await client.end();
  }
});
