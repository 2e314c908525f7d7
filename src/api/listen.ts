// Listening on host:port and naming the address, shared by the API server and
// the probes server (port 0 picks a free port; the URL says which).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens; resolves with the URL it answers on (IPv6 in brackets), rejects on a listen error. */
export async function listenOn(server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${shown}:${addr.port}`;
}
