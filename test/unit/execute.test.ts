// executeStep against a scripted fake NodeShell: every failure comes back as
// an outcome with the driver's kind (nothing throws), plain errors are
// transient, dry runs change nothing, and the install puts the jar last.
// And observePair against the same kind of shell: an unreachable node is
// reachable:false and nothing throws, a stuck probe costs one deadline, the
// standby's lag is measured against the primary.
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Step } from '../../src/core/actions.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { HealthProbe } from '../../src/drivers/health/health.js';
import { KeepalivedDriver } from '../../src/drivers/keepalived/driver.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import { type HAPair, parseHAPair } from '../../src/inventory/hapair.js';
import type { StagedPackage, StagedPayload } from '../../src/packages/stage.js';
import {
  type ExecutorDeps,
  executeStep,
  outcomeOf,
  type StepContext,
} from '../../src/reconciler/execute.js';
import {
  capTimeouts,
  limitPerNode,
  observePair,
  parseInstalledVersion,
  parseVersionAnswer,
} from '../../src/reconciler/observe.js';

const FP = `SHA256:${'A'.repeat(43)}`;
const pair: HAPair = parseHAPair(
  JSON.stringify({
    apiVersion: 'pairshift.io/v1alpha1',
    kind: 'HAPair',
    metadata: { name: 'p' },
    spec: {
      vip: { address: '198.18.9.100', prefixLength: 24, interface: 'eth0' },
      ssh: { user: 'root', privateKeyPath: '/nonexistent/key' },
      nodes: [
        { name: 'a', address: '198.18.9.11', ssh: { hostKey: { fingerprint: FP } } },
        { name: 'b', address: '198.18.9.12', ssh: { hostKey: { fingerprint: FP } } },
      ],
      keepalived: {
        configPath: '/etc/keepalived/keepalived.conf',
        instance: 'VI_1',
        start: 'ka-start',
        stop: 'ka-stop',
        status: 'ka-status',
        reload: 'ka-reload',
      },
      services: [
        { name: 'java', port: 8080, start: 'j-start', stop: 'j-stop', status: 'j-status' },
        { name: 'python', port: 8081, start: 'p-start', stop: 'p-stop', status: 'p-status' },
      ],
      database: {
        port: 5432,
        name: 'app',
        user: 'app',
        superuser: 'postgres',
        replicationUser: 'replicator',
        osUser: 'postgres',
        dataDir: '/var/lib/app/pgdata',
        binDir: '/usr/lib/postgresql/15/bin',
        start: 'db-start',
        stop: 'db-stop',
        status: 'db-status',
      },
      rsync: {
        source: '/etc/app/',
        direction: 'vip-holder-to-peer',
        periodSeconds: 2,
        pause: 'sync-pause',
        resume: 'sync-resume',
        status: 'sync-status',
      },
      paths: {
        appDir: '/opt/app',
        appJar: '/opt/app/app.jar',
        configDir: '/etc/app',
        rootKey: '/etc/app/root.key',
        backupDir: '/var/backups/app',
      },
    },
  }),
  'test pair',
);

type Handler = (
  node: string,
  argv: readonly string[],
  opts?: ExecOptions,
) => Partial<ExecResult> | Error;

/** Answers each command with the first handler whose pattern occurs in the command line. */
class ScriptedShell implements NodeShell {
  readonly log: { node: string; line: string }[] = [];
  constructor(private readonly script: [RegExp | string, Handler][]) {}
  async exec(node: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const line = argv.join(' ');
    this.log.push({ node, line });
    for (const [pattern, h] of this.script) {
      if (typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line)) {
        const r = h(node, argv, opts);
        if (r instanceof Error) throw r;
        const result = {
          exitCode: 0,
          signal: undefined,
          stdout: '',
          stderr: '',
          durationMs: 1,
          ...r,
        };
        const ok =
          result.exitCode === 0 || (opts?.okExitCodes ?? []).includes(result.exitCode ?? -1);
        if (!ok)
          throw new DriverError('command failed', {
            kind: 'terminal',
            node,
            command: line,
            exitCode: result.exitCode,
            stderrTail: result.stderr,
          });
        return result;
      }
    }
    throw new Error(`unscripted command on ${node}: ${line}`);
  }
}

