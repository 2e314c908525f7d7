// Running commands on the host and inside lab namespaces. Every failure
// names the command, the exit status and the tail of stderr, so a failed
// `lab up` can say exactly what broke.
import { spawn } from 'node:child_process';

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** do not throw on a non-zero exit */
  allowFail?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | null,
    readonly stderrTail: string,
  ) {
    const shown = argv.join(' ');
    super(
      `${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown} exited ${code ?? 'by timeout/signal'}${stderrTail ? `: ${stderrTail}` : ''}`,
    );
  }
}

export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // stdin is a pipe only when we feed it; daemons started through here
    // must redirect their own output (a daemon holding our pipe open would
    // keep this promise pending until the timeout).
    const child = spawn(cmd, args, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: '/',
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const result = { code: code ?? -1, stdout, stderr };
      if (code === 0 || opts.allowFail) resolve(result);
      else reject(new CommandError([cmd, ...args], code, tail(stderr || stdout)));
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export function tail(text: string, max = 400): string {
  const t = text.trim().replace(/\s*\n\s*/g, ' | ');
  return t.length > max ? `...${t.slice(-max)}` : t;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `check` until it returns a value (not undefined) or time runs out. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastErr });
    }
    await sleep(intervalMs);
  }
}
