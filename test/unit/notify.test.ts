// The pure parts of notifications: the CloudEvent built from each fact, the
// Slack body, the retry schedule, the request body and signature, and the
// receiver configuration's validation.
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { receiverListSchema, receiverSchema } from '../../src/config/receivers.js';
import { buildEvent, type NotifyFact } from '../../src/core/notification.js';
import { TERMINAL_PHASES } from '../../src/core/phases.js';
import { DEFAULT_RETRY, delayCap, nextRetry, type RetryPolicy } from '../../src/notify/backoff.js';
import { bodyFor, signature } from '../../src/notify/deliver.js';
import { notifySettingsFrom } from '../../src/notify/notifier.js';
import { slackText } from '../../src/notify/slack.js';

const at = new Date('2026-12-06T04:00:00.000Z');
const base = {
  upgradeId: 'up-1',
  pair: 'pair-a',
  at,
  fromVersion: '1.0.0',
  toVersion: '2.0.0',
  message: 'preflight passed',
};

describe('CloudEvents built from facts', () => {
  test('a phase change: the envelope and its data', () => {
    const e = buildEvent({ ...base, kind: 'phase', from: 'PREPARE', to: 'BACKUP' });
    expect(e).toEqual({
      specversion: '1.0',
      id: `up-1/phase/BACKUP/${at.getTime()}`,
      source: '/pairshift/pairs/pair-a',
      type: 'io.pairshift.upgrade.phase.changed',
      subject: 'up-1',
      time: '2026-12-06T04:00:00.000Z',
      datacontenttype: 'application/json',
      data: {
        pair: 'pair-a',
        upgradeId: 'up-1',
        phase: 'BACKUP',
        previousPhase: 'PREPARE',
        fromVersion: '1.0.0',
        toVersion: '2.0.0',
        message: 'preflight passed',
      },
    });
  });

  test('a halt names the Stalled reason', () => {
    const e = buildEvent({ ...base, kind: 'halted', phase: 'VIP_SWITCH', reason: 'SplitBrain' });
    expect(e.type).toBe('io.pairshift.upgrade.halted');
    expect(e.data).toMatchObject({ phase: 'VIP_SWITCH', reason: 'SplitBrain' });
    expect(e.data).not.toHaveProperty('downtime');
  });

  test.each([
    ['COMPLETE', 'completed'],
    ['FAILED', 'failed'],
    ['CANCELLED', 'cancelled'],
    ['TIMEOUT', 'timedout'],
    ['UNREACHABLE', 'unreachable'],
  ] as const)('a result in %s is io.pairshift.upgrade.%s', (phase, word) => {
    const e = buildEvent({ ...base, kind: 'result', phase, rolledBack: false, downtime: null });
    expect(e.type).toBe(`io.pairshift.upgrade.${word}`);
    expect(e.id).toBe(`up-1/result/${phase}`);
  });

  test('every terminal phase has a result type; a running phase is refused', () => {
    for (const phase of TERMINAL_PHASES) {
      expect(() =>
        buildEvent({ ...base, kind: 'result', phase, rolledBack: false, downtime: null }),
      ).not.toThrow();
    }
    expect(() =>
      buildEvent({ ...base, kind: 'result', phase: 'BACKUP', rolledBack: false, downtime: null }),
    ).toThrow(/terminal phase/);
  });

  test('downtime: the measured figures, or null when nothing was measured (never 0)', () => {
    const measured = buildEvent({
      ...base,
      kind: 'result',
      phase: 'COMPLETE',
      rolledBack: false,
      downtime: { longestMs: 1234, totalMs: 2345 },
    });
    expect(measured.data.downtime).toEqual({ longestMs: 1234, totalMs: 2345 });
    const unmeasured = buildEvent({
      ...base,
      kind: 'result',
      phase: 'FAILED',
      rolledBack: true,
      downtime: null,
    });
    expect(unmeasured.data.downtime).toBeNull();
    expect(JSON.stringify(unmeasured)).toContain('"downtime":null');
  });

  test('the same fact gives the same id; another time, another id', () => {
    const f: NotifyFact = { ...base, kind: 'phase', from: 'IDLE', to: 'PREPARE' };
    expect(buildEvent(f).id).toBe(buildEvent({ ...f }).id);
    expect(buildEvent({ ...f, at: new Date(at.getTime() + 1) }).id).not.toBe(buildEvent(f).id);
  });

  test('a pair name is escaped in the source', () => {
    expect(
      buildEvent({ ...base, pair: 'a b', kind: 'phase', from: 'IDLE', to: 'PREPARE' }).source,
    ).toBe('/pairshift/pairs/a%20b');
  });
});

