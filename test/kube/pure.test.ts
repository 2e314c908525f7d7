// Pure helpers behind the Kubernetes source: the merge patch between two
// statuses, the finalizer list operations, how a watch ended.
import fc from 'fast-check';
import {
  CLEANUP_FINALIZER,
  hasFinalizer,
  isBeingDeleted,
  withFinalizer,
  withoutFinalizer,
} from '../../src/sources/finalizer.js';
import { mergePatchBetween } from '../../src/sources/merge-patch.js';
import { watchEnd } from '../../src/sources/watch-end.js';
import { mergePatch } from '../support/kube-api-server.js';

// JSON without nulls (null means "delete" in a merge patch, so a status never holds one).
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.integer(),
    fc.boolean(),
    fc.array(tie('value'), { maxLength: 3 }),
    tie('object'),
  ),
  object: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'phase', 'steps'), tie('value'), {
    maxKeys: 4,
  }),
})).object;

test('applying mergePatchBetween(a, b) to a gives b', () => {
  fc.assert(
    fc.property(json, json, (a, b) => {
      expect(mergePatch(a, mergePatchBetween(a, b))).toEqual(b);
    }),
  );
});

test('the patch holds only what changed; removed keys become null', () => {
  expect(
    mergePatchBetween(
      { phase: 'PREPARE', currentStep: 'preflight', progress: 5, conditions: [1] },
      { phase: 'BACKUP', progress: 5, conditions: [1, 2] },
    ),
  ).toEqual({ phase: 'BACKUP', currentStep: null, conditions: [1, 2] });
  expect(mergePatchBetween({ a: 1 }, { a: 1 })).toEqual({});
});

test('finalizer helpers keep other controllers’ finalizers and are idempotent', () => {
  expect(withFinalizer(undefined)).toEqual([CLEANUP_FINALIZER]);
  expect(withFinalizer(['x/y'])).toEqual(['x/y', CLEANUP_FINALIZER]);
  expect(withFinalizer([CLEANUP_FINALIZER])).toEqual([CLEANUP_FINALIZER]);
  expect(withoutFinalizer(['x/y', CLEANUP_FINALIZER])).toEqual(['x/y']);
  expect(withoutFinalizer(undefined)).toEqual([]);
  expect(hasFinalizer({ finalizers: [CLEANUP_FINALIZER] })).toBe(true);
  expect(hasFinalizer({})).toBe(false);
  expect(isBeingDeleted({ deletionTimestamp: '2026-11-29T10:00:00Z' })).toBe(true);
  expect(isBeingDeleted({})).toBe(false);
});

describe('watchEnd: how a watch of UpgradeRequests ended', () => {
  const quiet = { relist: false, errorEvent: false, events: 0, livedMs: 30_000 };
  // What client-node 2.x's Watch hands its done callback after 30 s without data.
  const idle = new DOMException('The operation was aborted due to timeout', 'TimeoutError');

  test("client-node's inactivity timeout on a quiet watch is a clean end, resumed at once", () => {
    expect(watchEnd({ ...quiet, err: idle })).toEqual({ failed: false, healthy: true });
  });

  test('a clean end after a while is healthy; one at once without events backs off', () => {
    expect(watchEnd({ ...quiet, err: null })).toEqual({ failed: false, healthy: true });
    expect(watchEnd({ ...quiet, err: null, livedMs: 50 })).toEqual({
      failed: false,
      healthy: false,
    });
    expect(watchEnd({ ...quiet, err: idle, livedMs: 50 }).healthy).toBe(false);
  });

  test('connection errors, ERROR events and 410 are failures, whatever came before', () => {
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: { code: 'ECONNREFUSED' },
    });
    const gone = Object.assign(new Error('Gone'), { statusCode: 410 });
    expect(watchEnd({ ...quiet, err: refused, events: 3 }).failed).toBe(true);
    expect(watchEnd({ ...quiet, err: gone, relist: true }).failed).toBe(true);
    expect(watchEnd({ ...quiet, err: null, errorEvent: true }).failed).toBe(true);
  });

  test('our own abort is not a failure', () => {
    const aborted = new DOMException('This operation was aborted', 'AbortError');
    expect(watchEnd({ ...quiet, err: aborted }).failed).toBe(false);
  });
});
