// The agent over real SSH: installAgent onto a "node" (a real sshd on
// loopback) twice, the JSON command handler through SshPool, the allowlist
// refusing an SSH client, and the health driver through both probes.
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import type { AgentConfig } from '../../src/agent/node/config.js';
import { agentRunArgv, installAgent } from '../../src/drivers/agent/install.js';
import { DriverError } from '../../src/drivers/errors.js';
import { checkHealth, ensureHealthy } from '../../src/drivers/health/health.js';
import { httpHealthProbe, sshHealthProbe } from '../../src/drivers/health/probes.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { freePort, type PgCluster, pgBinDir, startPgCluster } from '../support/pg-cluster.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { compileAgent } from './agent-build.js';

jest.setTimeout(90_000);

let sshd: TestSshd;
let pool: SshPool;
let pg: PgCluster;
let work: string;
let bundle: string;
let root: string;
let port: number;
let service: Server;
let servicePort: number;

const node = 'node-a';

const config = (over: Partial<AgentConfig> = {}): AgentConfig => ({
  node,
  listen: { host: '127.0.0.1', port },
  allow: ['127.0.0.0/8'],
  checkTimeoutMs: 1500,
  commandTimeoutMs: 5000,
  database: {
    psql: join(pgBinDir(), 'psql'),
    host: '127.0.0.1',
    port: pg.port,
    user: 'postgres',
    dbname: 'postgres',
  },
  services: [{ name: 'app', host: '127.0.0.1', port: servicePort }],
  ...over,
});

async function agentRun(request: string): Promise<{
  ok: boolean;
  result?: Record<string, unknown> & { checks?: Array<{ name: string }> };
  error?: { code: string; message: string };
}> {
  const r = await pool.exec(node, agentRunArgv(root), { stdin: request, timeoutMs: 10_000 });
  return JSON.parse(r.stdout);
}

const pidOf = () => Number(readFileSync(join(root, 'agent.pid'), 'utf8'));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ag-ssh-'));
  bundle = join(work, 'bundle');
  compileAgent(bundle);
  root = join(work, 'node-root', 'pairshift-agent');
  [sshd, pg, port, servicePort] = await Promise.all([
    startSshd(),
    startPgCluster(),
    freePort(),
    freePort(),
  ]);
  service = createServer((s) => s.end());
  await new Promise<void>((r) => service.listen(servicePort, '127.0.0.1', r));
  pool = new SshPool([
    {
      node,
      host: '127.0.0.1',
      port: sshd.port,
      username: 'root',
      privateKey: sshd.clientKey,
      hostKeyFingerprints: [sshd.hostFingerprint],
    },
  ]);
});

