// One HTTP health probe: a GET over a brand-new TCP connection (agent: false,
// Connection: close), so a VIP move is seen at once instead of being hidden
// behind a kept-alive socket to the old holder. Up only on status 200 within
// the timeout; the timeout covers connect, request and the whole body.
import { request } from 'node:http';

export interface HttpProbeResult {
  up: boolean;
  /** 'ok', 'status 503', 'timeout', or the socket error code (ECONNREFUSED...). */
  reason: string;
}

export function parseHealthUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new Error(`--http must be a URL like http://198.18.0.100:8080/health, got "${raw}"`, {
      cause: err,
    });
  }
  if (url.protocol !== 'http:') {
    throw new Error(`--http must be an http:// URL, got protocol "${url.protocol}"`);
  }
  return url;
}

export function probeHttp(url: URL, timeoutMs: number): Promise<HttpProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: HttpProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    const req = request(
      {
        host: url.hostname,
        port: url.port === '' ? 80 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        agent: false,
        headers: { connection: 'close' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.on('error', (err) => finish({ up: false, reason: errorReason(err) }));
        // Read the body to its end: a server that sends headers and then
        // stalls is not healthy.
        res.on('end', () =>
          finish(
            status === 200 ? { up: true, reason: 'ok' } : { up: false, reason: `status ${status}` },
          ),
        );
        res.resume();
      },
    );
    const timer = setTimeout(() => finish({ up: false, reason: 'timeout' }), timeoutMs);
    req.on('error', (err) => finish({ up: false, reason: errorReason(err) }));
    req.end();
  });
}

function errorReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}
