// /readyz against a real store that goes away (the embedded PGlite store,
// closed): ready while it answers, 503 naming the store (a bounded reason,
// no path) once it is gone, while /livez stays 200 (a store outage must not
// get the pod killed). The rest of /readyz is covered in
// test/unit/operator-metrics.test.ts. The PostgreSQL store cut off under a
// query is test/store/postgres-outage.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { operatorProbes, startProbesServer } from '../../src/api/probes-server.js';
import { openPglite } from '../../src/store/pglite.js';

jest.setTimeout(120_000);

test('/readyz is 503 when the store is gone; /livez stays 200', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-probes-'));
  const db = await openPglite(join(dir, 'store'));
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
    await db.close();
    const down = await ready();
    expect(down.status).toBe(503);
    const store = JSON.parse(down.body).checks.find((c: { name: string }) => c.name === 'store');
    expect(store.ok).toBe(false);
    expect(['error', 'timeout']).toContain(store.reason);
    expect(down.body).not.toContain(dir);
    expect((await fetch(`${probes.url}/livez`)).status).toBe(200);
  } finally {
    await probes.stop();
    deps.stop();
    await db.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
