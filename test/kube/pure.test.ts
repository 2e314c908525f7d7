// Pure helpers behind the Kubernetes source: the merge patch between two
// statuses, and the finalizer list operations.
import fc from 'fast-check';
import {
  CLEANUP_FINALIZER,
  hasFinalizer,
  isBeingDeleted,
  withFinalizer,
  withoutFinalizer,
} from '../../src/sources/finalizer.js';
import { mergePatchBetween } from '../../src/sources/merge-patch.js';
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
