// Who may call the API: an IP allowlist on the socket's address, a token
// bucket per client, and bearer tokens with two roles. Small and in-house
// on purpose: each piece is a few lines that the tests exercise directly.
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { secrets } from '../log/redact.js';

export type Role = 'viewer' | 'operator';

export interface ApiToken {
  readonly token: string;
  readonly role: Role;
  /** Recorded in logs instead of the token. */
  readonly name: string;
}

export interface Caller {
  readonly name: string;
  readonly role: Role;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/**
 * Finds the caller of a bearer token. Every configured token is compared
 * (no early exit) and each comparison is constant-time over SHA-256 digests,
 * so neither the position of a match nor a shared prefix shows in timing.
 */
export class TokenAuthenticator {
  readonly #tokens: { digest: Buffer; caller: Caller }[];

  constructor(tokens: readonly ApiToken[]) {
    for (const t of tokens) {
      if (t.token.length < 16)
        throw new Error(`API token ${t.name}: too short (at least 16 characters)`);
      // Masked wherever a client echoes it (paths, ids, bodies, keys), however the tokens came.
      secrets.add(t.token);
    }
    this.#tokens = tokens.map((t) => ({
      digest: digest(t.token),
      caller: { name: t.name, role: t.role },
    }));
  }

  /** The token from an Authorization header value, or why there is none. */
  static bearer(
    header: string | undefined,
  ): { token: string } | { missing: true } | { malformed: true } {
    if (header === undefined || header === '') return { missing: true };
    const m = /^Bearer +([A-Za-z0-9._~+/=-]{1,4096}) *$/i.exec(header);
    return m ? { token: m[1]! } : { malformed: true };
  }

  authenticate(token: string): Caller | null {
    const d = digest(token);
    let found: Caller | null = null;
    for (const t of this.#tokens) {
      if (timingSafeEqual(d, t.digest) && found === null) found = t.caller;
    }
    return found;
  }
}

/** "198.18.0.0/15", "127.0.0.1", "::1/128" -> a BlockList of allowed addresses. */
export class AddressAllowlist {
  readonly #list = new BlockList();
  readonly #any: boolean;

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits, extra] = c.split('/');
      const family = isIP(addr ?? '');
      const max = family === 6 ? 128 : 32;
      const prefix = bits === undefined ? max : Number(bits);
      if (
        family === 0 ||
        extra !== undefined ||
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > max
      ) {
        throw new Error(
          `API allowlist: ${JSON.stringify(c)} is not an address or CIDR like 127.0.0.1/32`,
        );
      }
      this.#list.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
    }
    this.#any = cidrs.length > 0;
  }

  allows(remote: string | undefined): boolean {
    if (!this.#any || !remote) return false;
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
    const addr = mapped ? mapped[1]! : remote;
    const family = isIP(addr);
    if (family === 0) return false;
    return this.#list.check(addr, family === 6 ? 'ipv6' : 'ipv4');
  }
}

export interface RateLimit {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size: the burst allowed after a quiet spell. */
  readonly burst: number;
}

/**
 * A token bucket per client key. Buckets that have refilled completely are
 * forgotten when the map grows, so many clients cannot grow it without bound.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  static readonly MAX_CLIENTS = 10_000;

  constructor(
    private readonly limit: RateLimit,
    private readonly nowMs: () => number,
  ) {
    if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) {
      throw new Error('API rate limit: ratePerSecond must be > 0 and burst >= 1');
    }
  }

  /** Clients currently tracked (bounded by MAX_CLIENTS). */
  get clients(): number {
    return this.#buckets.size;
  }

  /** Takes one token; when none is left, the seconds until one is. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const now = this.nowMs();
    const b = this.#buckets.get(key) ?? { tokens: this.limit.burst, at: now };
    b.tokens = Math.min(
      this.limit.burst,
      b.tokens + ((now - b.at) / 1000) * this.limit.ratePerSecond,
    );
    b.at = now;
    if (!this.#buckets.has(key)) {
      if (this.#buckets.size >= RateLimiter.MAX_CLIENTS) this.#sweep(now);
      this.#buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return {
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.limit.ratePerSecond)),
    };
  }

  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) {
      const full = b.tokens + ((now - b.at) / 1000) * this.limit.ratePerSecond >= this.limit.burst;
      if (full) this.#buckets.delete(k);
    }
    // Still full of busy clients: drop the oldest rather than grow.
    while (this.#buckets.size >= RateLimiter.MAX_CLIENTS) {
      const first = this.#buckets.keys().next().value as string;
      this.#buckets.delete(first);
    }
  }
}
