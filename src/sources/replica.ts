// One operator replica's Kubernetes side: the Lease elector and the source
// gated on it, wired the one way the CLI and the multi-replica tests share.
// Names flow on changes$ only while the replica leads (all of them once when
// it becomes leader), and mayAct() answers from the Lease's freshness at the
// moment of asking, so a replica frozen past its Lease does not act when it
// wakes up; confirmMayAct() also reads the Lease, so a replica whose Lease
// was taken over steps down before its next action, not at its next renewal
// (src/reconciler/reconciler.ts asks before every action and around every step).
import type { KubeConfig } from '@kubernetes/client-node';
import { KubernetesSource, type SourceLog } from './kubernetes.js';
import { LeaseElector } from './lease.js';

export interface ReplicaOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** This replica (the pod name): unique among replicas. */
  readonly identity: string;
  /** Lease timing (lease.ts defaults: 15 s, renew every 2 s, deadline 2/3). */
  readonly lease?: {
    readonly durationSeconds?: number;
    readonly renewIntervalMs?: number;
    readonly renewDeadlineMs?: number;
  };
  readonly log?: SourceLog;
}

export function leaderElectedSource(o: ReplicaOptions): {
  source: KubernetesSource;
  elector: LeaseElector;
} {
  const elector = new LeaseElector({
    kubeConfig: o.kubeConfig,
    namespace: o.namespace,
    identity: o.identity,
    ...(o.lease?.durationSeconds !== undefined
      ? { leaseDurationSeconds: o.lease.durationSeconds }
      : {}),
    ...(o.lease?.renewIntervalMs !== undefined ? { renewIntervalMs: o.lease.renewIntervalMs } : {}),
    ...(o.lease?.renewDeadlineMs !== undefined ? { renewDeadlineMs: o.lease.renewDeadlineMs } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
  const source = new KubernetesSource({
    kubeConfig: o.kubeConfig,
    namespace: o.namespace,
    identity: o.identity,
    isLeader$: elector.isLeader$,
    holdsLease: () => elector.holdsLease(),
    confirmLease: () => elector.confirmLease(),
    // The reconciler records an Event for every transition itself.
    transitionEvents: false,
    ...(o.log ? { log: o.log } : {}),
  });
  return { source, elector };
}