afterAll(async () => {
  try {
    if (root && existsSync(join(root, 'agent.pid'))) process.kill(pidOf(), 'SIGTERM');
  } catch {
    // already gone
  }
  await pool?.close();
  service?.close();
  await sshd?.stop();
  await pg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('installAgent over SSH', () => {
  test('a dry run on an empty node says what it would do and does nothing', async () => {
    const r = await installAgent(pool, node, {
      config: config(),
      root,
      sourceDir: bundle,
      dryRun: true,
    });
    expect(r).toMatchObject({ state: 'changed', dryRun: true });
    expect(r.actions).toEqual([
      expect.stringMatching(/^copy agent .* \(installed: none\)$/),
      'write config.json',
      'start serve',
    ]);
    expect(existsSync(root)).toBe(false);
  });

  test('first run installs and starts; second run changes nothing', async () => {
    const first = await installAgent(pool, node, { config: config(), root, sourceDir: bundle });
    expect(first.state).toBe('changed');
    expect(first.version).toMatch(/^0\.1\.0-[0-9a-f]{12}$/);
    expect(readlinkSync(join(root, 'current'))).toBe(first.version);
    expect(readFileSync(join(root, 'current', 'VERSION'), 'utf8').trim()).toBe(first.version);
    expect(JSON.parse(readFileSync(join(root, 'config.json'), 'utf8'))).toMatchObject({
      node,
      pidFile: join(root, 'agent.pid'),
    });
    const pid = pidOf();

    const second = await installAgent(pool, node, { config: config(), root, sourceDir: bundle });
    expect(second).toEqual({
      state: 'unchanged',
      version: first.version,
      actions: [],
      dryRun: false,
    });
    expect(pidOf()).toBe(pid); // not restarted
  });

  test('a dead server is started again, and nothing else is touched', async () => {
    const configBefore = statSync(join(root, 'config.json')).mtimeMs;
    process.kill(pidOf(), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const r = await installAgent(pool, node, { config: config(), root, sourceDir: bundle });
    expect(r).toMatchObject({ state: 'changed', actions: ['start serve'] });
    expect(statSync(join(root, 'config.json')).mtimeMs).toBe(configBefore);
  });
});

describe('the agent through SSH', () => {
  test('health, status and version answer as JSON', async () => {
    const h = await agentRun('{"command":"health"}');
    expect(h).toMatchObject({ ok: true, result: { status: 'UP', node, role: 'UNKNOWN' } });
    expect(h.result?.checks?.map((c) => c.name)).toEqual(['database', 'service:app']);
    const s = await agentRun('{"command":"status"}');
    expect(s.result?.database).toMatchObject({ role: 'primary' });
    const v = await agentRun('{"command":"version"}');
    expect(v.result?.agent).toMatch(/^0\.1\.0-/);
  });

  test('bad requests get clear errors and exit 0', async () => {
    expect(await agentRun('not json')).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    expect(await agentRun('{"command":"rm -rf /"}')).toMatchObject({
      ok: false,
      error: { code: 'unknown_command' },
    });
    expect(await agentRun('{"command":"check"}')).toMatchObject({
      ok: false,
      error: { code: 'missing_argument' },
    });
    const big = await agentRun(`{"command":"health","args":{"x":"${'y'.repeat(100_000)}"}}`);
    expect(big).toMatchObject({ ok: false, error: { code: 'too_large' } });
    expect(await agentRun('{"command":"check","args":{"name":"service:app"}}')).toMatchObject({
      ok: true,
      result: { name: 'service:app', status: 'UP' },
    });
  });

  test('a command past its deadline answers timeout', async () => {
    // a database "host" that swallows the connection: psql waits, the deadline answers
    const blackhole = createServer(() => undefined);
    const bhPort = await freePort();
    await new Promise<void>((r) => blackhole.listen(bhPort, '127.0.0.1', r));
    try {
      await installAgent(pool, node, {
        config: config({ database: { ...config().database!, port: bhPort }, checkTimeoutMs: 5000 }),
        root,
        sourceDir: bundle,
      });
      const started = Date.now();
      const r = await agentRun('{"command":"status","timeoutMs":300}');
      expect(r).toEqual({
        ok: false,
        error: { code: 'timeout', message: 'command "status" timed out after 300 ms' },
      });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      blackhole.close();
    }
  });

  test('the health driver passes through SSH and through HTTP', async () => {
    await installAgent(pool, node, { config: config(), root, sourceDir: bundle });
    const records = new MemoryRecords();
    const viaSsh = await ensureHealthy(
      node,
      { probe: sshHealthProbe(pool, agentRunArgv(root)), records },
      { consecutivePasses: 3, intervalMs: 100 },
    );
    expect(viaSsh.passes).toBe(3);
    const viaHttp = await checkHealth(node, {
      probe: httpHealthProbe(() => ({ host: '127.0.0.1', port })),
      records,
    });
    expect(viaHttp.report.status).toBe('UP');
    expect(records.healthChecks.filter((h) => h.checkName === 'health')).toHaveLength(4);
  });

  test('a closed service port: the driver gives up terminal with the check named', async () => {
    service.close();
    await new Promise((r) => setTimeout(r, 100));
    const err = await checkHealth(
      node,
      { probe: sshHealthProbe(pool, agentRunArgv(root)), records: new MemoryRecords() },
      { intervalMs: 50 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ kind: 'terminal', node });
    expect((err as Error).message).toMatch(/service:app: connect ECONNREFUSED/);
  });

  test('an SSH client outside the allowlist is refused, and so is HTTP', async () => {
    const r = await installAgent(pool, node, {
      config: config({ allow: ['10.0.0.0/8'] }),
      root,
      sourceDir: bundle,
    });
    expect(r.actions).toEqual(['write config.json', 'restart serve']);
    expect(await agentRun('{"command":"version"}')).toEqual({
      ok: false,
      error: { code: 'forbidden', message: "client 127.0.0.1 is not in this agent's allowlist" },
    });
    const err = await checkHealth(
      node,
      { probe: httpHealthProbe(() => ({ host: '127.0.0.1', port })), records: new MemoryRecords() },
      { intervalMs: 50 },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/answered 403/);
  });
});