const staged = (over: Partial<StagedPackage> = {}): StagedPackage & { cleaned: number } => {
  const s = {
    dir: '/tmp/staged-x',
    manifest: {} as StagedPackage['manifest'],
    version: '2.0.0',
    upgradesFrom: ['1.0.0'],
    payload: [],
    migrations: [],
    cleaned: 0,
    async cleanup() {
      s.cleaned += 1;
    },
    ...over,
  };
  return s;
};

const ctx: StepContext = {
  upgradeId: 'u1',
  masterNode: 'a',
  backupNode: 'b',
  fromVersion: '1.0.0',
  targetVersion: '2.0.0',
};

const upProbe: HealthProbe = async (node) => ({
  status: 'UP',
  timestamp: new Date(0).toISOString(),
  node,
  role: 'BACKUP',
  responseTimeMs: 1,
  checks: [{ name: 'database', status: 'UP', responseTimeMs: 1, detail: 'ok' }],
});

function deps(shell: NodeShell, over: Partial<ExecutorDeps> = {}): ExecutorDeps {
  return {
    pair,
    shell,
    records: new MemoryRecords(),
    settings: {
      ...BUILT_IN_DEFAULTS,
      healthCheckRetries: 2,
      healthCheckInterval: 1,
      healthCheckTimeout: 50,
    },
    staged: staged(),
    healthProbe: upProbe,
    keepalived: new KeepalivedDriver({ shell, pair }),
    sleep: async () => {},
    ...over,
  };
}

const run = (d: ExecutorDeps, step: Step, node: string | null) =>
  executeStep(d, { step, node }, ctx);

const status = (paused: boolean) => ({
  stdout: `${JSON.stringify({ loop: 'running', paused, last: { lastResult: 'pushed' } })}\n`,
});

