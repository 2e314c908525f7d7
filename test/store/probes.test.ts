// /readyz against a real PostgreSQL store that goes away: ready while the
// server answers, 503 naming the store (a bounded reason, no URL) once it is
// stopped, while /livez stays 200 (a store outage must not get the pod
// killed). The rest of /readyz is covered in test/unit/operator-metrics.test.ts.
import { jest } from '@jest/globals';
import { operatorProbes, startProbesServer } from '../../src/api/probes-server.js';
import { openPostgres } from '../../src/store/postgres.js';
import { startPgCluster } from '../support/pg-cluster.js';

jest.setTimeout(120_000);

test('/readyz is 503 when the PostgreSQL store is stopped; /livez stays 200', async () => {
  const pg = await startPgCluster();
  const db = await openPostgres(pg.url);
  const deps = operatorProbes({
    storeQuery: () => db.query('SELECT 1'),
    sourceState: () => ({ running: true }),
    sourceStarted: () => true,
    loopStopped: () => false,
    draining: () => false,
  });
  const probes = await startProbesServer('127.0.0.1:0', deps);
  try {
    const ready = async () => {
      const r = await fetch(`${probes.url}/readyz`);
      return { status: r.status, body: await r.text() };
    };
    expect((await ready()).status).toBe(200);
    await pg.stop();
    const down = await ready();
    expect(down.status).toBe(503);
    const store = JSON.parse(down.body).checks.find((c: { name: string }) => c.name === 'store');
    expect(store.ok).toBe(false);
    expect(['error', 'timeout']).toContain(store.reason);
    expect(down.body).not.toContain('postgres://');
    expect((await fetch(`${probes.url}/livez`)).status).toBe(200);
  } finally {
    await probes.stop();
    deps.stop();
    await db.close().catch(() => undefined);
    await pg.stop().catch(() => undefined);
  }
});
