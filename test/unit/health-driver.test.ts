import fc from 'fast-check';
import type { HealthReport } from '../../src/agent/node/protocol.js';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { DriverError } from '../../src/drivers/errors.js';
import {
  afterPoll,
  checkHealth,
  deadlineOf,
  ensureHealthy,
  type HealthProbe,
  policyFrom,
  START,
} from '../../src/drivers/health/health.js';
import { pairHealthProbe, parseHealthReport } from '../../src/drivers/health/probes.js';
import { MemoryRecords } from '../../src/drivers/records.js';

const report = (status: 'UP' | 'DOWN'): HealthReport => ({
  status,
  timestamp: new Date(0).toISOString(),
  node: 'b',
  role: 'BACKUP',
  responseTimeMs: 12,
  checks: [
    { name: 'database', status: 'UP', responseTimeMs: 5, detail: 'standby' },
    {
      name: 'service:java',
      status,
      responseTimeMs: 1,
      detail: status === 'UP' ? 'port open' : 'ECONNREFUSED',
    },
  ],
});

/** Fake time: sleep moves the clock; the probe answers from a script. */
function fakes(
  script: Array<'UP' | 'DOWN' | 'unreachable' | 'deadline' | 'says timed out'>,
  probeMs = 20,
) {
  let t = 1_000_000;
  const sleeps: number[] = [];
  const polledAt: number[] = [];
  const timeouts: number[] = [];
  const probe: HealthProbe = async (_node, timeoutMs) => {
    polledAt.push(t);
    timeouts.push(timeoutMs);
    const next = script.shift() ?? 'DOWN';
    t += probeMs;
    if (next === 'unreachable')
      throw new DriverError('connect ECONNREFUSED', { kind: 'transient' });
    if (next === 'deadline')
      throw new DriverError('no answer in time', { kind: 'transient', timedOut: true });
    // A refusal whose text happens to say "timed out" is not a timeout.
    if (next === 'says timed out')
      throw new DriverError('agent said: upstream timed out', { kind: 'transient' });
    return report(next);
  };
  const records = new MemoryRecords();
  return {
    deps: {
      probe,
      records,
      now: () => t,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        t += ms;
      },
      upgradeId: 'u1',
    },
    records,
    sleeps,
    polledAt,
    timeouts,
    start: t,
  };
}

describe('health driver: the task list policy', () => {
  it('uses the built-in defaults: 3 tries, 10 s apart, 30 s, 3 passes', () => {
    expect(policyFrom()).toEqual({
      consecutivePasses: BUILT_IN_DEFAULTS.healthCheckConsecutivePasses,
      retries: 3,
      intervalMs: 10_000,
      timeoutMs: 30_000,
      pollTimeoutMs: 10_000,
    });
  });

  it('checkHealth passes on the first UP answer', async () => {
    const f = fakes(['UP']);
    const r = await checkHealth('b', f.deps);
    expect(r).toMatchObject({ attempts: 1, passes: 1, node: 'b' });
    expect(f.sleeps).toEqual([]);
  });

  it('checkHealth retries a DOWN node at 10 s intervals and passes on the third try', async () => {
    const f = fakes(['DOWN', 'unreachable', 'UP']);
    const seen: string[] = [];
    const r = await checkHealth('b', {
      ...f.deps,
      onAttempt: (a) => seen.push(a.error?.kind ?? 'ok'),
    });
    expect(r.attempts).toBe(3);
    expect(f.sleeps).toEqual([10_000, 10_000]);
    expect(seen).toEqual(['waiting', 'waiting', 'ok']);
  });

  it('checkHealth gives up after 3 failed tries: terminal when the agent said DOWN', async () => {
    const f = fakes(['DOWN', 'DOWN', 'DOWN', 'UP']);
    const err = await checkHealth('b', f.deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).kind).toBe('terminal');
    expect((err as DriverError).node).toBe('b');
    expect((err as Error).message).toMatch(/not healthy after 3 polls.*service:java: ECONNREFUSED/);
    expect(f.polledAt.length).toBe(3);
    expect(f.polledAt[2]! - f.start).toBeLessThanOrEqual(30_000);
  });

  it('checkHealth gives up transient when the agent never answered', async () => {
    const f = fakes(['unreachable', 'unreachable', 'unreachable']);
    const err = (await checkHealth('b', f.deps).catch((e: unknown) => e)) as DriverError;
    expect(err.kind).toBe('transient');
    expect(err.message).toMatch(/no answer from the agent: connect ECONNREFUSED/);
  });

  it('a slow agent cannot stretch the check past 30 s', async () => {
    // each poll takes 12 s: 0-12, sleep to 22, the second poll gets only the
    // 8 s left as its own deadline, and no third poll starts
    const f = fakes(['DOWN', 'DOWN', 'DOWN'], 12_000);
    await expect(checkHealth('b', f.deps)).rejects.toThrow(/no time left/);
    expect(f.polledAt.map((t) => t - f.start)).toEqual([0, 22_000]);
    expect(f.timeouts).toEqual([10_000, 8_000]);
  });

  it('ensureHealthy needs 3 UP answers in a row; a DOWN resets the run', async () => {
    const f = fakes(['UP', 'DOWN', 'UP', 'UP', 'UP']);
    const r = await ensureHealthy('b', f.deps, { consecutivePasses: 3 });
    expect(r).toMatchObject({ attempts: 5, passes: 3 });
  });

  it('records every check of every poll, with the attempt number', async () => {
    const f = fakes(['unreachable', 'UP']);
    await checkHealth('b', f.deps);
    const rows = f.records.healthChecks.map((h) => [h.attempt, h.checkName, h.status]);
    expect(rows).toEqual([
      [1, 'health', 'DOWN'],
      [2, 'database', 'UP'],
      [2, 'service:java', 'UP'],
      [2, 'health', 'UP'],
    ]);
    expect(f.records.healthChecks.every((h) => h.upgradeId === 'u1' && h.node === 'b')).toBe(true);
    expect(f.records.healthChecks[3]!.responseTimeMs).toBe(20);
  });

  it('records TIMEOUT for a poll whose deadline ran out (typed, not read from the message)', async () => {
    const f = fakes(['deadline', 'says timed out', 'UP']);
    await checkHealth('b', f.deps);
    const polls = f.records.healthChecks.filter((h) => h.checkName === 'health');
    expect(polls.map((h) => h.status)).toEqual(['TIMEOUT', 'DOWN', 'UP']);
  });
});