describe('executeStep', () => {
  it('pauses rsync on both nodes and records each change', async () => {
    const paused = { a: false, b: false } as Record<string, boolean>;
    const shell = new ScriptedShell([
      ['sync-status', (n) => status(paused[n]!)],
      [
        'sync-pause',
        (n) => {
          paused[n] = true;
          return {};
        },
      ],
    ]);
    const records = new MemoryRecords();
    const r = await run(deps(shell, { records }), 'PAUSE_RSYNC', null);
    expect(r).toMatchObject({ ok: true, detail: 'a changed, b changed' });
    expect(records.rsyncStatuses.map((x) => [x.node, x.state, x.upgradeId])).toEqual([
      ['a', 'paused', 'u1'],
      ['b', 'paused', 'u1'],
    ]);
  });

  it("keeps a DriverError's kind: a job that will not pause is a conflict", async () => {
    const shell = new ScriptedShell([
      ['sync-status', () => status(false)],
      ['sync-pause', () => ({})],
    ]);
    const r = await run(deps(shell), 'PAUSE_RSYNC', null);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ kind: 'conflict' });
    if (!r.ok)
      expect(r.message).toMatch(/a: while pausing the rsync job: .*still reports paused=false/);
  });

  it('a failing command is terminal with the node and what was being done', async () => {
    const shell = new ScriptedShell([
      ['lsattr -d --', () => ({ stdout: 'yes\n' })],
      ['-exec lsattr', () => ({ stdout: '--------------e------- /etc/app\n' })],
      ['chattr -R +i', () => ({ exitCode: 1, stderr: 'chattr: Operation not permitted' })],
    ]);
    const r = await run(deps(shell), 'LOCK_CONFIG', 'b');
    expect(r).toMatchObject({ ok: false, kind: 'terminal' });
    if (!r.ok) expect(r.message).toMatch(/^b: while locking \/etc\/app: .*Operation not permitted/);
  });

  it('an error that is not a DriverError is transient, and nothing throws', async () => {
    const s = staged({
      async cleanup() {
        throw new TypeError('disk on fire');
      },
    });
    const shell = new ScriptedShell([['rm -f', () => ({})]]);
    const r = await run(deps(shell, { staged: s }), 'REMOVE_TEMP_FILES', null);
    expect(r).toMatchObject({ ok: false, kind: 'transient', message: 'disk on fire' });
    // a shell that throws synchronously is caught too
    const broken: NodeShell = {
      exec: () => {
        throw new RangeError('sync boom');
      },
    };
    await expect(run(deps(broken), 'UNLOCK_CONFIG', 'a')).resolves.toMatchObject({ ok: false });
    expect(outcomeOf('a string')).toEqual({ ok: false, kind: 'transient', message: 'a string' });
  });

  it('a step that needs a node and gets none is terminal', async () => {
    const r = await run(deps(new ScriptedShell([])), 'STOP_SERVICES', null);
    expect(r).toMatchObject({ ok: false, kind: 'terminal', message: 'STOP_SERVICES needs a node' });
  });

  it('one health check: UP is ok and recorded; DOWN after the retries is terminal', async () => {
    const records = new MemoryRecords();
    const ok = await run(deps(new ScriptedShell([]), { records }), 'CHECK_HEALTH', 'b');
    expect(ok).toMatchObject({ ok: true });
    expect(
      records.healthChecks.some(
        (h) => h.node === 'b' && h.checkName === 'health' && h.status === 'UP',
      ),
    ).toBe(true);
    let polls = 0;
    const down: HealthProbe = async (node) => {
      polls += 1;
      return {
        ...(await upProbe(node, 1)),
        status: 'DOWN',
        checks: [{ name: 'service:java', status: 'DOWN', responseTimeMs: 1, detail: '503' }],
      };
    };
    const bad = await run(deps(new ScriptedShell([]), { healthProbe: down }), 'CHECK_HEALTH', 'b');
    expect(bad).toMatchObject({ ok: false, kind: 'terminal' });
    expect(polls).toBe(2); // healthCheckRetries
  });

  it('removes the install leftovers on both nodes, then the staging folder once', async () => {
    const shell = new ScriptedShell([['rm -f --', () => ({})]]);
    const s = staged({
      payload: [
        {
          archivePath: 'payload/app.jar',
          kind: 'jar',
          path: '/tmp/staged-x/app.jar',
          sha256: 'a'.repeat(64),
          size: 1,
          mode: 0o644,
        },
      ],
    });
    const r = await run(deps(shell, { staged: s }), 'REMOVE_TEMP_FILES', null);
    expect(r).toMatchObject({ ok: true });
    expect(shell.log.map((c) => c.node)).toEqual(['a', 'b']);
    expect(shell.log.every((c) => c.line.includes('/opt/app/app.jar.pairshift-new'))).toBe(true);
    expect(s.cleaned).toBe(1);
  });

  describe("CHECK_CONFIG: the sync job's round on the VIP holder, then the comparison", () => {
    const withRunOnce: HAPair = {
      ...pair,
      spec: { ...pair.spec, rsync: { ...pair.spec.rsync, runOnce: 'sync-once' } },
    };
    const sum = `${'c'.repeat(64)} 600:0:0 ./root.key\0`;
    const scripted = (roundFails: number) => {
      let rounds = 0;
      return new ScriptedShell([
        // b holds the VIP
        [
          'ip -o -4 addr show',
          (node) => ({
            stdout: node === 'b' ? `2: eth0    inet 198.18.9.100/24 scope global eth0\n` : '',
          }),
        ],
        [
          'sync-once',
          () =>
            ++rounds <= roundFails
              ? {
                  exitCode: 1,
                  stderr:
                    'rsync exit 255: ssh: connect to host 198.18.9.11 port 22: Connection timed out',
                }
              : {},
        ],
        ['sha256', () => ({ stdout: sum })],
      ]);
    };
    const rounds = (shell: ScriptedShell) => shell.log.filter((c) => c.line.includes('sync-once'));

    it('a round that fails once is run again; the check passes and says which attempt pushed', async () => {
      const shell = scripted(1);
      const r = await run(deps(shell, { pair: withRunOnce }), 'CHECK_CONFIG', null);
      expect(r).toMatchObject({ ok: true, detail: 'sync round on b (attempt 2); consistent' });
      expect(rounds(shell).map((c) => c.node)).toEqual(['b', 'b']);
    });

    it('a round that keeps failing fails the check after 3 attempts, naming the job and its error', async () => {
      const shell = scripted(99);
      const r = await run(deps(shell, { pair: withRunOnce }), 'CHECK_CONFIG', null);
      expect(r.ok).toBe(false);
      expect(rounds(shell)).toHaveLength(3);
      const detail = (r as { detail?: string; error?: string }).detail ?? JSON.stringify(r);
      expect(detail).toMatch(
        /b: while running the sync job's round \(3 attempts\).*exit 1.*Connection timed out/,
      );
    });
  });

  it('a dry run changes nothing: no pause command, no cleanup, no removal', async () => {
    const shell = new ScriptedShell([['sync-status', () => status(false)]]);
    const s = staged();
    const d = deps(shell, { dryRun: true, staged: s });
    expect(await run(d, 'PAUSE_RSYNC', null)).toMatchObject({
      ok: true,
      detail: 'a changed, b changed',
    });
    expect(await run(d, 'REMOVE_TEMP_FILES', null)).toMatchObject({ ok: true });
    expect(shell.log.every((c) => c.line.includes('sync-status'))).toBe(true);
    expect(s.cleaned).toBe(0);
  });

  it('starts every service even when one never turns healthy, then reports that one', async () => {
    const running = { java: false, python: false } as Record<string, boolean>;
    const shell = new ScriptedShell([
      [
        /([jp])-status/,
        (_n, argv) => ({
          exitCode: running[argv.join(' ').includes('j-status') ? 'java' : 'python'] ? 0 : 3,
        }),
      ],
      [
        /([jp])-start/,
        (_n, argv) => {
          running[argv.join(' ').includes('j-start') ? 'java' : 'python'] = true;
          return {};
        },
      ],
    ]);
    const serviceProbe = {
      healthy: async () => false,
      // java (8080) never opens its port; python (8081) does
      portOpen: async (_h: string, port: number) => port === 8081,
    };
    const r = await run(
      deps(shell, {
        serviceProbe,
        serviceTimeoutMs: 30,
        sleep: (ms) => new Promise((res) => setTimeout(res, Math.min(ms, 5))),
      }),
      'START_SERVICES',
      'b',
    );
    expect(r).toMatchObject({ ok: false, kind: 'waiting' });
    if (!r.ok) expect(r.message).toMatch(/java failed, python changed/);
    expect(running).toEqual({ java: true, python: true });
  });

  it('installs config (unlocked, then locked again) and the python file before the jar', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { createHash } = await import('node:crypto');
    const dir = await mkdtemp(`${tmpdir()}/exec-unit-`);
    const kinds = [
      { kind: 'jar' as const, archivePath: 'payload/app.jar', dest: '/opt/app/app.jar' },
      { kind: 'python' as const, archivePath: 'payload/worker.py', dest: '/opt/app/worker.py' },
      {
        kind: 'config' as const,
        archivePath: 'payload/config/r.properties',
        dest: '/etc/app/r.properties',
        target: 'r.properties',
      },
    ];
    const payload: (StagedPayload & { dest: string })[] = [];
    for (const k of kinds) {
      const path = `${dir}/${k.kind}`;
      await writeFile(path, k.kind);
      const sha256 = createHash('sha256').update(k.kind).digest('hex');
      payload.push({ ...k, path, sha256, size: k.kind.length, mode: 0o644 });
    }
    const locked = { value: true };
    const installed: string[] = [];
    const shaOf = (target: string) => {
      const base = target.replace(/\.pairshift-new$/, '');
      const p = payload.find((x) => x.dest === base)!;
      return installed.includes(base) || target.endsWith('.pairshift-new') ? p.sha256 : 'MISSING';
    };
    const shell = new ScriptedShell([
      [
        '-exec lsattr',
        () => ({
          stdout: `${locked.value ? '----i---------e-------' : '--------------e-------'} /etc/app\n`,
        }),
      ],
      ['lsattr -d --', () => ({ stdout: 'yes\n' })],
      [
        'chattr -R -i',
        () => {
          locked.value = false;
          return {};
        },
      ],
      [
        'chattr -R +i',
        () => {
          locked.value = true;
          return {};
        },
      ],
      // The node-side guard: no target resolves onto a path the pair protects.
      ['readlink -m', () => ({})],
      ['openssl dgst -sha256', (_n, argv) => ({ stdout: `${shaOf(argv.at(-1)!)}\n` })],
      ['cat > "$1"', () => ({})],
      [
        'mv -f -- "$1" "$2"',
        (_n, argv) => {
          const target = argv.at(-2)!;
          // the config folder refuses writes while it is immutable
          if (target.startsWith('/etc/app/') && locked.value)
            return { exitCode: 1, stderr: 'Operation not permitted' };
          installed.push(target);
          return {};
        },
      ],
    ]);
    const r = await run(deps(shell, { staged: staged({ payload }) }), 'INSTALL_PACKAGE', 'b');
    await rm(dir, { recursive: true, force: true });
    expect(r).toMatchObject({ ok: true });
    expect(installed).toEqual(['/etc/app/r.properties', '/opt/app/worker.py', '/opt/app/app.jar']);
    expect(locked.value).toBe(true);
    const guards = shell.log.filter((l) => l.line.includes('readlink -m'));
    expect(guards).toHaveLength(3);
    // Every file is checked against the root key; only the jar may replace paths.appJar.
    expect(guards.every((g) => g.line.includes('/etc/app/root.key'))).toBe(true);
    expect(guards.filter((g) => g.line.includes('/opt/app/app.jar')).length).toBe(2);
  });
});

