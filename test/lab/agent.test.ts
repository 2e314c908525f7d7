// pairshift-agent on the real lab pair (lab "agl", brought up for this file
// and removed afterwards): installAgent over the pinned SSH connection onto
// both nodes, twice (the second run changes nothing), then /health from the
// operator's side shows A as MASTER with the primary database and B as
// BACKUP with the standby, through HTTP and through SSH. Needs root and what
// docs/lab.md lists.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { agentConfigFor } from '../../src/agent/render-config.js';
import { agentRunArgv, installAgent } from '../../src/drivers/agent/install.js';
import { ensureHealthy } from '../../src/drivers/health/health.js';
import { httpHealthProbe, sshHealthProbe } from '../../src/drivers/health/probes.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import { labDown, labUp, NODE_PATHS } from '../../src/lab/index.js';
import { compileAgent } from '../drivers/agent-build.js';

const NAME = 'agl';
// per node: the lab binds each node's own folder over /opt/pairshift-node
const ROOT = `${NODE_PATHS.toolsDir}/agent`;
jest.setTimeout(300_000);

let pair: HAPair;
let pool: SshPool;
let work: string;
let bundle: string;

const address = (node: string) => ({
  host: pair.spec.nodes.find((n) => n.name === node)!.address,
  port: 8090,
});

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ag-lab-'));
  bundle = join(work, 'agent');
  compileAgent(bundle);
  const up = await labUp({ name: NAME });
  pair = await loadHAPair(up.inventory);
  pool = new SshPool(await sshEndpoints(pair));
});

afterAll(async () => {
  await pool?.close();
  await labDown({ name: NAME });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pairshift-agent on the lab pair', () => {
  it('installs on both nodes; the second run is unchanged', async () => {
    for (const node of ['a', 'b']) {
      const opts = {
        config: agentConfigFor(pair, node, { root: ROOT }),
        root: ROOT,
        sourceDir: bundle,
      };
      const first = await installAgent(pool, node, opts);
      expect(first.state).toBe('changed');
      const second = await installAgent(pool, node, opts);
      expect(second).toMatchObject({ state: 'unchanged', version: first.version, actions: [] });
    }
  });

  it('A is MASTER with the primary, B is BACKUP with the standby, over HTTP, three times in a row', async () => {
    const probe = httpHealthProbe(address);
    const records = new MemoryRecords();
    const a = await ensureHealthy(
      'a',
      { probe, records },
      { consecutivePasses: 3, intervalMs: 500 },
    );
    const b = await ensureHealthy(
      'b',
      { probe, records },
      { consecutivePasses: 3, intervalMs: 500 },
    );
    expect(a.report).toMatchObject({ status: 'UP', node: 'a', role: 'MASTER' });
    expect(b.report).toMatchObject({ status: 'UP', node: 'b', role: 'BACKUP' });
    const db = (r: typeof a.report) => r.checks.find((c) => c.name === 'database')!.data;
    expect(db(a.report)).toMatchObject({ role: 'primary' });
    expect(db(b.report)).toMatchObject({ role: 'standby' });
    expect(a.report.checks.map((c) => c.name)).toEqual([
      'database',
      'service:java',
      'service:java:health',
      'service:python',
      'service:python:health',
      'keepalived',
    ]);
    for (const r of [a.report, b.report]) expect(r.responseTimeMs).toBeLessThan(2000);
  });

  it('the same answers through the agent over SSH, and status names versions, LSNs and rsync', async () => {
    const probe = sshHealthProbe(pool, agentRunArgv(ROOT));
    const b = await ensureHealthy(
      'b',
      { probe, records: new MemoryRecords() },
      { consecutivePasses: 1 },
    );
    expect(b.report.role).toBe('BACKUP');
    const r = await pool.exec('b', agentRunArgv(ROOT), { stdin: '{"command":"status"}' });
    const status = JSON.parse(r.stdout);
    expect(status.ok).toBe(true);
    expect(status.result.database).toMatchObject({
      role: 'standby',
      replayLsn: expect.stringMatching(/\//),
    });
    expect(status.result.keepalived).toMatchObject({
      running: true,
      state: 'BACKUP',
      vipPresent: false,
    });
    expect(status.result.services.map((s: { version: unknown }) => typeof s.version)).toEqual([
      'string',
      'string',
    ]);
    expect(status.result.rsync).not.toBeNull();
    expect(status.result.rsync).not.toHaveProperty('error');
  });
});
