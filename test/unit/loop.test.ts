import fc from 'fast-check';
import { VirtualTimeScheduler } from 'rxjs';
import { type LoopEvent, ReconcileLoop } from '../../src/reconciler/loop.js';

const tick = () => new Promise((r) => setImmediate(r));
async function settle(n = 20) {
  for (let i = 0; i < n; i++) await tick();
}

function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

test('triggers during a run cause exactly one follow-up run', async () => {
  const gates: ReturnType<typeof deferred>[] = [];
  const runs: string[] = [];
  const loop = new ReconcileLoop({
    concurrency: 4,
    reconcile: async (key) => {
      runs.push(key);
      const g = deferred();
      gates.push(g);
      await g.promise;
    },
  });
  loop.trigger('a');
  await settle();
  expect(runs).toEqual(['a']);
  for (let i = 0; i < 10; i++) loop.trigger('a');
  await settle();
  expect(runs).toEqual(['a']); // never two at once
  gates[0]!.resolve();
  await settle();
  expect(runs).toEqual(['a', 'a']); // exactly one follow-up
  gates[1]!.resolve();
  await settle();
  expect(runs).toEqual(['a', 'a']);
  loop.stop();
});

test('a failing key is retried with backoff and does not stop other keys', async () => {
  const scheduler = new VirtualTimeScheduler();
  const events: LoopEvent[] = [];
  let bAttempts = 0;
  const loop = new ReconcileLoop({
    concurrency: 2,
    scheduler,
    backoff: { baseMs: 100, maxMs: 1000, jitter: 0.5 },
    // The jitter takes 0, then half, then all of its share off the delay.
    random: (() => {
      const seq = [0, 0.5, 0.999_999];
      let i = 0;
      return () => seq[i++ % seq.length]!;
    })(),
    reconcile: async (key) => {
      if (key === 'b') {
        bAttempts++;
        if (bAttempts < 4) throw new Error(`b broke (${bAttempts})`);
      }
    },
  });
  loop.events$.subscribe((e) => events.push(e));
  loop.trigger('b');
  loop.trigger('a');
  await settle();
  for (let i = 0; i < 10; i++) {
    scheduler.flush();
    await settle();
  }
  const failed = events
    .filter((e) => e.type === 'failed')
    .map((e) => (e.type === 'failed' ? e.retryInMs : 0));
  expect(failed).toEqual([100, 150, 200]);
  expect(bAttempts).toBe(4);
  expect(
    events
      .filter((e) => e.type === 'succeeded')
      .map((e) => e.key)
      .sort(),
  ).toEqual(['a', 'b']);
  loop.stop();
});

test('requeueAfter brings the key back without a trigger', async () => {
  const scheduler = new VirtualTimeScheduler();
  let runs = 0;
  const loop = new ReconcileLoop({
    concurrency: 1,
    scheduler,
    reconcile: async () => {
      runs++;
      return runs < 3 ? { requeueAfterMs: 5000 } : {};
    },
  });
  loop.trigger('x');
  await settle();
  for (let i = 0; i < 5; i++) {
    scheduler.flush();
    await settle();
  }
  expect(runs).toBe(3);
  loop.stop();
});

test('the error policy decides: a terminal error is not retried, a conflict re-runs at once', async () => {
  const scheduler = new VirtualTimeScheduler();
  const events: LoopEvent[] = [];
  const runs: string[] = [];
  let conflicts = 0;
  const typed = (kind: string) => Object.assign(new Error(kind), { kind });
  const loop = new ReconcileLoop({
    concurrency: 2,
    scheduler,
    backoff: { baseMs: 100, maxMs: 1000, jitter: 0 },
    reconcile: async (key) => {
      runs.push(key);
      if (key === 'bad') throw typed('terminal');
      if (key === 'busy' && ++conflicts < 3) throw typed('conflict');
    },
  });
  loop.events$.subscribe((e) => events.push(e));
  loop.trigger('bad');
  loop.trigger('busy');
  await settle();
  for (let i = 0; i < 10; i++) {
    scheduler.flush();
    await settle();
  }
  expect(runs.filter((k) => k === 'bad')).toHaveLength(1);
  const bad = events.find((e) => e.type === 'failed' && e.key === 'bad');
  expect(bad).toMatchObject({ retryInMs: null, gaveUp: expect.stringMatching(/will not help/) });
  // First conflict re-runs at once (the reconcile re-reads); a repeat backs off.
  expect(
    events
      .filter((e) => e.type === 'failed' && e.key === 'busy')
      .map((e) => (e as { retryInMs: number }).retryInMs),
  ).toEqual([0, 100]);
  expect(runs.filter((k) => k === 'busy')).toHaveLength(3);
  // A later trigger still runs the key that was given up on.
  loop.trigger('bad');
  await settle();
  expect(runs.filter((k) => k === 'bad')).toHaveLength(2);
  loop.stop();
});

test('property: any interleaving keeps one run per key, bounded concurrency, and no lost trigger', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { minLength: 1, maxLength: 30 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
      async (s, triggers, concurrency, failures) => {
        const running = new Set<string>();
        let maxInFlight = 0;
        let violation = '';
        let call = 0;
        // The trigger sequence number each run started after, per key.
        const lastTriggerAt = new Map<string, number>();
        const lastRunStartAt = new Map<string, number>();
        let clock = 0;
        const loop = new ReconcileLoop({
          concurrency,
          backoff: { baseMs: 1, maxMs: 1 },
          reconcile: async (key) => {
            if (running.has(key)) violation = `two runs of ${key} at once`;
            running.add(key);
            lastRunStartAt.set(key, ++clock);
            maxInFlight = Math.max(maxInFlight, running.size);
            const fail = failures[call++ % failures.length];
            await s.schedule(Promise.resolve(), `run ${key}`);
            running.delete(key);
            if (fail) throw new Error('boom');
          },
        });
        for (const key of triggers) {
          s.schedule(Promise.resolve(), `trigger ${key}`).then(() => {
            lastTriggerAt.set(key, ++clock);
            loop.trigger(key);
          });
        }
        // Run everything, including retries scheduled on real (1 ms) timers.
        for (let round = 0; round < 50; round++) {
          await s.waitAll();
          await new Promise((r) => setTimeout(r, 2));
          if (s.count() === 0 && loop.running().length === 0) break;
        }
        loop.stop();
        expect(violation).toBe('');
        expect(maxInFlight).toBeLessThanOrEqual(concurrency);
        for (const [key, t] of lastTriggerAt) {
          // Some run of the key started after its last trigger.
          expect({ key, ranAfterLastTrigger: (lastRunStartAt.get(key) ?? 0) > t }).toEqual({
            key,
            ranAfterLastTrigger: true,
          });
        }
      },
    ),
    { numRuns: 100 },
  );
});
