// Where resources come from and where their status goes. Two
// implementations behind this one interface, so the reconciler does not know
// which it runs on:
// - Kubernetes (src/sources/kubernetes.ts): CRDs watched with
//   @kubernetes/client-node, status through the status subresource, Events,
//   a finalizer, leader election on a Lease;
// - standalone (src/sources/standalone.ts): a folder of manifests
//   watched for changes plus the operator's own store (the REST API and the
//   CLI create UpgradeRequests there).
import type { Observable } from 'rxjs';
import type {
  UpgradeRequest,
  UpgradeRequestSpec,
  UpgradeRequestStatus,
} from '../core/upgrade-request.js';
import type { HAPair } from '../inventory/hapair.js';

export type EventType = 'Normal' | 'Warning';

/** Whether a source is following its resources (the operator's /health). */
export interface SourceState {
  readonly running: boolean;
  /** Why it is not keeping up, when it is not (a failing watch, a folder it cannot watch). */
  readonly problem?: string;
}

export interface ResourceSource {
  /** A description for logs: "kubernetes namespace pairshift", "standalone ./manifests". */
  readonly description: string;
  /**
   * Names of UpgradeRequests that may need a reconcile: added, changed or
   * deleted, plus every name again on each resync. Keys, not events: the
   * reconciler re-reads the object.
   */
  readonly changes$: Observable<string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  state(): SourceState;
  getUpgradeRequest(name: string): Promise<UpgradeRequest | null>;
  listUpgradeRequests(): Promise<UpgradeRequest[]>;
  getHAPair(name: string): Promise<HAPair | null>;
  /**
   * Creates an UpgradeRequest (REST API and CLI); a name already taken is a
   * ResourceConflictError.
   */
  createUpgradeRequest(req: Pick<UpgradeRequest, 'metadata' | 'spec'>): Promise<UpgradeRequest>;
  /** Changes the spec (cancel, rollback): a merge of the given fields, generation + 1. */
  patchSpec(name: string, patch: Partial<UpgradeRequestSpec>): Promise<UpgradeRequest>;
  /**
   * Writes the status. A concurrent writer (another replica, a stale copy)
   * is detected by the source and retried by re-reading, so the last status
   * computed from fresh data wins.
   */
  updateStatus(name: string, status: UpgradeRequestStatus): Promise<void>;
  /** A note for humans: a Kubernetes Event, or a line in the upgrade's log. */
  recordEvent(name: string, type: EventType, reason: string, message: string): Promise<void>;
  /**
   * Cluster sources only: a finalizer keeps a deleted UpgradeRequest around
   * until its upgrade has stopped at a safe point (deletion means cancel).
   */
  addFinalizer?(name: string): Promise<unknown>;
  removeFinalizer?(name: string): Promise<unknown>;
  /**
   * Sources with several replicas (a Lease): whether this replica may act
   * now. The reconciler asks before every step, transition and store write
   * of a reconcile and stops when the answer is no; a source without it
   * always acts.
   */
  mayAct?(): boolean;
  /**
   * mayAct(), confirmed with the source of truth right before a side effect
   * (the Lease read from the API server). The reconciler asks before every
   * action and around every step; without it, mayAct() decides.
   */
  confirmMayAct?(): Promise<boolean>;
}

/**
 * Thrown by a gated write (status, finalizer, store) in a replica that does
 * not hold the Lease: the reconcile that tried it stops there.
 */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  /** For the loop, should it ever see one: look again later, as for a wait. */
  readonly kind = 'waiting' as const;
}

export const CLEANUP_FINALIZER = 'pairshift.io/cleanup';

export class ResourceConflictError extends Error {
  override readonly name = 'ResourceConflictError';
  /** For the error policy: re-read and retry (a reconcile re-reads everything). */
  readonly kind = 'conflict' as const;
}

export class ResourceNotFoundError extends Error {
  override readonly name = 'ResourceNotFoundError';
}