describe('Slack body', () => {
  test('a phase change', () => {
    const e = buildEvent({ ...base, kind: 'phase', from: 'PREPARE', to: 'BACKUP' });
    expect(slackText(e)).toBe(
      'pairshift: upgrade up-1 of pair pair-a (1.0.0 → 2.0.0): PREPARE → BACKUP: preflight passed',
    );
  });
  test('a halt', () => {
    const e = buildEvent({ ...base, kind: 'halted', phase: 'VIP_SWITCH', reason: 'SplitBrain' });
    expect(slackText(e)).toMatch(/^:warning: .* is halted in VIP_SWITCH \(SplitBrain\): /);
  });
  test('a result with and without measured downtime', () => {
    const ok = buildEvent({
      ...base,
      kind: 'result',
      phase: 'COMPLETE',
      rolledBack: false,
      downtime: { longestMs: 850, totalMs: 1500 },
    });
    expect(slackText(ok)).toMatch(
      /^:white_check_mark: .* ended COMPLETE: .*; longest client outage 850 ms \(total 1\.5 s\)$/,
    );
    const failed = buildEvent({
      ...base,
      kind: 'result',
      phase: 'FAILED',
      rolledBack: true,
      downtime: null,
    });
    expect(slackText(failed)).toMatch(
      /^:x: .* ended FAILED, rolled back: .*; client outage not measured$/,
    );
  });
  test('the body of a slack receiver is {"text"} as application/json', () => {
    const e = buildEvent({ ...base, kind: 'phase', from: 'PREPARE', to: 'BACKUP' });
    const b = bodyFor('slack', e);
    expect(b.contentType).toBe('application/json');
    expect(JSON.parse(b.body)).toEqual({ text: slackText(e) });
    const c = bodyFor(undefined, e);
    expect(c.contentType).toBe('application/cloudevents+json');
    expect(JSON.parse(c.body)).toEqual(e);
  });
});

describe('retry schedule', () => {
  const p: RetryPolicy = { maxAttempts: 6, maxAgeMs: 60_000, baseDelayMs: 1000, maxDelayMs: 8000 };

  test('the cap doubles from the base up to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => delayCap(n, p))).toEqual([
      1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });

  test('full jitter: the delay is anywhere from 0 to the cap', () => {
    expect(nextRetry(3, 0, 0, p, () => 0)).toEqual({ do: 'retry', afterMs: 0 });
    expect(nextRetry(3, 0, 0, p, () => 0.999999)).toEqual({ do: 'retry', afterMs: 3999 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.double({ min: 0, max: 0.9999999, noNaN: true }),
        (n, r) => {
          const d = nextRetry(n, 0, 0, p, () => r);
          return d.do === 'retry' && d.afterMs >= 0 && d.afterMs < delayCap(n, p);
        },
      ),
    );
  });

  test('gives up when the attempts are spent', () => {
    expect(nextRetry(6, 0, 0, p, () => 0)).toMatchObject({
      do: 'give-up',
      why: '6 attempt(s) failed',
    });
  });

  test('gives up when the next attempt would start past the age bound', () => {
    expect(nextRetry(2, 0, 58_500, p, () => 0.5)).toEqual({ do: 'retry', afterMs: 1000 });
    expect(nextRetry(2, 0, 59_500, p, () => 0.5)).toMatchObject({ do: 'give-up' });
  });

  test('the defaults outlast a receiver down for a minute, by a wide margin', () => {
    const p = DEFAULT_RETRY;
    const caps = Array.from({ length: p.maxAttempts - 1 }, (_, i) => delayCap(i + 1, p));
    // The mean wait is half the cap; even the waits of a quarter of the cap add up past 60 s.
    const quarter = caps.reduce((a, b) => a + b, 0) / 4;
    expect(quarter).toBeGreaterThan(60_000);
    expect(p.maxAgeMs).toBeGreaterThanOrEqual(10 * 60_000);
  });

  test('configuration defaults and overrides', () => {
    expect(notifySettingsFrom()).toEqual({
      requestTimeoutMs: 10_000,
      queueLimit: 1000,
      retry: { maxAttempts: 20, maxAgeMs: 900_000, baseDelayMs: 1000, maxDelayMs: 60_000 },
    });
    expect(notifySettingsFrom({ retry: { maxAttempts: 3 } }).retry.maxAttempts).toBe(3);
  });
});

