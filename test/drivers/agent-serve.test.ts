// pairshift-agent `serve` against real parts: a real PostgreSQL, real
// listening ports, and two real keepalived instances in network namespaces of
// our own (ag-lan bridge, ag-a and ag-b nodes, 198.19.250.0/24, an uplink
// ag-up so this process reaches the agents as the operator would).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jest } from '@jest/globals';
import type { HealthReport } from '../../src/agent/node/protocol.js';
import { ensureHealthy } from '../../src/drivers/health/health.js';
import { httpHealthProbe } from '../../src/drivers/health/probes.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { freePort, type PgCluster, startPgCluster } from '../support/pg-cluster.js';
import { compileAgent } from './agent-build.js';

jest.setTimeout(60_000);

const NET = '198.19.250';
const ADDR = { a: `${NET}.11`, b: `${NET}.12` } as const;
const VIP = `${NET}.100`;
const NS = { lan: 'ag-lan', a: 'ag-a', b: 'ag-b' } as const;
const AGENT_PORT = 8090;

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: 'pipe' });
const tryRun = (cmd: string, args: string[]) => {
  try {
    sh(cmd, args);
  } catch {
    // cleanup of something that may not exist
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

function get(
  url: string,
  opts: { localAddress?: string } = {},
): Promise<{ code: number; body: HealthReport & { error?: string }; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { localAddress: opts.localAddress, signal: AbortSignal.timeout(5000) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () =>
          resolve({
            code: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
            ms: performance.now() - started,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const check = (r: HealthReport, name: string) => r.checks.find((c) => c.name === name);

function keepalivedConf(node: 'a' | 'b', dir: string): string {
  return `global_defs {
  router_id ag-${node}
  vrrp_version 3
  script_user root
  enable_script_security
  max_auto_priority
}
track_file fault {
  file ${dir}/fault-${node}
  weight 0
  init_file 0
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 77
  priority ${node === 'a' ? 150 : 100}
  advert_int 0.1
  track_file {
    fault
  }
  virtual_ipaddress {
    ${VIP}/24 dev eth0
  }
}
`;
}

// A service in a node's namespace: HTTP with /health and /version, or a bare
// TCP port, or an HTTP port that accepts and never answers.
const SERVICE = `
const [kind, port] = process.argv.slice(1);
if (kind === 'tcp') require('net').createServer((s) => s.end()).listen(+port);
else if (kind === 'hang') require('http').createServer(() => {}).listen(+port, '127.0.0.1');
else require('http').createServer((q, r) => {
  if (q.url === '/version') r.end(JSON.stringify({ version: '1.2.3' }));
  else r.end(JSON.stringify({ status: 'ok' }));
}).listen(+port);`;

describe('pairshift-agent serve (real PostgreSQL, ports, keepalived)', () => {
  const procs: ChildProcess[] = [];
  /** each process's output, shown when something it serves goes wrong */
  const logs = new Map<string, Buffer[]>();
  const logOf = (name: string) => Buffer.concat(logs.get(name) ?? []).toString('utf8');
  let work: string;
  let agentDir: string;
  let pg: PgCluster;
  const kad: Partial<Record<'a' | 'b', ChildProcess>> = {};
  let rawService: ChildProcess;
  let hostAgentPort: number;

  const spawnIn = (ns: string | undefined, argv: string[], log: string) => {
    const [cmd, args] = ns ? ['ip', ['netns', 'exec', ns, ...argv]] : [argv[0]!, argv.slice(1)];
    const p = spawn(cmd as string, args as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    p.stdout?.on('data', (b: Buffer) => out.push(b));
    p.stderr?.on('data', (b: Buffer) => out.push(b));
    logs.set(log, out);
    procs.push(p);
    return p;
  };

  const startKeepalived = (node: 'a' | 'b') => {
    kad[node] = spawnIn(
      NS[node],
      [
        'env',
        `TMPDIR=${work}/kad-tmp`,
        '/usr/sbin/keepalived',
        '-n',
        '-l',
        '-G',
        '-P',
        '-f',
        join(work, `keepalived-${node}.conf`),
        '-p',
        join(work, `keepalived-${node}.pid`),
        '-r',
        join(work, `vrrp-${node}.pid`),
      ],
      `keepalived-${node}`,
    );
  };

  const startAgent = (ns: string | undefined, name: string, config: object) => {
    const cfgPath = join(work, `agent-${name}.json`);
    const pidFile = join(work, `agent-${name}.pid`);
    writeFileSync(cfgPath, JSON.stringify({ ...config, pidFile }));
    spawnIn(ns, ['node', join(agentDir, 'main.js'), 'serve', '--config', cfgPath], `agent-${name}`);
    return waitFor(`agent ${name} to listen`, () => {
      if (existsSync(pidFile)) return true;
      const out = logOf(`agent-${name}`);
      if (out.includes('pairshift-agent:')) throw new Error(out);
      return undefined;
    });
  };

  const health = (node: 'a' | 'b') => get(`http://${ADDR[node]}:${AGENT_PORT}/health`);

  function teardownNetwork() {
    for (const ns of [NS.a, NS.b, NS.lan]) tryRun('ip', ['netns', 'del', ns]);
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'ag-serve-'));
    agentDir = join(work, 'agent');
    compileAgent(agentDir);
    sh('mkdir', ['-p', join(work, 'kad-tmp')]);
    pg = await startPgCluster();

    // a leftover of a crashed run would make `ip netns add` fail
    teardownNetwork();
    for (const ns of Object.values(NS)) {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh('ip', ['-n', NS.lan, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', NS.lan, 'link', 'set', 'br0', 'up']);
    for (const node of ['a', 'b'] as const) {
      sh('ip', [
        '-n',
        NS.lan,
        'link',
        'add',
        `veth-${node}`,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        NS[node],
      ]);
      sh('ip', ['-n', NS.lan, 'link', 'set', `veth-${node}`, 'master', 'br0', 'up']);
      sh('ip', ['-n', NS[node], 'addr', 'add', `${ADDR[node]}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', NS[node], 'link', 'set', 'eth0', 'up']);
    }
    // uplink into this (root) namespace; deleting ag-lan deletes both ends
    sh('ip', [
      '-n',
      NS.lan,
      'link',
      'add',
      'up0',
      'type',
      'veth',
      'peer',
      'name',
      'ag-up',
      'netns',
      '1',
    ]);
    sh('ip', ['-n', NS.lan, 'link', 'set', 'up0', 'master', 'br0', 'up']);
    sh('ip', ['addr', 'add', `${NET}.1/24`, 'dev', 'ag-up']);
    sh('ip', ['link', 'set', 'ag-up', 'up']);

    for (const node of ['a', 'b'] as const) {
      writeFileSync(join(work, `fault-${node}`), '0\n');
      writeFileSync(join(work, `keepalived-${node}.conf`), keepalivedConf(node, work));
      startKeepalived(node);
    }
    spawnIn(NS.a, ['node', '-e', SERVICE, 'http', '9101'], 'svc-web');
    rawService = spawnIn(NS.a, ['node', '-e', SERVICE, 'tcp', '9102'], 'svc-raw');

    const database = {
      psql: join(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim(), 'psql'),
      // the socket folder: unix sockets cross network namespaces
      host: dirname(pg.dataDir),
      port: pg.port,
      user: 'postgres',
      dbname: 'postgres',
    };
    const keepalived = { instance: 'VI_1', virtualRouterId: 77, vip: VIP };
    await startAgent(NS.a, 'a', {
      node: 'a',
      allow: [`${NET}.0/24`, '127.0.0.0/8'],
      database,
      services: [
        { name: 'web', port: 9101, healthPath: '/health', versionPath: '/version' },
        { name: 'raw', port: 9102 },
      ],
      keepalived,
    });
    await startAgent(NS.b, 'b', { node: 'b', allow: [`${NET}.0/24`], services: [], keepalived });

    // a third agent on this host's loopback: only 127.0.0.2 may ask, and one
    // service accepts connections but never answers
    const hangPort = await freePort();
    spawnIn(undefined, ['node', '-e', SERVICE, 'hang', String(hangPort)], 'svc-hang');
    hostAgentPort = await freePort();
    await startAgent(undefined, 'host', {
      node: 'h',
      listen: { host: '127.0.0.1', port: hostAgentPort },
      allow: ['127.0.0.2/32'],
      services: [{ name: 'hang', port: hangPort, healthPath: '/health' }],
    });

    // keepalived settles: a MASTER, b BACKUP
    await waitFor('a to become MASTER', async () =>
      (await health('a')).body.role === 'MASTER' ? true : undefined,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logOf('keepalived-a')}\n${logOf('agent-a')}`);
    });
  });

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await sleep(300);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    teardownNetwork();
    await pg?.stop().catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('node a: 200, MASTER, primary database, services and heartbeat UP, under 2 s', async () => {
    const r = await health('a');
    expect(r.code).toBe(200);
    expect(r.body).toMatchObject({ status: 'UP', node: 'a', role: 'MASTER' });
    expect(Date.parse(r.body.timestamp)).toBeGreaterThan(Date.now() - 10_000);
    expect(r.body.checks.map((c) => c.name)).toEqual([
      'database',
      'service:web',
      'service:web:health',
      'service:raw',
      'keepalived',
    ]);
    expect(check(r.body, 'database')).toMatchObject({ status: 'UP', data: { role: 'primary' } });
    expect(check(r.body, 'database')!.data!.currentLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const ka = check(r.body, 'keepalived')!;
    expect(ka).toMatchObject({ status: 'UP', data: { state: 'MASTER', vipPresent: true } });
    expect((ka.data!.heartbeat as { sent: number }).sent).toBeGreaterThan(0);
    for (const c of r.body.checks) expect(c.responseTimeMs).toBeGreaterThan(0);
    expect(r.body.responseTimeMs).toBeLessThan(2000);
    expect(r.ms).toBeLessThan(2000);
  });

  it('node b: 200, BACKUP, adverts received from a', async () => {
    const r = await health('b');
    expect(r.code).toBe(200);
    expect(r.body).toMatchObject({ status: 'UP', node: 'b', role: 'BACKUP' });
    const ka = check(r.body, 'keepalived')!;
    expect(ka.data).toMatchObject({ state: 'BACKUP', vipPresent: false });
    expect((ka.data!.heartbeat as { received: number }).received).toBeGreaterThan(0);
  });

  it('both nodes asked at once, again and again (they share one keepalived dump folder), stay right', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 6 }, () => Promise.all([health('a'), health('b')])),
    );
    for (const [a, b] of rounds) {
      expect([a.body.role, b.body.role]).toEqual(['MASTER', 'BACKUP']);
      expect(a.ms).toBeLessThan(2000);
      expect(b.ms).toBeLessThan(2000);
    }
  });

  it('the health driver passes node a three times in a row over HTTP and records every check', async () => {
    const records = new MemoryRecords();
    const probe = httpHealthProbe((node) => ({ host: ADDR[node as 'a' | 'b'], port: AGENT_PORT }));
    const r = await ensureHealthy(
      'a',
      { probe, records, upgradeId: null },
      { consecutivePasses: 3, intervalMs: 200 },
    );
    expect(r).toMatchObject({ attempts: 3, passes: 3 });
    expect(
      records.healthChecks.filter((h) => h.checkName === 'health').map((h) => h.status),
    ).toEqual(['UP', 'UP', 'UP']);
    expect(records.healthChecks.length).toBe(3 * 6);
  });

  it('status (run in the node): app version, keepalived state, database role and LSN', () => {
    const out = sh('ip', [
      'netns',
      'exec',
      NS.a,
      'sh',
      '-c',
      `echo '{"command":"status"}' | node ${join(agentDir, 'main.js')} run --config ${join(work, 'agent-a.json')}`,
    ]);
    const r = JSON.parse(out);
    expect(r.ok).toBe(true);
    expect(r.result.services).toEqual([
      { name: 'web', version: '1.2.3' },
      { name: 'raw', version: null },
    ]);
    expect(r.result.keepalived).toMatchObject({ running: true, state: 'MASTER', vipPresent: true });
    expect(r.result.database).toMatchObject({ role: 'primary', replayLsn: null });
  });

  it('refuses clients outside the allowlist with 403', async () => {
    const far = await get(`http://127.0.0.1:${hostAgentPort}/health`, {
      localAddress: '127.0.0.1',
    });
    expect(far.code).toBe(403);
    expect(far.body.error).toMatch(/127\.0\.0\.1 is not in this agent's allowlist/);
  });

  it('a service that never answers costs one check timeout, not the whole answer', async () => {
    const r = await get(`http://127.0.0.1:${hostAgentPort}/health`, { localAddress: '127.0.0.2' });
    expect(r.code).toBe(503);
    expect(check(r.body, 'service:hang')!.status).toBe('UP');
    expect(check(r.body, 'service:hang:health')).toMatchObject({
      status: 'DOWN',
      detail: expect.stringMatching(/timed out after 1500 ms/),
    });
    expect(r.ms).toBeLessThan(2000);
  });

  it('FAULT: a non-zero fault file puts b in FAULT: 503, keepalived DOWN, role FAULT', async () => {
    writeFileSync(join(work, 'fault-b'), '1\n');
    const r = await waitFor('b in FAULT', async () => {
      const x = await health('b');
      return x.body.role === 'FAULT' ? x : undefined;
    });
    expect(r.code).toBe(503);
    expect(check(r.body, 'keepalived')).toMatchObject({ status: 'DOWN', data: { state: 'FAULT' } });
    writeFileSync(join(work, 'fault-b'), '0\n');
    await waitFor('b back to BACKUP', async () =>
      (await health('b')).code === 200 ? true : undefined,
    );
  });

  it('a closed service port is DOWN and the node 503', async () => {
    rawService.kill('SIGKILL');
    const r = await waitFor('raw port closed', async () => {
      const x = await health('a');
      return check(x.body, 'service:raw')?.status === 'DOWN' ? x : undefined;
    });
    expect(r.code).toBe(503);
    expect(check(r.body, 'service:raw')!.detail).toMatch(/ECONNREFUSED/);
    expect(check(r.body, 'service:web')!.status).toBe('UP');
  });

  it('keepalived stopped on a: a reports it not running, b takes over as MASTER', async () => {
    kad.a!.kill('SIGTERM');
    const b = await waitFor('b to become MASTER', async () => {
      const x = await health('b');
      return x.body.role === 'MASTER' ? x : undefined;
    });
    expect(check(b.body, 'keepalived')!.data).toMatchObject({ state: 'MASTER', vipPresent: true });
    const a = await waitFor('a keepalived gone', async () => {
      const x = await health('a');
      return check(x.body, 'keepalived')?.detail.includes('not running') ? x : undefined;
    });
    expect(a.code).toBe(503);
    expect(a.body.role).toBe('UNKNOWN');
    expect(check(a.body, 'keepalived')!.detail).toMatch(
      /keepalived is not running \(in this network namespace\)/,
    );
  });

  it('the database stopped: database DOWN, 503, still answered in under 2 s', async () => {
    await pg.stop();
    const r = await health('a');
    expect(r.code).toBe(503);
    expect(check(r.body, 'database')).toMatchObject({
      status: 'DOWN',
      detail: expect.stringMatching(/psql exited 2/),
    });
    expect(r.ms).toBeLessThan(2000);
    // the agent's log says where it listened, nothing about secrets
    expect(readFileSync(join(work, 'agent-a.json'), 'utf8')).not.toMatch(/password/i);
  });
});
