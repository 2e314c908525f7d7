// The IP allowlist (task list 2.7.2): who may read /health and who may send
// commands. Pure. IPv4 addresses also arrive as IPv4-mapped IPv6
// ("::ffff:198.18.0.1") from a dual-stack socket; they match IPv4 rules, so
// an allowlist written in IPv4 is not bypassed (or broken) by the socket type.
import { isIPv4, isIPv6 } from 'node:net';

export interface CidrRule {
  readonly text: string;
  readonly family: 4 | 6;
  /** the network address as a 32- or 128-bit number */
  readonly network: bigint;
  readonly prefix: number;
}

function v4ToBig(addr: string): bigint {
  return addr.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToBig(addr: string): bigint {
  let text = addr;
  // a trailing dotted quad (::ffff:1.2.3.4) becomes two hex groups
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const n = v4ToBig(quad[1]!);
    text = `${text.slice(0, -quad[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups =
    tail === undefined ? headGroups : [...headGroups, ...Array(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g || '0', 16)), 0n);
}

/** An address as [family, number]; IPv4-mapped IPv6 comes back as IPv4. */
export function parseAddress(addr: string): { family: 4 | 6; value: bigint } | undefined {
  const bare = addr.replace(/%.*$/, ''); // zone index (fe80::1%eth0)
  if (isIPv4(bare)) return { family: 4, value: v4ToBig(bare) };
  if (isIPv6(bare)) {
    const value = v6ToBig(bare);
    if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
    return { family: 6, value };
  }
  return undefined;
}

/** Parses "198.18.0.0/15", "::1/128" or a bare address (a /32 or /128). */
export function parseCidr(text: string): CidrRule {
  const [addrPart, prefixPart, ...rest] = text.trim().split('/');
  const addr = addrPart === undefined ? undefined : parseAddress(addrPart);
  if (!addr || rest.length > 0) throw new Error(`not an address or CIDR: "${text}"`);
  const bits = addr.family === 4 ? 32 : 128;
  // a mapped IPv6 rule (::ffff:10.0.0.0/104) is the IPv4 rule 10.0.0.0/8
  const mappedRule = addr.family === 4 && addrPart!.includes(':');
  let prefix = bits;
  if (prefixPart !== undefined) {
    if (!/^\d{1,3}$/.test(prefixPart)) throw new Error(`bad prefix length in "${text}"`);
    prefix = Number(prefixPart) - (mappedRule ? 96 : 0);
    if (prefix < 0 || prefix > bits) throw new Error(`prefix length out of range in "${text}"`);
  }
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { text, family: addr.family, network: addr.value & mask, prefix };
}

export function cidrContains(rule: CidrRule, addr: string): boolean {
  const a = parseAddress(addr);
  if (!a || a.family !== rule.family) return false;
  const bits = a.family === 4 ? 32 : 128;
  const mask =
    rule.prefix === 0 ? 0n : ((1n << BigInt(rule.prefix)) - 1n) << BigInt(bits - rule.prefix);
  return (a.value & mask) === rule.network;
}

export class Allowlist {
  readonly rules: readonly CidrRule[];
  constructor(cidrs: readonly string[]) {
    this.rules = cidrs.map(parseCidr);
  }
  allows(addr: string | undefined): boolean {
    if (!addr) return false;
    return this.rules.some((r) => cidrContains(r, addr));
  }
}

/** The client of an SSH session: $SSH_CONNECTION ("client port server port")
 * or the older $SSH_CLIENT ("client port serverport"). Undefined when the
 * agent was not started by sshd. */
export function sshClientAddress(env: Record<string, string | undefined>): string | undefined {
  const line = env.SSH_CONNECTION ?? env.SSH_CLIENT;
  if (!line) return undefined;
  return line.trim().split(/\s+/)[0] || undefined;
}
