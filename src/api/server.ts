// Serving the API on a host:port (pairshift operator --listen). Header and
// request timeouts are bounded so slow clients cannot hold sockets open.

import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ApiDeps, createApiApp } from './app.js';
import { listenOn } from './listen.js';
import { ApiProblem, PROBLEM_MEDIA_TYPE, toProblem } from './problems.js';

export interface RunningApi {
  readonly server: Server;
  readonly url: string;
  /** Waits until api_request_log holds every request answered so far. */
  flushRequestLog(): Promise<void>;
  /**
   * Graceful shutdown: new connections are refused at once; requests in
   * flight (an upload streaming in) may finish until the deadline. Resolves
   * with how many were still running then (0: a clean drain). stop() after.
   */
  drain(deadlineMs: number): Promise<number>;
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

/** Header fields a request may carry; at the limit it is refused (431). */
const MAX_HEADERS = 100;

export async function startApiServer(listen: string, deps: ApiDeps): Promise<RunningApi> {
  const { host, port } = parseListen(listen);
  const app = createApiApp(deps);
  const server = createServer(
    {
      maxHeaderSize: 16 * 1024,
      requestTimeout: 60_000,
      headersTimeout: 10_000,
      // node's own answer to a missing Host is a bare 400; ours is a problem.
      requireHostHeader: false,
    },
    (req, res) => {
      if (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 && !req.headers.host) {
        const p = new ApiProblem('PS-1001', 'an HTTP/1.1 request needs a Host header');
        res.shouldKeepAlive = false;
        res.writeHead(400, { 'Content-Type': PROBLEM_MEDIA_TYPE, Connection: 'close' });
        res.end(JSON.stringify(toProblem(p, '/')));
        return;
      }
      // node keeps the first maxHeadersCount headers and drops the rest
      // without a word; a request that reached the limit is refused whole
      // rather than judged on part of what it said.
      if (req.rawHeaders.length / 2 >= MAX_HEADERS) {
        const p = new ApiProblem(
          'PS-1702',
          `the request has ${MAX_HEADERS} or more header fields; send fewer`,
        );
        res.shouldKeepAlive = false;
        res.writeHead(p.status, { 'Content-Type': PROBLEM_MEDIA_TYPE, Connection: 'close' });
        res.end(JSON.stringify(toProblem(p, '/')));
        return;
      }
      app(req, res);
    },
  );
  server.maxHeadersCount = MAX_HEADERS;
  server.keepAliveTimeout = 5_000;
  // No automatic 100 Continue: the token gate sends it once the token is
  // good, so a refused client never starts sending its body (app.ts).
  server.on('checkContinue', (req, res) => server.emit('request', req, res));
  // Every socket, including ones node handed over raw (CONNECT, parse
  // errors), so stop() leaves nothing open.
  const sockets = new Set<Duplex>();
  // Requests between arrival and their response's end: what drain() waits for.
  let inFlight = 0;
  server.on('request', (_req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
  });
  server.on('connection', (s: Duplex) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('clientError', answerUnparsable);
  // CONNECT never reaches express: node hands over the raw socket.
  server.on('connect', (_req, socket: Duplex) =>
    answerRaw(
      socket,
      new ApiProblem('PS-1401', 'CONNECT is not supported; this is not a proxy'),
      'Method Not Allowed',
    ),
  );
  const url = await listenOn(server, host, port);
  return {
    server,
    url,
    flushRequestLog: () => app.flushRequestLog(),
    async drain(deadlineMs) {
      // close() stops the listener: a new connection is refused by the
      // kernel from here on, while open sockets carry on.
      server.close();
      const until = Date.now() + deadlineMs;
      for (;;) {
        // Keep-alive sockets between requests would otherwise hold the
        // server open; a socket mid-request is not idle and is left alone.
        server.closeIdleConnections();
        if (inFlight === 0 || Date.now() >= until) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      return inFlight;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      await app.close();
    },
  };
}

/**
 * A request node's HTTP parser refused (bad request line, bad header, too
 * many header bytes) never reaches express; it still gets a problem+json
 * answer rather than node's bare 400. It cannot be recorded in
 * api_request_log: there is no method or path to record.
 */
function answerUnparsable(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const p =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? // Node 24's parser also stops at maxHeadersCount (Node 20 dropped the rest)
        new ApiProblem(
          'PS-1702',
          `the request headers are larger than 16 KiB or have ${MAX_HEADERS} or more header fields; send fewer`,
        )
      : new ApiProblem('PS-1001', 'the request is not valid HTTP/1.1');
  answerRaw(socket, p, p.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request');
}

function answerRaw(socket: Duplex, p: ApiProblem, reason: string): void {
  const body = JSON.stringify(toProblem(p, '/'));
  socket.end(
    `HTTP/1.1 ${p.status} ${reason}\r\n` +
      `Content-Type: ${PROBLEM_MEDIA_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
