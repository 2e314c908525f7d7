// SSH endpoints of a pair's nodes, from its HAPair. The private key is read
// here, kept in memory only, and never logged.
import { readFile } from 'node:fs/promises';
import { type HAPair, InventoryError } from '../../inventory/hapair.js';
import type { SshEndpoint } from './connection.js';

export async function sshEndpoints(pair: HAPair): Promise<SshEndpoint[]> {
  let privateKey: Buffer;
  try {
    privateKey = await readFile(pair.spec.ssh.privateKeyPath);
  } catch (err) {
    throw new InventoryError(
      `cannot read the SSH private key ${pair.spec.ssh.privateKeyPath} (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  return pair.spec.nodes.map((n) => ({
    node: n.name,
    host: n.address,
    port: n.ssh.port ?? pair.spec.ssh.port,
    username: pair.spec.ssh.user,
    privateKey,
    hostKeyFingerprints: [n.ssh.hostKey.fingerprint],
  }));
}
