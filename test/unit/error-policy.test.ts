// The one error policy (src/core/error-policy.ts): properties over every
// kind, attempt and setting, and the examples that pin the numbers.
import fc from 'fast-check';
import { backoffDelay, decide, kindOf, type RetrySettings } from '../../src/core/error-policy.js';
import type { ErrorKind } from '../../src/core/errors.js';

const kinds = fc.constantFrom<ErrorKind>('transient', 'waiting', 'conflict', 'terminal');
const settings = fc.record({
  baseMs: fc.integer({ min: 1, max: 10_000 }),
  maxMs: fc.integer({ min: 1, max: 120_000 }),
  maxAttempts: fc.integer({ min: 1, max: 20 }),
  jitter: fc.double({ min: 0, max: 1, noNaN: true }),
}) as fc.Arbitrary<RetrySettings>;
const random = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

test('property: every delay is within the cap and the jitter takes off at most its share', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 200 }), settings, random, (attempt, s, r) => {
      const full = Math.min(s.maxMs, s.baseMs * 2 ** (attempt - 1));
      const d = backoffDelay(attempt, s, () => r);
      expect(d).toBeLessThanOrEqual(s.maxMs);
      expect(d).toBeLessThanOrEqual(Math.round(full));
      expect(d).toBeGreaterThanOrEqual(Math.floor(full * (1 - s.jitter)));
    }),
  );
});

test('property: terminal is never retried; nothing is retried at or past the bound; the cause is named', () => {
  fc.assert(
    fc.property(kinds, fc.integer({ min: 1, max: 40 }), settings, random, (kind, attempt, s, r) => {
      const d = decide(kind, attempt, s, () => r, 'pausing rsync');
      if (kind === 'terminal' || attempt >= s.maxAttempts) {
        expect(d.do).toBe('give-up');
        if (d.do === 'give-up') expect(d.cause).toContain('pausing rsync');
        if (kind !== 'terminal' && d.do === 'give-up') expect(d.cause).toContain(String(attempt));
      } else {
        expect(d.do).toBe(
          { transient: 'retry', waiting: 'wait', conflict: 'reread' }[kind as 'transient'],
        );
        if (d.do !== 'give-up') {
          expect(d.afterMs).toBeGreaterThanOrEqual(0);
          expect(d.afterMs).toBeLessThanOrEqual(Math.max(s.maxMs, s.baseMs));
        }
      }
    }),
  );
});

test('property: retrying until told to stop ends within maxAttempts for every kind', () => {
  fc.assert(
    fc.property(kinds, settings, random, (kind, s, r) => {
      let attempt = 1;
      while (decide(kind, attempt, s, () => r).do !== 'give-up') attempt++;
      expect(attempt).toBeLessThanOrEqual(s.maxAttempts);
    }),
  );
});

test('examples: doubling from the base, capped; a first conflict re-reads at once, a repeat backs off', () => {
  const s: RetrySettings = { baseMs: 500, maxMs: 10_000, maxAttempts: 100, jitter: 0 };
  expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, s, Math.random))).toEqual([
    500, 1000, 2000, 4000, 8000, 10_000, 10_000,
  ]);
  expect(backoffDelay(3, { ...s, jitter: 0.5 }, () => 0.5)).toBe(1500);
  expect(decide('conflict', 1, s, Math.random)).toEqual({ do: 'reread', afterMs: 0, attempt: 1 });
  expect(decide('conflict', 2, s, Math.random)).toEqual({ do: 'reread', afterMs: 500, attempt: 2 });
  expect(decide('waiting', 1, { ...s, waitMs: 2000 }, Math.random)).toEqual({
    do: 'wait',
    afterMs: 2000,
    attempt: 1,
  });
  expect(decide('transient', 5, { ...s, maxAttempts: 5 }, Math.random, 'x')).toEqual({
    do: 'give-up',
    cause: 'x failed 5 times in a row (at most 5)',
  });
});

test('kindOf reads a typed error and falls back for one that says nothing', () => {
  expect(kindOf(Object.assign(new Error('x'), { kind: 'conflict' }), 'terminal')).toBe('conflict');
  expect(kindOf(Object.assign(new Error('x'), { kind: 'bogus' }), 'terminal')).toBe('terminal');
  expect(kindOf(new Error('timed out'), 'transient')).toBe('transient');
  expect(kindOf(null, 'terminal')).toBe('terminal');
});
