// SSH keys of a lab: one client key (the operator's and the sync job's) and
// one host key per node, generated fresh for every lab so that fingerprints
// pinned in the inventory are the only ones that will ever match.
import { readFileSync } from 'node:fs';
import type { HostKey } from './inventory.js';
import { run } from './run.js';

export async function generateKey(path: string, comment: string): Promise<void> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
}

export async function hostKeyOf(privatePath: string): Promise<HostKey> {
  const publicKey = readFileSync(`${privatePath}.pub`, 'utf8')
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .join(' ');
  const r = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${privatePath}.pub`]);
  // "256 SHA256:abc... comment (ED25519)"
  const fingerprint = r.stdout.split(/\s+/)[1] ?? '';
  if (!fingerprint.startsWith('SHA256:')) {
    throw new Error(`cannot read the fingerprint of ${privatePath}.pub: ${r.stdout.trim()}`);
  }
  return { type: publicKey.split(' ')[0] ?? 'ssh-ed25519', fingerprint, publicKey };
}

/** known_hosts lines pinning each address to its host key */
export function knownHostsLines(entries: Array<{ address: string; key: HostKey }>): string {
  return `${entries.map((e) => `${e.address} ${e.key.publicKey}`).join('\n')}\n`;
}
