// The in-memory progress view: served from memory while fresh, recomputed
// after an invalidation or maxAgeMs, one computation for concurrent misses,
// and never an answer older than the last invalidation it was asked after.
import fc from 'fast-check';
import { ProgressView } from '../../src/api/progress-view.js';

/** A source whose value per id is a version number bumped by write(). */
function versionedSource() {
  const versions = new Map<string, number>();
  let computations = 0;
  const gates: (() => void)[] = [];
  let gated = false;
  return {
    write(id: string) {
      versions.set(id, (versions.get(id) ?? 0) + 1);
    },
    version: (id: string) => versions.get(id) ?? 0,
    get computations() {
      return computations;
    },
    /** While gated, computations read at once but answer only when released. */
    gate(on: boolean) {
      gated = on;
    },
    release() {
      for (const g of gates.splice(0)) g();
    },
    async compute(id: string): Promise<number> {
      computations++;
      if (id === 'missing') throw new Error('no such upgrade');
      const v = versions.get(id) ?? 0;
      if (gated) await new Promise<void>((r) => gates.push(r));
      return v;
    },
  };
}

/** A view over the source; maxAgeMs long enough that only invalidations matter, unless given. */
function viewOf(
  src: ReturnType<typeof versionedSource>,
  over: { maxAgeMs?: number; maxEntries?: number; nowMs?: () => number } = {},
) {
  return new ProgressView({
    compute: (id) => src.compute(id),
    maxAgeMs: over.maxAgeMs ?? 60_000,
    maxEntries: over.maxEntries ?? 10,
    ...(over.nowMs ? { nowMs: over.nowMs } : {}),
  });
}

describe('ProgressView', () => {
  test('serves from memory until maxAgeMs, then reads again', async () => {
    const src = versionedSource();
    let now = 0;
    const view = viewOf(src, { maxAgeMs: 500, nowMs: () => now });
    expect(await view.get('u')).toBe(0);
    src.write('u'); // a writer this process does not hear
    now = 499;
    expect(await view.get('u')).toBe(0);
    expect(src.computations).toBe(1);
    now = 500;
    expect(await view.get('u')).toBe(1);
    expect(src.computations).toBe(2);
  });

  test('an answer is as old as its reads: a slow computation does not extend its life', async () => {
    const src = versionedSource();
    let now = 0;
    const view = viewOf(src, { maxAgeMs: 500, nowMs: () => now });
    src.gate(true);
    const first = view.get('u'); // reads at 0
    now = 400; // ... and answers at 400
    src.release();
    expect(await first).toBe(0);
    src.gate(false);
    now = 500;
    await view.get('u');
    expect(src.computations).toBe(2);
  });

  test('an invalidation is seen by the next request at once', async () => {
    const src = versionedSource();
    const view = viewOf(src);
    expect(await view.get('u')).toBe(0);
    src.write('u');
    view.invalidate('u');
    expect(await view.get('u')).toBe(1);
    src.write('u');
    view.invalidate();
    expect(await view.get('u')).toBe(2);
  });

  test('concurrent misses share one computation', async () => {
    const src = versionedSource();
    const view = viewOf(src);
    src.gate(true);
    const answers = Promise.all(Array.from({ length: 50 }, () => view.get('u')));
    src.release();
    expect(await answers).toEqual(Array(50).fill(0));
    expect(src.computations).toBe(1);
  });

  test('a computation that started before an invalidation is neither joined nor cached', async () => {
    const src = versionedSource();
    const view = viewOf(src);
    src.gate(true);
    const early = view.get('u'); // reads version 0, answers later
    src.write('u');
    view.invalidate('u');
    const late = view.get('u'); // must not join the early one
    src.release();
    await Promise.resolve();
    src.release();
    expect(await early).toBe(0);
    expect(await late).toBe(1);
    src.gate(false);
    expect(await view.get('u')).toBe(1); // the early answer was not cached over it
    expect(src.computations).toBe(2);
  });

  test('failures are passed on and not cached', async () => {
    const src = versionedSource();
    const view = viewOf(src);
    await expect(view.get('missing')).rejects.toThrow('no such upgrade');
    await expect(view.get('missing')).rejects.toThrow('no such upgrade');
    expect(src.computations).toBe(2);
    expect(view.size).toBe(0);
  });

  test('holds at most maxEntries, dropping the least recently computed', async () => {
    const src = versionedSource();
    const view = viewOf(src, { maxEntries: 3 });
    for (const id of ['a', 'b', 'c', 'd']) await view.get(id);
    expect(view.size).toBe(3);
    const before = src.computations;
    await view.get('b');
    await view.get('c');
    await view.get('d');
    expect(src.computations).toBe(before);
    await view.get('a');
    expect(src.computations).toBe(before + 1);
  });

  // The property the endpoint relies on: after write(id) + invalidate(id),
  // every request started later answers at least that version, whatever the
  // interleaving of requests, writes and slow computations.
  test('property: no request started after an invalidation sees an older version', async () => {
    type Cmd =
      | { kind: 'get'; id: string }
      | { kind: 'write'; id: string }
      | { kind: 'settle' }
      | { kind: 'tick'; ms: number };
    const id = fc.constantFrom('a', 'b');
    const cmd: fc.Arbitrary<Cmd> = fc.oneof(
      fc.record({ kind: fc.constant('get' as const), id }),
      fc.record({ kind: fc.constant('write' as const), id }),
      fc.constant({ kind: 'settle' as const }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 300 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { maxLength: 40 }), async (cmds) => {
        const versions = new Map<string, number>();
        const pending: (() => void)[] = [];
        let now = 0;
        const view = new ProgressView<number>({
          compute: async (k) => {
            const v = versions.get(k) ?? 0;
            await new Promise<void>((r) => pending.push(r));
            return v;
          },
          maxAgeMs: 250,
          maxEntries: 10,
          nowMs: () => now,
        });
        const checks: Promise<void>[] = [];
        for (const c of cmds) {
          if (c.kind === 'write') {
            versions.set(c.id, (versions.get(c.id) ?? 0) + 1);
            view.invalidate(c.id);
          } else if (c.kind === 'get') {
            const floor = versions.get(c.id) ?? 0;
            checks.push(
              view.get(c.id).then((v) => {
                if (v < floor) throw new Error(`${c.id}: answered ${v} after ${floor} was written`);
              }),
            );
          } else if (c.kind === 'tick') now += c.ms;
          else for (const r of pending.splice(0)) r();
          await Promise.resolve();
        }
        while (pending.length > 0) {
          for (const r of pending.splice(0)) r();
          await new Promise((r) => setImmediate(r));
        }
        await Promise.all(checks);
      }),
      { numRuns: 300 },
    );
  });
});