const SEP = '\x1f';
const N = '\\N';
const primaryRow = ['f', '0/3000100', N, N, N, N, '', '', '1'].join(SEP);
const standbyRow = (replay: string) =>
  ['t', N, '0/3000100', replay, 'streaming', '198.18.9.11', '', 'host=198.18.9.11', N].join(SEP);

/** A reachable node that answers every read the observer makes. */
function nodeAnswers(
  role: 'primary' | 'standby',
  replays: string[] = [],
): [RegExp | string, Handler][] {
  return [
    [/^true$/, () => ({})],
    ['Implementation-Version', () => ({ stdout: '2.0.0\n' })],
    [/[jp]-status/, () => ({})],
    ['db-status', () => ({})],
    ['ka-status', () => ({})],
    [
      'pg_is_in_recovery',
      () => ({
        stdout: `${role === 'primary' ? primaryRow : standbyRow(replays.shift() ?? '0/3000100')}\n`,
      }),
    ],
    [
      'ip -o -4 addr show',
      () => ({
        stdout: role === 'primary' ? '2: eth0    inet 198.18.9.100/24 scope global eth0\n' : '',
      }),
    ],
    ['sync-status', () => status(true)],
    ['-exec lsattr', () => ({ stdout: '----i---------e------- /etc/app\n' })],
    ['lsattr -d --', () => ({ stdout: 'yes\n' })],
    ['pairshift_schema_migrations', () => ({ stdout: `001_a.sql${SEP}${'c'.repeat(64)}\n` })],
  ];
}

