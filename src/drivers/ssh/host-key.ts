// Host keys are pinned from the HAPair: the operator connects only to a node
// whose host key has one of the fingerprints written there. Unknown or
// changed keys are refused, never trusted on first use.
import { createHash } from 'node:crypto';
import { normaliseFingerprint } from '../../inventory/fingerprint.js';

/** OpenSSH's fingerprint form: "SHA256:" + unpadded base64 of the key blob's SHA-256. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Fingerprint of an OpenSSH public key line ("ssh-ed25519 AAAA... comment"). */
export function fingerprintOfPublicKeyLine(line: string): string {
  const b64 = line.trim().split(/\s+/)[1];
  if (!b64) throw new Error('not an OpenSSH public key line');
  return fingerprintOf(Buffer.from(b64, 'base64'));
}

export interface HostKeyCheck {
  /** For ssh2's hostVerifier: true only for a pinned key. */
  verify(keyBlob: Buffer): boolean;
  /** The fingerprint last refused, for the error message. */
  readonly refused: string | undefined;
}

export function pinnedHostKeys(pinned: readonly string[]): HostKeyCheck {
  if (pinned.length === 0) {
    throw new Error('no pinned host key fingerprints: refusing to trust a host on first use');
  }
  const allowed = new Set(pinned.map(normaliseFingerprint));
  let refused: string | undefined;
  return {
    verify(keyBlob) {
      const fp = fingerprintOf(keyBlob);
      if (allowed.has(fp)) return true;
      refused = fp;
      return false;
    },
    get refused() {
      return refused;
    },
  };
}

/**
 * An authorized_keys line for the operator's key that only accepts logins
 * from the allowlisted addresses (task list 2.7.2) and disables forwarding.
 */
export function authorizedKeyLine(publicKeyLine: string, allowFrom: readonly string[]): string {
  for (const a of allowFrom) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(a)) {
      throw new Error(`allowlist entry "${a}" is not an IP address or CIDR range`);
    }
  }
  const options = ['no-agent-forwarding', 'no-port-forwarding', 'no-X11-forwarding'];
  if (allowFrom.length > 0) options.unshift(`from="${allowFrom.join(',')}"`);
  return `${options.join(',')} ${publicKeyLine.trim()}`;
}
