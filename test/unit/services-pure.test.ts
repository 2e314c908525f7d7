// The services driver without a network: status exit codes, the kept file's
// name, waiting with a deadline, and the node-side hash check of an install.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { DriverError } from '../../src/drivers/errors.js';
import {
  ensureFileInstalled,
  keptName,
  payloadTargets,
} from '../../src/drivers/services/install.js';
import {
  ensureServiceStarted,
  startWait,
  stateFromStatusExit,
} from '../../src/drivers/services/services.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import type { HAPair } from '../../src/inventory/hapair.js';

const ok = (stdout = '', exitCode = 0): ExecResult => ({
  exitCode,
  signal: undefined,
  stdout,
  stderr: '',
  durationMs: 1,
});

describe('status exit codes (LSB, systemctl)', () => {
  it('maps 0 to running, 1-3 to stopped, others to unknown', () => {
    expect(stateFromStatusExit(0)).toBe('running');
    expect([1, 2, 3].map(stateFromStatusExit)).toEqual(['stopped', 'stopped', 'stopped']);
    expect(stateFromStatusExit(4)).toBeUndefined();
    expect(stateFromStatusExit(null)).toBeUndefined();
  });
});

describe('kept file names', () => {
  it('uses the previous version, else the old hash', () => {
    expect(keptName('/opt/app/app.jar', '1.0.0', 'ab'.repeat(32))).toBe('/opt/app/app.jar.1.0.0');
    expect(keptName('/opt/app/app.jar', undefined, 'ab'.repeat(32))).toBe(
      '/opt/app/app.jar.sha256-abababababab',
    );
    expect(() => keptName('/opt/app/app.jar', '../../etc/passwd', 'ab')).toThrow(
      /cannot name the kept file/,
    );
    expect(payloadTargets({ appJar: '/opt/app/app.jar', appDir: '/opt/app/' })).toEqual({
      'payload/app.jar': '/opt/app/app.jar',
      'payload/worker.py': '/opt/app/worker.py',
    });
  });
});

describe('start with a deadline', () => {
  it('is a waiting error when the service never answers', async () => {
    const pair = {
      spec: {
        nodes: [{ name: 'a', address: '198.18.0.11' }],
        services: [
          {
            name: 'java',
            port: 8080,
            healthPath: '/health',
            start: 'START',
            stop: 'STOP',
            status: 'STATUS',
          },
        ],
      },
    } as unknown as HAPair;
    let started = false;
    const shell: NodeShell = {
      async exec(_n, argv) {
        if (argv[2] === 'START') started = true;
        return ok('', argv[2] === 'STATUS' && !started ? 3 : 0);
      },
    };
    let t = 0;
    const err = await ensureServiceStarted(
      {
        pair,
        shell,
        probe: { healthy: async () => false, portOpen: async () => false },
        now: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      { node: 'a', service: 'java', timeoutMs: 5000 },
    ).catch((e: unknown) => e as DriverError);
    expect(started).toBe(true);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).kind).toBe('waiting');
    expect((err as DriverError).message).toBe(
      'a: while starting service java: service java running with /health answering 200 on port 8080 did not happen within 5000 ms',
    );
  });
});