class PerNodeShell implements NodeShell {
  constructor(private readonly nodes: Record<string, NodeShell>) {}
  exec(node: string, argv: readonly string[], opts?: ExecOptions) {
    return this.nodes[node]!.exec(node, argv, opts);
  }
}

describe('observePair', () => {
  const observeDeps = (shell: NodeShell) => ({
    pair,
    shell,
    healthProbe: upProbe,
    keepalived: new KeepalivedDriver({ shell, pair }),
    appVersion: async () => '2.0.0',
    migrations: [{ name: '001_a.sql', checksum: 'c'.repeat(64) }],
    probeTimeoutMs: 300,
    vipOutside: async () => ({ kind: 'node' as const, node: 'a', ms: 1 }),
  });

  it('an unreachable node is reachable:false; a stuck probe costs one deadline, not the round', async () => {
    const a = new ScriptedShell([
      // the rsync status command never answers on a
      ['sync-status', () => new Error('unused')],
      ...nodeAnswers('primary'),
    ]);
    const stuck: NodeShell = {
      exec: (node, argv, opts) =>
        argv.join(' ').includes('sync-status') ? new Promise(() => {}) : a.exec(node, argv, opts),
    };
    const b: NodeShell = {
      exec: async (node) => {
        throw new DriverError('cannot connect over SSH: connect ECONNREFUSED', {
          kind: 'transient',
          node,
        });
      },
    };
    const t = performance.now();
    const o = await observePair(observeDeps(new PerNodeShell({ a: stuck, b })), {
      compareConfig: true,
    });
    expect(performance.now() - t).toBeLessThan(2000);
    expect(o.nodes[0]).toMatchObject({
      name: 'a',
      reachable: true,
      installedVersion: '2.0.0',
      appVersion: '2.0.0',
      servicesRunning: true,
      healthy: true,
      dbRole: 'primary',
      holdsVip: true,
      rsyncPaused: false, // unknown reads as "not paused": the planner pauses again
      configLocked: true,
    });
    expect(o.nodes[1]).toMatchObject({
      name: 'b',
      reachable: false,
      dbRole: 'unknown',
      holdsVip: false,
    });
    expect(o.problems).toContain('a: rsync: timed out after 300 ms');
    expect(o.problems.some((p) => p.startsWith('b: ssh: '))).toBe(true);
    expect(o.configConsistent).toBeNull(); // not comparable with b unreachable
    expect(o.migrationsApplied).toBe(true);
    expect(o.vipFromOutside).toBe('a');
  });

  it("measures the standby's lag against the primary, reading the standby again before calling it behind", async () => {
    const a = new ScriptedShell(nodeAnswers('primary'));
    const b = new ScriptedShell(nodeAnswers('standby', ['0/3000000', '0/3000100']));
    const o = await observePair(observeDeps(new PerNodeShell({ a, b })), { compareConfig: false });
    expect(o.nodes[1]).toMatchObject({ dbRole: 'standby', replayLagBytes: 0, holdsVip: false });
    expect(o.nodes[0].replayLagBytes).toBeNull();
    expect(o.configConsistent).toBeNull();
    const lagging = new ScriptedShell(nodeAnswers('standby', ['0/3000000', '0/3000000']));
    const o2 = await observePair(observeDeps(new PerNodeShell({ a, b: lagging })), {
      compareConfig: false,
    });
    expect(o2.nodes[1].replayLagBytes).toBe(256);
    expect(o2.problems).toEqual([]);
    // keepalived's status command is read on both (a dead one is brought back)
    expect(o2.nodes.map((x) => x.keepalivedRunning)).toEqual([true, true]);
    // the VIP seen from outside on b while a holds it inside: said so
    const o3 = await observePair(
      {
        ...observeDeps(new PerNodeShell({ a, b })),
        vipOutside: async () => ({ kind: 'node', node: 'b', ms: 1 }),
      },
      { compareConfig: false },
    );
    expect(o3.problems).toContain('the VIP answers from b outside, while a holds it inside');
  });

  it('migrations count as applied only with the same checksum on the primary', async () => {
    const a = new ScriptedShell(nodeAnswers('primary'));
    const b = new ScriptedShell(nodeAnswers('standby'));
    const d = {
      ...observeDeps(new PerNodeShell({ a, b })),
      migrations: [{ name: '001_a.sql', checksum: 'd'.repeat(64) }],
    };
    expect((await observePair(d, { compareConfig: false })).migrationsApplied).toBe(false);
  });

  it('parses the jar version and the /version answer', () => {
    expect(parseInstalledVersion('2.0.0\n')).toBe('2.0.0');
    expect(parseInstalledVersion('MISSING\n')).toBeNull();
    expect(parseInstalledVersion('NONE\n')).toBeNull();
    expect(parseVersionAnswer('{"status":"fail","version":"4.0.0","reason":"broken build"}')).toBe(
      '4.0.0',
    );
    expect(parseVersionAnswer('1.0.0\n')).toBe('1.0.0');
    expect(parseVersionAnswer('<html>')).toBeNull();
  });
});

