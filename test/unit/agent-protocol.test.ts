import fc from 'fast-check';
import {
  Allowlist,
  cidrContains,
  parseAddress,
  parseCidr,
  sshClientAddress,
} from '../../src/agent/node/cidr.js';
import { handleCommand } from '../../src/agent/node/commands.js';
import { parseAgentConfig } from '../../src/agent/node/config.js';
import { HealthChecker } from '../../src/agent/node/health.js';
import {
  aggregate,
  MAX_REQUEST_BYTES,
  ProtocolError,
  parseRequest,
} from '../../src/agent/node/protocol.js';

describe('allowlist CIDR matching', () => {
  it('matches IPv4 networks and their edges', () => {
    const r = parseCidr('198.18.0.0/15');
    expect(cidrContains(r, '198.18.0.0')).toBe(true);
    expect(cidrContains(r, '198.19.255.255')).toBe(true);
    expect(cidrContains(r, '198.20.0.0')).toBe(false);
    expect(cidrContains(r, '198.17.255.255')).toBe(false);
  });

  it('treats IPv4-mapped IPv6 client addresses as IPv4', () => {
    const allow = new Allowlist(['198.18.3.0/24']);
    expect(allow.allows('::ffff:198.18.3.1')).toBe(true);
    expect(allow.allows('::FFFF:198.18.4.1')).toBe(false);
    expect(allow.allows('::ffff:c612:301')).toBe(true); // hex form of 198.18.3.1
    // and a mapped rule is the IPv4 rule
    expect(new Allowlist(['::ffff:10.0.0.0/104']).allows('10.1.2.3')).toBe(true);
  });

  it('keeps IPv6 and IPv4 apart, handles zones and ::1', () => {
    const allow = new Allowlist(['::1/128', 'fe80::/10']);
    expect(allow.allows('::1')).toBe(true);
    expect(allow.allows('127.0.0.1')).toBe(false);
    expect(allow.allows('fe80::1%eth0')).toBe(true);
    expect(allow.allows('2001:db8::1')).toBe(false);
    expect(new Allowlist(['0.0.0.0/0']).allows('::1')).toBe(false);
  });

  it('refuses junk rules with a message and junk addresses quietly', () => {
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/out of range/);
    expect(() => parseCidr('banana')).toThrow(/not an address/);
    expect(() => parseCidr('10.0.0.0/8/8')).toThrow();
    expect(new Allowlist(['10.0.0.0/8']).allows('not-an-ip')).toBe(false);
    expect(new Allowlist(['10.0.0.0/8']).allows(undefined)).toBe(false);
  });

  it('agrees with a plain integer model for random IPv4 rules (property)', () => {
    const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
    fc.assert(
      fc.property(ip, fc.integer({ min: 0, max: 32 }), ip, (net, prefix, addr) => {
        const toInt = (q: number[]) => q.reduce((a, b) => a * 256 + b, 0);
        const model =
          Math.floor(toInt(addr) / 2 ** (32 - prefix)) ===
          Math.floor(toInt(net) / 2 ** (32 - prefix));
        const rule = parseCidr(`${net.join('.')}/${prefix}`);
        expect(cidrContains(rule, addr.join('.'))).toBe(model);
        expect(cidrContains(rule, `::ffff:${addr.join('.')}`)).toBe(model);
      }),
    );
  });

  it('parses mapped and compressed IPv6 to the same value', () => {
    expect(parseAddress('::ffff:1.2.3.4')).toEqual(parseAddress('1.2.3.4'));
    expect(parseAddress('0:0:0:0:0:0:0:1')).toEqual(parseAddress('::1'));
  });

  it('reads the SSH client from SSH_CONNECTION or SSH_CLIENT', () => {
    expect(sshClientAddress({ SSH_CONNECTION: '198.18.3.1 5555 198.18.3.11 22' })).toBe(
      '198.18.3.1',
    );
    expect(sshClientAddress({ SSH_CLIENT: '::1 5555 22' })).toBe('::1');
    expect(sshClientAddress({})).toBeUndefined();
  });
});

