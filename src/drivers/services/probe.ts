// How the services driver sees a service from outside the node: its port
// answering its health path (HTTP 200), or refusing connections once
// stopped. Injected, so unit tests run without a network; the default
// probes the node's address from the operator.
import { connect } from 'node:net';

export interface ServiceProbe {
  /** true when GET http://host:port/path answers 200 within the deadline. */
  healthy(host: string, port: number, path: string, timeoutMs: number): Promise<boolean>;
  /** true when something accepts a TCP connection on host:port. */
  portOpen(host: string, port: number, timeoutMs: number): Promise<boolean>;
}

export const networkProbe: ServiceProbe = {
  async healthy(host, port, path, timeoutMs) {
    try {
      const r = await fetch(`http://${host}:${port}${path}`, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { connection: 'close' },
      });
      await r.arrayBuffer().catch(() => undefined);
      return r.status === 200;
    } catch {
      return false;
    }
  },
  portOpen(host, port, timeoutMs) {
    return new Promise((resolve) => {
      const s = connect({ host, port });
      const done = (open: boolean) => {
        clearTimeout(timer);
        s.destroy();
        resolve(open);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
  },
};
