// The finalizer pairshift puts on every UpgradeRequest it reconciles, so a
// `kubectl delete` of a running upgrade waits until the operator has stopped
// at a safe point, resumed rsync and removed its temporary files; only then
// is the finalizer removed and the object goes. Pure helpers; the Kubernetes
// source applies them with a resourceVersion precondition.

import type { UpgradeRequest } from '../core/upgrade-request.js';
import { CLEANUP_FINALIZER } from '../reconciler/source.js';

export { CLEANUP_FINALIZER };

type Meta = Pick<UpgradeRequest['metadata'], 'finalizers' | 'deletionTimestamp'>;

export function hasFinalizer(meta: Meta, finalizer = CLEANUP_FINALIZER): boolean {
  return (meta.finalizers ?? []).includes(finalizer);
}

/** The finalizer list with ours added (others' kept, in order). */
export function withFinalizer(
  finalizers: readonly string[] | undefined,
  finalizer = CLEANUP_FINALIZER,
): string[] {
  const list = [...(finalizers ?? [])];
  return list.includes(finalizer) ? list : [...list, finalizer];
}

/** The finalizer list without ours (others' kept). */
export function withoutFinalizer(
  finalizers: readonly string[] | undefined,
  finalizer = CLEANUP_FINALIZER,
): string[] {
  return (finalizers ?? []).filter((f) => f !== finalizer);
}

/** Deletion was asked for; the object stays until every finalizer is gone. */
export function isBeingDeleted(meta: Meta): boolean {
  return meta.deletionTimestamp !== undefined && meta.deletionTimestamp !== null;
}