describe('signature', () => {
  test('sha256=<hex HMAC of the body>', () => {
    const expected = createHmac('sha256', 's3cret').update('{"a":1}').digest('hex');
    expect(signature('s3cret', '{"a":1}')).toBe(`sha256=${expected}`);
  });
});

describe('receiver configuration', () => {
  test('url or urlFile, exactly one', () => {
    expect(receiverSchema.safeParse({ name: 'a', url: 'https://x.example/h' }).success).toBe(true);
    expect(receiverSchema.safeParse({ name: 'a', urlFile: '/run/url' }).success).toBe(true);
    const both = receiverSchema.safeParse({ name: 'a', url: 'https://x/h', urlFile: '/u' });
    expect(both.error?.issues[0]?.message).toBe('give exactly one of url and urlFile');
    expect(receiverSchema.safeParse({ name: 'a' }).success).toBe(false);
  });
  test('secrets are file paths, never values', () => {
    const r = receiverSchema.safeParse({ name: 'a', url: 'http://x/h', bearerTokenFile: 'abc' });
    expect(r.error?.issues[0]?.message).toBe('expected an absolute path');
    const inline = receiverSchema.safeParse({ name: 'a', url: 'http://x/h', token: 'abc' });
    expect(inline.success).toBe(false);
  });
  test('names are unique; events are known kinds', () => {
    const two = receiverListSchema.safeParse([
      { name: 'a', url: 'http://x/h' },
      { name: 'a', url: 'http://y/h' },
    ]);
    expect(two.error?.issues[0]?.message).toBe('two receivers have the same name');
    expect(
      receiverSchema.safeParse({ name: 'a', url: 'http://x/h', events: ['phase', 'nope'] }).success,
    ).toBe(false);
    expect(receiverSchema.safeParse({ name: 'a', url: 'ftp://x/h' }).success).toBe(false);
  });
  test('the configuration file takes notifications and names a bad field', () => {
    const c = parseConfig(
      [
        'notifications:',
        '  requestTimeout: 5s',
        '  retry: { maxAttempts: 4, maxAge: 2m }',
        '  receivers:',
        '    - name: chat',
        '      urlFile: /run/secrets/chat-url',
        '      format: slack',
        '      events: [halted, result]',
      ].join('\n'),
      'c.yaml',
    );
    expect(notifySettingsFrom(c.notifications)).toMatchObject({
      requestTimeoutMs: 5000,
      retry: { maxAttempts: 4, maxAgeMs: 120_000 },
    });
    expect(c.notifications?.receivers?.[0]?.format).toBe('slack');
    expect(() =>
      parseConfig(
        'notifications:\n  receivers:\n    - { name: x, url: "http://a/b", format: xml }\n',
        'c.yaml',
      ),
    ).toThrow(
      new ConfigError(
        'c.yaml',
        'notifications.receivers.0.format',
        'expected cloudevents or slack',
      ),
    );
  });
});
