// A TCP relay in front of a server, for faults the network makes: blackhole()
// keeps every connection open but silently stops moving bytes (a half-open
// peer, a pulled cable), restore() lets new connections through again.
import { connect, createServer, type Socket } from 'node:net';
import { freePort } from './pg-cluster.js';

export interface TcpProxy {
  readonly port: number;
  blackhole(): void;
  restore(): void;
  stop(): Promise<void>;
}

export async function startTcpProxy(
  targetPort: number,
  targetHost = '127.0.0.1',
): Promise<TcpProxy> {
  const port = await freePort();
  const pairs: [Socket, Socket][] = [];
  let holed = false;
  const server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    pairs.push([client, upstream]);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    if (holed) {
      client.pause();
      return;
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    blackhole() {
      holed = true;
      for (const [a, b] of pairs) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    restore() {
      holed = false;
    },
    async stop() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
