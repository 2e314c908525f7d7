// A real OpenSSH server for tests, on 127.0.0.1 and a free port, with its own
// host key and authorized key; run as root (sshd needs it). stop() kills it
// and removes its folder.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintOfPublicKeyLine } from '../../src/drivers/ssh/host-key.js';
import { freePort } from './pg-cluster.js';

export interface TestSshd {
  readonly port: number;
  readonly dir: string;
  readonly clientKey: string;
  readonly clientPublicKey: string;
  readonly hostFingerprint: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
  /** Pauses/resumes the server (SIGSTOP/SIGCONT): a half-open peer. */
  freeze(): void;
  thaw(): void;
}

export function keygen(path: string, comment = 'pairshift-test'): { priv: string; pub: string } {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return { priv: readFileSync(path, 'utf8'), pub: readFileSync(`${path}.pub`, 'utf8').trim() };
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd did not start on port ${port}`);
}

export async function startSshd(
  opts: { authorizedKeyLine?: (pub: string) => string } = {},
): Promise<TestSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-sshd-'));
  mkdirSync('/run/sshd', { recursive: true });
  const host = keygen(join(dir, 'host_ed25519'));
  const client = keygen(join(dir, 'client_ed25519'));
  writeFileSync(
    join(dir, 'authorized_keys'),
    `${opts.authorizedKeyLine?.(client.pub) ?? client.pub}\n`,
    { mode: 0o600 },
  );
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'StrictModes no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const proc = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: 'ignore',
  });
  await waitForPort(port, 5000);
  return {
    port,
    dir,
    clientKey: client.priv,
    clientPublicKey: client.pub,
    hostFingerprint: fingerprintOfPublicKeyLine(host.pub),
    process: proc,
    freeze: () => proc.kill('SIGSTOP'),
    thaw: () => proc.kill('SIGCONT'),
    async stop() {
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
