// `serve`: the HTTP face of the agent. GET /health answers 200 when every
// check is UP and 503 otherwise, with the report as JSON either way; callers
// outside the allowlist get 403 before any check runs.
import { createServer, type Server } from 'node:http';
import { Allowlist } from './cidr.js';
import type { AgentConfig } from './config.js';
import type { HealthChecker } from './health.js';

function send(res: import('node:http').ServerResponse, code: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(code, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function healthServer(cfg: AgentConfig, checker: HealthChecker): Server {
  const allow = new Allowlist(cfg.allow);
  const server = createServer((req, res) => {
    const client = req.socket.remoteAddress;
    if (!allow.allows(client)) {
      send(res, 403, { error: `client ${client ?? 'unknown'} is not in this agent's allowlist` });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/health') {
      send(res, 404, { error: `no such path ${path}; try GET /health` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, { error: `${req.method} not allowed on /health` });
      return;
    }
    checker.report().then(
      (report) => send(res, report.status === 'UP' ? 200 : 503, report),
      (err) => send(res, 500, { error: (err as Error).message }),
    );
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;
  return server;
}

export function listen(server: Server, cfg: AgentConfig): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.listen.port, cfg.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