describe('the observer shell', () => {
  it('runs at most N commands at once per node, and every one of them', async () => {
    let now = 0;
    let peak = 0;
    const slow: NodeShell = {
      async exec(node) {
        now += 1;
        peak = Math.max(peak, now);
        await new Promise((r) => setTimeout(r, 5));
        now -= 1;
        return { exitCode: 0, signal: undefined, stdout: node, stderr: '', durationMs: 5 };
      },
    };
    const limited = limitPerNode(slow, 3);
    const all = await Promise.all(Array.from({ length: 10 }, () => limited.exec('a', ['true'])));
    expect(all).toHaveLength(10);
    expect(peak).toBe(3);
  });

  it('caps each command near the probe deadline (5x for commands that ask for long)', async () => {
    const seen: (number | undefined)[] = [];
    const spy: NodeShell = {
      async exec(_n, _a, opts) {
        seen.push(opts?.timeoutMs);
        return { exitCode: 0, signal: undefined, stdout: '', stderr: '', durationMs: 0 };
      },
    };
    const capped = capTimeouts(spy, 2000);
    await capped.exec('a', ['x']);
    await capped.exec('a', ['x'], { timeoutMs: 500 });
    await capped.exec('a', ['x'], { timeoutMs: 120_000 });
    expect(seen).toEqual([2000, 500, 10_000]);
  });
});
