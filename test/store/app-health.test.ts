// The lab's Java service against a real PostgreSQL: /health is 200 only when
// the database takes a write (the heartbeat row is really there), 503 when it
// is read-only or gone; a broken build is 503 whatever the database does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import pg from 'pg';
import { buildAppRelease } from '../../src/lab/app/build.js';
import { javaCommand, renderAppProperties } from '../../src/lab/app/commands.js';
import { httpGet, type Service, startService } from '../../src/lab/app/service-process.js';
import { freePort, type PgCluster, startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(120_000);

let cluster: PgCluster | undefined;
let dir: string;
const services: Service[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k-app-health-'));
  writeFileSync(join(dir, 'root.key'), 'k-secret-root-key', { mode: 0o600 });
  cluster = await startPgCluster();
  writeFileSync(
    join(dir, 'app.properties'),
    renderAppProperties({
      host: '127.0.0.1',
      port: cluster.port,
      name: 'postgres',
      user: 'postgres',
      nodeName: 'k-node-a',
    }),
  );
});

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.stop()));
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startApp(broken = false, nodeName?: string): Promise<number> {
  const r = await buildAppRelease({
    version: broken ? '9.0.0' : '1.0.0',
    outDir: join(dir, 'rel'),
    broken,
  });
  const port = await freePort();
  services.push(
    await startService(
      javaCommand(r.jarPath, { host: '127.0.0.1', port, configDir: dir, nodeName }),
      port,
    ),
  );
  return port;
}

async function sql(text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: cluster!.url });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

describe('Java service /health against PostgreSQL', () => {
  it('is 200 while the database takes writes, 503 when read-only or stopped', async () => {
    const port = await startApp(false, 'k-node-b');
    const ok = await httpGet(port, '/health');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({
      status: 'ok',
      version: '1.0.0',
      database: 'read-write',
    });
    const rows = await sql('SELECT instance, version FROM app_heartbeat');
    expect(rows.rows).toEqual([{ instance: `k-node-b:${port}`, version: '1.0.0' }]);
    expect((await httpGet(port, '/version')).body).toBe('1.0.0\n');

    // a database that can be read but not written must fail the check
    await sql('ALTER SYSTEM SET default_transaction_read_only = on');
    await sql('SELECT pg_reload_conf()');
    const ro = await httpGet(port, '/health');
    expect(ro.status).toBe(503);
    expect(JSON.parse(ro.body).status).toBe('fail');
    await sql('ALTER SYSTEM RESET default_transaction_read_only');
    await sql('SELECT pg_reload_conf()');
    expect((await httpGet(port, '/health')).status).toBe(200);

    await cluster!.stop();
    const t0 = Date.now();
    const down = await httpGet(port, '/health');
    expect(down.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(JSON.parse(down.body).reason).toMatch(/Connection|refused/i);
  });

  it('a broken build listens and answers /version but its /health is always 503', async () => {
    const port = await startApp(true);
    expect((await httpGet(port, '/version')).body).toBe('9.0.0\n');
    const h = await httpGet(port, '/health');
    expect(h.status).toBe(503);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'fail', reason: 'broken build' });
    const rows = await sql(
      "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'app_heartbeat'",
    );
    expect(rows.rows[0].n).toBe(0);
  });
});
