// Where the VIP answers, seen from outside both nodes: open an SSH connection
// to VIP:22 and read the host key the server presents, then hang up before
// authenticating. Each node's host key is pinned in the HAPair, so the key
// names the node; this works wherever the operator can reach the VIP (lab and
// production alike) and needs no service on the nodes. A key that belongs to
// neither node is an error: something else answers on the VIP.
import { Client } from 'ssh2';
import { normaliseFingerprint } from '../../inventory/fingerprint.js';
import { fingerprintOf } from '../ssh/host-key.js';

export interface VipNodeKey {
  readonly node: string;
  readonly fingerprints: readonly string[];
}

export type OutsideAnswer =
  | { readonly kind: 'node'; readonly node: string; readonly ms: number }
  | { readonly kind: 'foreign'; readonly fingerprint: string; readonly ms: number }
  | { readonly kind: 'none'; readonly reason: string; readonly ms: number };

/** One look at who answers on vip:port; never throws. */
export function whoAnswersOnVip(
  vip: string,
  port: number,
  nodes: readonly VipNodeKey[],
  timeoutMs = 1000,
): Promise<OutsideAnswer> {
  const started = performance.now();
  const byFingerprint = new Map<string, string>();
  for (const n of nodes)
    for (const fp of n.fingerprints) byFingerprint.set(normaliseFingerprint(fp), n.node);
  return new Promise((resolve) => {
    const client = new Client();
    let done = false;
    const finish = (a: OutsideAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.removeAllListeners('close');
      client.on('error', () => {});
      client.destroy();
      resolve(a);
    };
    const ms = () => performance.now() - started;
    const timer = setTimeout(
      () => finish({ kind: 'none', reason: `no answer in ${timeoutMs} ms`, ms: ms() }),
      timeoutMs,
    );
    client.on('error', (err: Error) => finish({ kind: 'none', reason: err.message, ms: ms() }));
    client.on('close', () => finish({ kind: 'none', reason: 'connection closed', ms: ms() }));
    client.on('ready', () => finish({ kind: 'none', reason: 'unexpectedly logged in', ms: ms() }));
    client.connect({
      host: vip,
      port,
      username: 'pairshift-vip-check',
      readyTimeout: timeoutMs,
      // Refusing every key ends the handshake right after key exchange; we
      // only wanted to see the key.
      hostVerifier: (key: Buffer) => {
        const fp = fingerprintOf(key);
        const node = byFingerprint.get(fp);
        finish(
          node ? { kind: 'node', node, ms: ms() } : { kind: 'foreign', fingerprint: fp, ms: ms() },
        );
        return false;
      },
    });
  });
}