describe('health driver: pure policy (properties)', () => {
  const outcome = fc.constantFrom('UP', 'DOWN', 'unreachable');

  it('passes exactly when the script holds N UPs in a row before `retries` failures, never early', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(outcome, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        async (script, passes, retries) => {
          const f = fakes([...script], 5);
          const policy = {
            consecutivePasses: passes,
            retries,
            intervalMs: 1000,
            timeoutMs: 60_000,
          };
          // model: walk the script
          let run = 0;
          let fails = 0;
          let expected: 'pass' | 'fail' = 'fail';
          let polls = 0;
          for (const s of [...script, ...Array(40).fill('DOWN')]) {
            polls++;
            if (s === 'UP') run++;
            else {
              run = 0;
              fails++;
            }
            if (run >= passes) {
              expected = 'pass';
              break;
            }
            if (fails >= retries) break;
          }
          const got = await ensureHealthy('b', f.deps, policy).then(
            () => 'pass',
            () => 'fail',
          );
          expect(got).toBe(expected);
          expect(f.polledAt.length).toBe(polls);
          // the deadline is never passed by the start of a poll
          const deadline = deadlineOf(policyFrom(undefined, policy), f.start);
          expect(f.polledAt.every((t) => t <= deadline)).toBe(true);
        },
      ),
    );
  });

  it('afterPoll never waits past the deadline', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.boolean(), (now, up) => {
        const p = policyFrom(undefined, { consecutivePasses: 5, retries: 100 });
        const deadline = deadlineOf(p, 0);
        const n = afterPoll(p, START, { up, answered: true }, now, deadline);
        if (n.kind === 'wait') expect(now + n.ms).toBeLessThanOrEqual(deadline);
      }),
    );
  });
});

describe('health reports from the wire', () => {
  it('accepts a report and refuses junk with a clear message', () => {
    expect(parseHealthReport(JSON.stringify(report('UP')), 'a').status).toBe('UP');
    expect(() => parseHealthReport('<html>', 'a')).toThrow(/not JSON/);
    expect(() => parseHealthReport('{"status":"OK"}', 'a')).toThrow(/not a health report/);
  });
});

describe('pairHealthProbe', () => {
  it('refuses a node the pair does not have, as a terminal error', async () => {
    const probe = pairHealthProbe(
      { spec: { nodes: [{ name: 'a', address: '127.0.0.1' }] } },
      { via: 'http' },
    );
    await expect(probe('z', 100)).rejects.toMatchObject({ kind: 'terminal', node: 'z' });
  });
});