describe('the wait for a started service derives from the health-check settings (issue 12.5)', () => {
  it('one health-check timeout for the node, each poll a retry share of it', () => {
    // defaults: 30 s timeout, 3 retries -> 30 s to answer, 10 s per poll
    expect(startWait(BUILT_IN_DEFAULTS)).toEqual({ readyWithinMs: 30_000, probeTimeoutMs: 10_000 });
    expect(startWait({ healthCheckTimeout: 12_000, healthCheckRetries: 4 })).toEqual({
      readyWithinMs: 12_000,
      probeTimeoutMs: 3000,
    });
    // bounded both ways: a long timeout does not make one poll wait a minute,
    // zero retries are one poll, a tiny timeout still lets a poll answer
    expect(startWait({ healthCheckTimeout: 120_000, healthCheckRetries: 2 }).probeTimeoutMs).toBe(
      10_000,
    );
    expect(startWait({ healthCheckTimeout: 4000, healthCheckRetries: 0 }).probeTimeoutMs).toBe(
      4000,
    );
    expect(startWait({ healthCheckTimeout: 600, healthCheckRetries: 3 }).probeTimeoutMs).toBe(500);
  });

  it('waits readyWithinMs (not the command timeout) and gives each poll probeTimeoutMs', async () => {
    const pair = {
      metadata: { name: 'p' },
      spec: {
        nodes: [{ name: 'a', address: '127.0.0.1' }],
        services: [
          {
            name: 'java',
            port: 8080,
            healthPath: '/health',
            start: 'j-start',
            stop: 'j-stop',
            status: 'j-status',
          },
        ],
      },
    } as unknown as HAPair;
    const shell: NodeShell = {
      exec: async () => ok(), // status 0: running already, so only the wait is tested
    };
    let t = 0;
    const polls: number[] = [];
    const err = await ensureServiceStarted(
      {
        pair,
        shell,
        // a slow /health: every poll runs out its deadline
        probe: {
          healthy: async (_h, _p, _path, ms) => {
            polls.push(ms);
            t += ms;
            return false;
          },
          portOpen: async () => false,
        },
        now: () => t,
        sleep: async (ms) => {
          t += ms;
        },
      },
      {
        node: 'a',
        service: 'java',
        timeoutMs: 60_000,
        readyWithinMs: 30_000,
        probeTimeoutMs: 10_000,
      },
    ).catch((e: unknown) => e as DriverError);
    expect((err as DriverError).message).toMatch(/did not happen within 30000 ms/);
    expect(polls.every((ms) => ms === 10_000)).toBe(true);
    // about the configured time: the first look, the 30 s, at most one poll
    // past it; not the 60 s command timeout
    expect(t).toBeGreaterThanOrEqual(30_000);
    expect(t).toBeLessThanOrEqual(10_000 + 30_000 + 10_000 + 500);
  });
});

describe('install', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pairshift-install-unit-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A node whose copy arrives damaged: the node-side check must catch it. */
  class DamagingNode implements NodeShell {
    files = new Map<string, Buffer>([['/opt/app/app.jar', Buffer.from('old')]]);
    async exec(_n: string, argv: readonly string[], o?: ExecOptions): Promise<ExecResult> {
      const script = argv[2]!;
      const arg = argv[4]!;
      if (script.includes('openssl dgst')) {
        const f = this.files.get(arg);
        return ok(f ? `${createHash('sha256').update(f).digest('hex')}\n` : 'MISSING\n');
      }
      if (script.includes('cat > "$1"')) {
        const data = Buffer.from(o!.stdin as Buffer);
        data[0] = (data[0]! + 1) % 256; // one byte changed on the way
        this.files.set(arg, data);
        return ok();
      }
      if (script.startsWith('rm -f')) {
        this.files.delete(arg);
        return ok();
      }
      throw new Error(`unexpected script ${script}`);
    }
  }

  it('refuses a copy damaged in transfer and removes it', async () => {
    const local = join(dir, 'app.jar');
    writeFileSync(local, 'new release');
    const sha = createHash('sha256').update('new release').digest('hex');
    const node = new DamagingNode();
    const err = await ensureFileInstalled(
      { shell: node },
      { node: 'a', localPath: local, sha256: sha, target: '/opt/app/app.jar' },
    ).catch((e: unknown) => e as DriverError);
    expect((err as DriverError).kind).toBe('transient');
    expect((err as DriverError).message).toMatch(
      /^a: while installing app\.jar as \/opt\/app\/app\.jar: the copy on the node has sha256 .* \(damaged in transfer; removed\)/,
    );
    expect([...node.files.keys()]).toEqual(['/opt/app/app.jar']);
    expect(node.files.get('/opt/app/app.jar')!.toString()).toBe('old');
  });

  it('refuses a malformed expected hash before touching the node', async () => {
    const node = new DamagingNode();
    await expect(
      ensureFileInstalled(
        { shell: node },
        { node: 'a', localPath: '/nonexistent', sha256: 'abc', target: '/opt/app/app.jar' },
      ),
    ).rejects.toThrow(
      /^a: while installing nonexistent as \/opt\/app\/app\.jar: expected a sha256 of 64 hex digits/,
    );
  });
});