describe('command requests', () => {
  it('parses a good request', () => {
    expect(parseRequest('{"command":"health","timeoutMs":500}')).toEqual({
      command: 'health',
      args: {},
      timeoutMs: 500,
    });
  });

  it.each([
    ['', 'bad_request', /empty request/],
    ['{nope', 'bad_request', /not valid JSON/],
    ['[1]', 'bad_request', /JSON object/],
    ['{"command": 3}', 'bad_request', /"command"/],
    ['{"command":"x","args":[1]}', 'bad_request', /"args"/],
    ['{"command":"x","timeoutMs":-1}', 'bad_request', /timeoutMs/],
  ])('refuses %j with %s', (input, code, message) => {
    try {
      parseRequest(input);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('refuses oversize input', () => {
    const big = `{"command":"health","args":{"pad":"${'x'.repeat(MAX_REQUEST_BYTES)}"}}`;
    expect(() => parseRequest(big)).toThrow(/limit is/);
  });

  it('never throws anything but ProtocolError on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (s) => {
        try {
          parseRequest(s);
        } catch (err) {
          expect(err).toBeInstanceOf(ProtocolError);
        }
      }),
    );
  });
});

describe('the command handler', () => {
  const cfg = parseAgentConfig(
    JSON.stringify({ node: 'a', allow: ['198.18.0.0/15'], services: [] }),
  );
  const checker = new HealthChecker(cfg);
  const call = (input: string, env: Record<string, string> = {}) =>
    handleCommand(cfg, checker, Buffer.from(input), env);

  it('answers version and refuses unknown commands and missing args', async () => {
    expect(await call('{"command":"version"}')).toMatchObject({
      ok: true,
      result: { agent: 'dev', nodeName: 'a' },
    });
    expect(await call('{"command":"reboot"}')).toMatchObject({
      ok: false,
      error: { code: 'unknown_command' },
    });
    expect(await call('{"command":"check"}')).toMatchObject({
      ok: false,
      error: { code: 'missing_argument', message: expect.stringMatching(/args.name/) },
    });
    expect(await call('{"command":"check","args":{"name":"nope"}}')).toMatchObject({
      ok: false,
      error: { code: 'bad_request' },
    });
  });

  it('refuses SSH clients outside the allowlist, allows those inside', async () => {
    const far = await call('{"command":"version"}', { SSH_CONNECTION: '10.9.9.9 1 2 3' });
    expect(far).toEqual({
      ok: false,
      error: { code: 'forbidden', message: expect.stringMatching(/10\.9\.9\.9/) },
    });
    const near = await call('{"command":"version"}', { SSH_CONNECTION: '::ffff:198.18.1.1 1 2 3' });
    expect(near.ok).toBe(true);
  });

  it('a health report with no checks is DOWN (nothing proved healthy)', async () => {
    const r = await call('{"command":"health"}');
    expect(r).toMatchObject({ ok: true, result: { status: 'DOWN', node: 'a', checks: [] } });
  });
});

describe('check aggregation', () => {
  const up = { name: 'x', status: 'UP' as const, responseTimeMs: 1, detail: '' };
  it('is UP only when all checks are UP', () => {
    expect(aggregate('a', 'MASTER', [up, { ...up, name: 'y' }], 0, 5).status).toBe('UP');
    expect(aggregate('a', 'MASTER', [up, { ...up, status: 'DOWN' }], 0, 5).status).toBe('DOWN');
    expect(aggregate('a', 'MASTER', [], 0, 5).status).toBe('DOWN');
    expect(aggregate('a', 'BACKUP', [up], 1000, 1012.34)).toMatchObject({
      responseTimeMs: 12.3,
      role: 'BACKUP',
    });
  });
  it('is UP iff every check is UP (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1 }), (ups) => {
        const checks = ups.map((u, i) => ({
          ...up,
          name: `c${i}`,
          status: u ? ('UP' as const) : ('DOWN' as const),
        }));
        expect(aggregate('n', 'UNKNOWN', checks, 0, 1).status === 'UP').toBe(ups.every(Boolean));
      }),
    );
  });
});
