// The SSH transport against a real OpenSSH server on loopback.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import {
  SshConnection,
  type SshEndpoint,
  type SshTimeouts,
} from '../../src/drivers/ssh/connection.js';
import { authorizedKeyLine } from '../../src/drivers/ssh/host-key.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { failureOf } from '../support/driver-failure.js';
import { freePort } from '../support/pg-cluster.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

jest.setTimeout(60_000);

const fast: SshTimeouts = {
  connectTimeoutMs: 1500,
  keepaliveIntervalMs: 200,
  keepaliveCountMax: 2,
  commandTimeoutMs: 5000,
};

let sshd: TestSshd;
const endpoint = (over: Partial<SshEndpoint> = {}): SshEndpoint => ({
  node: 'node-a',
  host: '127.0.0.1',
  port: sshd.port,
  username: 'root',
  privateKey: sshd.clientKey,
  hostKeyFingerprints: [sshd.hostFingerprint],
  ...over,
});

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd.stop());

describe('commands', () => {
  let conn: SshConnection;
  beforeAll(async () => {
    conn = await SshConnection.open(endpoint(), fast);
  });
  afterAll(() => conn.close());

  test('runs a command and returns its output', async () => {
    const r = await conn.exec(['sh', '-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
  });

  test('stdin reaches the command', async () => {
    const r = await conn.exec(['wc', '-c'], { stdin: 'twelve bytes' });
    expect(r.stdout.trim()).toBe('12');
  });

  test('a failing command is a DriverError with node, command, exit code and stderr tail', async () => {
    const e = await failureOf(conn.exec(['sh', '-c', 'echo "disk full" >&2; exit 3']));
    expect(e).toMatchObject({
      kind: 'terminal',
      node: 'node-a',
      exitCode: 3,
      stderrTail: 'disk full',
    });
    expect(e.command).toBe(`sh -c 'echo "disk full" >&2; exit 3'`);
    expect(e.message).toBe('node-a: command failed (exit 3): disk full');
    expect(e.within('pausing rsync').message).toBe(
      'node-a: while pausing rsync: command failed (exit 3): disk full',
    );
  });

  test('exit codes declared as answers are not failures', async () => {
    const r = await conn.exec(['test', '-e', '/nonexistent'], { okExitCodes: [1] });
    expect(r.exitCode).toBe(1);
  });

  test('hostile arguments arrive byte for byte', async () => {
    const hostile = fc.constantFrom(
      "'",
      '"',
      '$(id)',
      '`id`',
      ';',
      '&&',
      '|',
      '\n',
      '-',
      '--',
      '-rf',
      '\\',
      '*',
      ' ',
      '$HOME',
      '#',
      '!',
      '~',
      '>',
      '<',
      '{a,b}',
      '\t',
    );
    const piece = fc.oneof(
      hostile,
      fc.string({ maxLength: 6 }).filter((s) => !s.includes('\0')),
    );
    const arg = fc.array(piece, { minLength: 1, maxLength: 5 }).map((p) => p.join(''));
    await fc.assert(
      fc.asyncProperty(fc.array(arg, { minLength: 1, maxLength: 6 }), async (args) => {
        const r = await conn.exec(['printf', '%s\\0', ...args]);
        expect(r.stdout.split('\0').slice(0, -1)).toEqual(args);
      }),
      { numRuns: 60 },
    );
    // 60 real SSH round trips: about 40 s here on a quiet machine and past
    // jest's 60 s under load (a lab beside it); the bound is not a speed check.
  }, 180_000);

  test('a command past its deadline is killed on the node and reported', async () => {
    const marker = `${7 + Math.random()}`.slice(0, 8);
    const started = Date.now();
    const e = await failureOf(conn.exec(['sleep', marker], { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(e.message).toContain('timed out after 300 ms');
    expect(e).toMatchObject({ kind: 'transient', timedOut: true });
    await new Promise((r) => setTimeout(r, 500));
    const left = execFileSync('sh', ['-c', `pgrep -f "^sleep ${marker}$" || true`], {
      encoding: 'utf8',
    });
    expect(left.trim()).toBe('');
  });
});

describe('host keys are pinned', () => {
  test('an unknown (or changed) host key is refused', async () => {
    const e = await failureOf(
      SshConnection.open(
        endpoint({ hostKeyFingerprints: ['SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'] }),
        fast,
      ),
    );
    expect(e.kind).toBe('terminal');
    expect(e.message).toContain(`host key ${sshd.hostFingerprint} is not pinned for this node`);
  });

  test('no pinned key at all is refused before connecting (no trust on first use)', async () => {
    await expect(SshConnection.open(endpoint({ hostKeyFingerprints: [] }), fast)).rejects.toThrow(
      'refusing to trust a host on first use',
    );
  });

  test('a fingerprint written without its prefix or with padding still matches', async () => {
    const bare = sshd.hostFingerprint.replace('SHA256:', '');
    const conn = await SshConnection.open(endpoint({ hostKeyFingerprints: [`${bare}=`] }), fast);
    conn.close();
  });
});

describe('unreachable and half-open nodes fail instead of hanging', () => {
  test('a refused port is a transient error', async () => {
    const e = await failureOf(SshConnection.open(endpoint({ port: await freePort() }), fast));
    expect(e).toMatchObject({ kind: 'transient', timedOut: false });
    expect(e.message).toMatch(/^node-a: cannot connect over SSH: .*ECONNREFUSED/);
  });

  test('a peer that accepts but never speaks hits the connect deadline', async () => {
    const silent: Server = createServer(() => {});
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    const started = Date.now();
    const e = await failureOf(SshConnection.open(endpoint({ port }), fast));
    expect(Date.now() - started).toBeLessThan(fast.connectTimeoutMs + 1000);
    expect(e).toMatchObject({ kind: 'transient', timedOut: true });
    silent.close();
  });

  test('a connection that goes silent is closed by keepalives; the pool reconnects', async () => {
    const proxy = await startTcpProxy(sshd.port);
    const pool = new SshPool([endpoint({ port: proxy.port })], {
      ...fast,
      commandTimeoutMs: 20_000,
    });
    expect((await pool.exec('node-a', ['echo', 'hi'])).stdout).toBe('hi\n');
    proxy.blackhole();
    const started = Date.now();
    const e = await failureOf(pool.exec('node-a', ['sleep', '10']));
    // keepalive 200 ms x 2 detects it long before the 20 s command deadline
    expect(Date.now() - started).toBeLessThan(5000);
    expect(e.kind).toBe('transient');
    proxy.restore();
    expect((await pool.exec('node-a', ['echo', 'back'])).stdout).toBe('back\n');
    expect(pool.opened.get('node-a')).toBe(2);
    await pool.close();
    await proxy.stop();
  });
  test('sshd killed under a running command: it fails at once, and so does the next', async () => {
    // The relay stands in for sshd: stopping it resets every connection and
    // closes the port, as a killed sshd does.
    const proxy = await startTcpProxy(sshd.port);
    const pool = new SshPool([endpoint({ port: proxy.port })], {
      ...fast,
      commandTimeoutMs: 20_000,
    });
    expect((await pool.exec('node-a', ['echo', 'up'])).stdout).toBe('up\n');
    const running = failureOf(pool.exec('node-a', ['sleep', '15']));
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await proxy.stop();
    const e = await running;
    expect(Date.now() - started).toBeLessThan(3000);
    expect(e.kind).toBe('transient');
    const next = await failureOf(pool.exec('node-a', ['echo', 'again']));
    expect(next.kind).toBe('transient');
    expect(next.message).toMatch(/ECONNREFUSED/);
    await pool.close();
  });
});

describe('the pool', () => {
  test('reuses one connection per node, also for concurrent callers', async () => {
    const pool = new SshPool([endpoint()], fast);
    const results = await Promise.all(
      Array.from({ length: 5 }, () => pool.exec('node-a', ['sh', '-c', 'echo $SSH_CONNECTION'])),
    );
    const clientPorts = new Set(results.map((r) => r.stdout.split(' ')[1]));
    expect(clientPorts.size).toBe(1);
    expect(pool.opened.get('node-a')).toBe(1);
    await pool.close();
  });

  test('an unknown node is a terminal error', async () => {
    const pool = new SshPool([endpoint()], fast);
    await expect(pool.exec('node-z', ['true'])).rejects.toMatchObject({ kind: 'terminal' });
  });
});

describe('IP allowlist (task list 2.7.2)', () => {
  test('a key restricted to other addresses cannot log in; one that lists ours can', async () => {
    const elsewhere = await startSshd({
      authorizedKeyLine: (pub) => authorizedKeyLine(pub, ['198.18.0.0/24']),
    });
    const here = await startSshd({
      authorizedKeyLine: (pub) => authorizedKeyLine(pub, ['127.0.0.1']),
    });
    try {
      const refused = await failureOf(
        SshConnection.open(
          endpoint({
            port: elsewhere.port,
            privateKey: elsewhere.clientKey,
            hostKeyFingerprints: [elsewhere.hostFingerprint],
          }),
          fast,
        ),
      );
      expect(refused.kind).toBe('terminal');
      expect(refused.message).toContain('authentication');
      const ok = await SshConnection.open(
        endpoint({
          port: here.port,
          privateKey: here.clientKey,
          hostKeyFingerprints: [here.hostFingerprint],
        }),
        fast,
      );
      expect((await ok.exec(['echo', 'allowed'])).stdout).toBe('allowed\n');
      ok.close();
    } finally {
      await elsewhere.stop();
      await here.stop();
    }
  });

  test('allowlist entries must be addresses', () => {
    expect(() => authorizedKeyLine('ssh-ed25519 AAAA x', ['*'])).toThrow(
      'not an IP address or CIDR range',
    );
  });
});
