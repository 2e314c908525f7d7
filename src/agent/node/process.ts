// Running the node's own tools (psql, the rsync status command) with a
// deadline and an output cap; never through a shell unless asked for.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const MAX_OUTPUT = 1024 * 1024;

/** uid and gid of an OS user, from /etc/passwd (no dependency, no `id`). */
export function userIds(name: string, passwd = '/etc/passwd'): { uid: number; gid: number } {
  for (const line of readFileSync(passwd, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new Error(`no OS user "${name}" in ${passwd}`);
}

export function runProgram(
  file: string,
  args: readonly string[],
  opts: { signal?: AbortSignal; env?: NodeJS.ProcessEnv; user?: string | undefined } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let ids: { uid: number; gid: number } | undefined;
    try {
      // only root can switch user; anyone else runs the tool as themselves
      if (opts.user && process.getuid?.() === 0) ids = userIds(opts.user);
    } catch (err) {
      reject(err);
      return;
    }
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
      // a different user may not be able to enter the agent's cwd
      cwd: '/',
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    const take = (into: Buffer[]) => (b: Buffer) => {
      size += b.length;
      if (size <= MAX_OUTPUT) into.push(b);
    };
    child.stdout.on('data', take(out));
    child.stderr.on('data', take(err));
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.once('close', (code) => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}

export function firstLine(text: string): string {
  return (text.trim().split('\n')[0] ?? '').slice(0, 300);
}
