// Probes and metrics on their own port (pairshift operator --metrics-listen):
// /livez, /readyz and /metrics. No token and no allowlist: the kubelet and
// Prometheus have neither, and nothing served here is secret (check names,
// UP/DOWN, bounded reason codes, numbers; never an error message, a path or
// a URL). Plain node:http rather than the API's express stack: these answer
// even when the API is off, and a probe must not queue behind an upload.
//
// /livez is "restart me if this fails": it reads memory only (the event loop
//   answered, the reconcile loop is not dead), never the store or the
//   Kubernetes API, so an outage of either does not get the pod killed.
// /readyz is "count me in": the store answers a cheap query within a short
//   time, the source follows its resources, and the process is not shutting
//   down (it flips to 503 at the first moment of a SIGTERM).

import { createServer, type Server } from 'node:http';
import type { SourceState } from '../reconciler/source.js';
import { listenOn } from './listen.js';
import { parseListen } from './server.js';

/** /readyz's store query must answer within this; a slow store is not ready. */
const READY_STORE_TIMEOUT_MS = 1_000;
/** /livez fails when the event loop did not tick for this long. */
const LIVE_LOOP_STALL_MS = 10_000;

export interface ProbeCheck {
  readonly name: string;
  readonly ok: boolean;
  /** A bounded code saying why not (e.g. "timeout", "stopped"); never free text. */
  readonly reason?: string;
}

export interface ProbeDeps {
  /** Memory-only checks for /livez. */
  live(): readonly ProbeCheck[];
  /** Checks for /readyz (may query the store; bounded by its own timeout). */
  ready(): Promise<readonly ProbeCheck[]>;
  /** The exposition text; absent: no /metrics. */
  metrics?(): Promise<{ contentType: string; body: string }>;
}

export interface RunningProbes {
  readonly server: Server;
  readonly url: string;
  stop(): Promise<void>;
}

export async function startProbesServer(listen: string, deps: ProbeDeps): Promise<RunningProbes> {
  const { host, port } = parseListen(listen);
  const server = createServer({ headersTimeout: 5_000, requestTimeout: 10_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('GET only\n');
      return;
    }
    const answer = async () => {
      if (path === '/livez' || path === '/readyz') {
        const checks = path === '/livez' ? deps.live() : await deps.ready();
        const ok = checks.every((c) => c.ok);
        res.writeHead(ok ? 200 : 503, {
          'Content-Type': 'application/json',
          'Cache-Control': 'no-store',
        });
        res.end(JSON.stringify({ status: ok ? 'ok' : 'failing', checks }));
        return;
      }
      if (path === '/metrics' && deps.metrics) {
        const m = await deps.metrics();
        res.writeHead(200, { 'Content-Type': m.contentType, 'Cache-Control': 'no-store' });
        res.end(m.body);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    };
    answer().catch(() => {
      // Nothing of the error is shown: this port has no token.
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  server.keepAliveTimeout = 5_000;
  const url = await listenOn(server, host, port);
  return {
    server,
    url,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A store check: a cheap query that must answer within `ms`; the reason is a code. */
export async function storeCheck(query: () => Promise<unknown>, ms: number): Promise<ProbeCheck> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timedOut = Symbol('timeout');
    const r = await Promise.race([
      query().then(() => null),
      new Promise<symbol>((resolve) => {
        timer = setTimeout(() => resolve(timedOut), ms);
      }),
    ]);
    return r === timedOut
      ? { name: 'store', ok: false, reason: 'timeout' }
      : { name: 'store', ok: true };
  } catch {
    return { name: 'store', ok: false, reason: 'error' };
  } finally {
    clearTimeout(timer);
  }
}

/** What the operator's probes read; all of it from memory except the store query. */
export interface OperatorProbeState {
  storeQuery(): Promise<unknown>;
  sourceState(): SourceState;
  /** False once the operator began to stop its source. */
  sourceStarted(): boolean;
  loopStopped(): boolean;
  draining(): boolean;
  metrics?(): Promise<{ contentType: string; body: string }>;
}

/**
 * The operator's /livez and /readyz. The event loop's heartbeat is a timer
 * (unref'd, so it never keeps the process alive); stop() clears it.
 */
export function operatorProbes(s: OperatorProbeState): ProbeDeps & { stop(): void } {
  let tick = Date.now();
  const beat = setInterval(() => {
    tick = Date.now();
  }, 1000);
  beat.unref();
  return {
    live: () => [
      { name: 'event_loop', ok: Date.now() - tick < LIVE_LOOP_STALL_MS },
      // Stopped only at the very end of a shutdown, or when it died.
      {
        name: 'reconcile_loop',
        ok: !s.loopStopped(),
        ...(s.loopStopped() ? { reason: 'stopped' } : {}),
      },
    ],
    ready: async () => {
      const src = s.sourceState();
      const following = s.sourceStarted() && src.running && src.problem === undefined;
      const draining = s.draining();
      return [
        await storeCheck(s.storeQuery, READY_STORE_TIMEOUT_MS),
        { name: 'source', ok: following, ...(following ? {} : { reason: 'not_following' }) },
        { name: 'shutdown', ok: !draining, ...(draining ? { reason: 'shutting_down' } : {}) },
      ];
    },
    ...(s.metrics ? { metrics: s.metrics } : {}),
    stop: () => clearInterval(beat),
  };
}
