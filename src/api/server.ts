// Serving the API on a host:port (pairshift operator --listen). Header and
// request timeouts are bounded so slow clients cannot hold sockets open.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ApiDeps, createApiApp } from './app.js';

export interface RunningApi {
  readonly server: Server;
  readonly url: string;
  /** Waits until api_request_log holds every request answered so far. */
  flushRequestLog(): Promise<void>;
  stop(): Promise<void>;
}

/** "127.0.0.1:8080", "[::1]:8080", ":8080" (loopback) -> host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(`--listen ${JSON.stringify(listen)}: expected host:port like 127.0.0.1:8080`);
  }
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export async function startApiServer(listen: string, deps: ApiDeps): Promise<RunningApi> {
  const { host, port } = parseListen(listen);
  const app = createApiApp(deps);
  const server = createServer(
    { maxHeaderSize: 16 * 1024, requestTimeout: 60_000, headersTimeout: 10_000 },
    app,
  );
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    server,
    url: `http://${shown}:${addr.port}`,
    flushRequestLog: () => app.flushRequestLog(),
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await app.flushRequestLog();
    },
  };
}
