// Start one of the app's services as a child process and wait until it
// answers HTTP, plus a tiny HTTP GET with a timeout. Used by the tests and
// usable by the lab for services it runs directly (not through ssh).
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';

export interface HttpResult {
  status: number;
  body: string;
}

/** One request on a fresh connection (no keep-alive), so each call is a new TCP handshake. */
export function httpGet(
  port: number,
  path: string,
  method = 'GET',
  host = '127.0.0.1',
  timeoutMs = 5000,
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method, agent: false, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}:${port}${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Service {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

/** Spawns argv and resolves once GET /version answers on host:port (or rejects with its output). */
export async function startService(
  argv: string[],
  port: number,
  host = '127.0.0.1',
  timeoutMs = 30_000,
): Promise<Service> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const service: Service = {
    child,
    output: () => out,
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone)
      throw new Error(`${argv.join(' ')} exited before listening: ${out.trim().slice(-500)}`);
    try {
      await httpGet(port, '/version', 'GET', host, 1000);
      return service;
    } catch {
      if (Date.now() > deadline) {
        await service.stop();
        throw new Error(
          `${argv.join(' ')} did not answer on ${host}:${port} within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
