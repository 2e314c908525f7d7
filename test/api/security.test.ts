// The small in-house security pieces on their own: bearer parsing, token
// lookup, the CIDR allowlist and the token bucket (with an injected clock).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AddressAllowlist, RateLimiter, TokenAuthenticator } from '../../src/api/security.js';
import { loadApiTokens } from '../../src/api/tokens.js';
import { redact } from '../../src/log/redact.js';

test('bearer header parsing', () => {
  expect(TokenAuthenticator.bearer(undefined)).toEqual({ missing: true });
  expect(TokenAuthenticator.bearer('')).toEqual({ missing: true });
  expect(TokenAuthenticator.bearer('Bearer abc.DEF-123')).toEqual({ token: 'abc.DEF-123' });
  expect(TokenAuthenticator.bearer('bearer   abc')).toEqual({ token: 'abc' });
  for (const bad of [
    'Bearer',
    'Bearer ',
    'Basic abc',
    'Bearer a b',
    'Bearer ä',
    `Bearer ${'a'.repeat(5000)}`,
  ]) {
    expect(TokenAuthenticator.bearer(bad)).toEqual({ malformed: true });
  }
});

test('tokens: exact match only, role and name returned, short tokens refused', () => {
  const auth = new TokenAuthenticator([
    { token: 'operator-token-0123456789', role: 'operator', name: 'ops' },
    { token: 'viewer-token-0123456789ab', role: 'viewer', name: 'view' },
  ]);
  expect(auth.authenticate('operator-token-0123456789')).toEqual({ name: 'ops', role: 'operator' });
  expect(auth.authenticate('viewer-token-0123456789ab')).toEqual({ name: 'view', role: 'viewer' });
  expect(auth.authenticate('operator-token-012345678')).toBeNull();
  expect(auth.authenticate('operator-token-01234567890')).toBeNull();
  expect(auth.authenticate('')).toBeNull();
  expect(() => new TokenAuthenticator([{ token: 'short', role: 'viewer', name: 'x' }])).toThrow(
    /too short/,
  );
});

test('allowlist: IPv4 and IPv6 CIDRs, IPv4-mapped addresses, bad entries refused', () => {
  const a = new AddressAllowlist(['127.0.0.1', '198.18.0.0/15', '::1/128']);
  expect(a.allows('127.0.0.1')).toBe(true);
  expect(a.allows('::ffff:127.0.0.1')).toBe(true);
  expect(a.allows('127.0.0.2')).toBe(false);
  expect(a.allows('198.19.255.255')).toBe(true);
  expect(a.allows('198.20.0.0')).toBe(false);
  expect(a.allows('::1')).toBe(true);
  expect(a.allows('::2')).toBe(false);
  expect(a.allows(undefined)).toBe(false);
  expect(a.allows('not an ip')).toBe(false);
  expect(new AddressAllowlist([]).allows('127.0.0.1')).toBe(false);
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', '::1/129', '10.0.0.0/x']) {
    expect(() => new AddressAllowlist([bad])).toThrow(/allowlist/);
  }
});

test('token bucket: burst, refill at the rate, Retry-After, clients apart', () => {
  let now = 0;
  const rl = new RateLimiter({ ratePerSecond: 2, burst: 3 }, () => now);
  expect([1, 2, 3].map(() => rl.take('a').ok)).toEqual([true, true, true]);
  expect(rl.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 });
  expect(rl.take('b').ok).toBe(true);
  now = 499;
  expect(rl.take('a').ok).toBe(false);
  now = 500;
  expect(rl.take('a').ok).toBe(true);
  now = 100_000;
  expect([1, 2, 3, 4].map(() => rl.take('a').ok)).toEqual([true, true, true, false]);
  const slow = new RateLimiter({ ratePerSecond: 0.1, burst: 1 }, () => now);
  slow.take('c');
  expect(slow.take('c')).toEqual({ ok: false, retryAfterSeconds: 10 });
});

test('token bucket: memory stays bounded under many clients', () => {
  let now = 0;
  const rl = new RateLimiter({ ratePerSecond: 1, burst: 1 }, () => now);
  for (let i = 0; i < RateLimiter.MAX_CLIENTS * 2; i++) {
    now += 1;
    rl.take(`client-${i}`);
  }
  expect(rl.clients).toBeLessThanOrEqual(RateLimiter.MAX_CLIENTS);
  expect(rl.take('fresh').ok).toBe(true);
});

test('tokens from files: trimmed, registered with the redactor, bad files refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-tokens-'));
  try {
    writeFileSync(join(dir, 'a'), 'file-token-value-0123456789\n', { mode: 0o600 });
    writeFileSync(join(dir, 'b'), 'short', { mode: 0o600 });
    writeFileSync(join(dir, 'c'), 'world-readable-token-012345', { mode: 0o644 });
    const warnings: string[] = [];
    const tokens = await loadApiTokens(
      [
        { name: 'a', role: 'operator', tokenFile: join(dir, 'a') },
        { name: 'c', role: 'viewer', tokenFile: join(dir, 'c') },
      ],
      (m) => warnings.push(m),
    );
    expect(tokens.map((t) => t.token)).toEqual([
      'file-token-value-0123456789',
      'world-readable-token-012345',
    ]);
    expect(warnings.join()).toContain('chmod 600');
    expect(redact('log line with file-token-value-0123456789 inside')).not.toContain(
      'file-token-value',
    );
    await expect(
      loadApiTokens([{ name: 'b', role: 'viewer', tokenFile: join(dir, 'b') }]),
    ).rejects.toThrow(/16 to 4096/);
    await expect(
      loadApiTokens([{ name: 'x', role: 'viewer', tokenFile: join(dir, 'nope') }]),
    ).rejects.toThrow(/cannot read/);
    await expect(
      loadApiTokens([
        { name: 'a', role: 'viewer', tokenFile: join(dir, 'a') },
        { name: 'a', role: 'viewer', tokenFile: join(dir, 'a') },
      ]),
    ).rejects.toThrow(/twice/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/api.md lists every problem code of the catalogue', async () => {
  const { readFile } = await import('node:fs/promises');
  const { PROBLEMS } = await import('../../src/api/problems.js');
  const doc = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
  for (const [code, p] of Object.entries(PROBLEMS)) {
    expect([code, doc.includes(`| ${code} | ${p.status} |`)]).toEqual([code, true]);
  }
});
