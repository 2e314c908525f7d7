// The operator's Prometheus instruments: one registry per operator (not
// prom-client's global one, so a test can run several operators in one
// process), the process's default metrics, and the adapters that turn what
// the loop, the reconciler, the SSH pool and the record sink already report
// into samples. Every label is a bounded code: a phase, a step, an error
// kind, a result, a node name from the inventory. Free text (an error
// message, a command) never becomes a label: it is unbounded and may carry
// what a secret-redacting log would have masked.
//
// Measured figures only: a histogram without a sample says "nothing measured
// yet"; nothing here is set to 0 to look complete.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Observable, Subscription } from 'rxjs';
import { kindOf } from '../core/error-policy.js';
import { isTerminal, type Phase } from '../core/phases.js';
import type { RecordSink } from '../drivers/records.js';
import type { SshCommandObserver } from '../drivers/ssh/pool.js';
import type { LoopEvent } from '../reconciler/loop.js';
import type { ReconcileObserver } from '../reconciler/reconciler.js';

/** Steps and phases take seconds to minutes (a backup, a health wait, a whole VIP_SWITCH). */
const STEP_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
/** A VIP switch or a client outage: tens of milliseconds to seconds. */
const SWITCH_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** An SSH command: milliseconds (a `cat`) to a minute (a dump). */
const SSH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** One reconcile: an observation (sub-second) up to many steps in a row. */
const RECONCILE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export interface OperatorMetrics {
  readonly registry: Registry;
  /** For the reconciler: steps, transitions, measured downtime. */
  readonly reconcile: ReconcileObserver;
  /** For the SSH pool of every upgrade's runtime. */
  readonly ssh: SshCommandObserver;
  /** The record sink with VIP switches timed on their way to the store. */
  records(inner: RecordSink): RecordSink;
  /** Reconcile counts, errors and durations from the loop's events. */
  followLoop(events$: Observable<LoopEvent>): Subscription;
  /** Queue depth and reconciles in flight, read at each scrape. */
  readLoop(read: () => { queued: number; running: number }): void;
  /** 1 while this replica holds the Lease (standalone: always 1). */
  readLeader(read: () => boolean): void;
}

export function createOperatorMetrics(): OperatorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const reconciles = new Counter({
    name: 'pairshift_reconciles_total',
    help: 'Reconciles finished, by result (succeeded, failed).',
    labelNames: ['result'] as const,
    registers,
  });
  const reconcileErrors = new Counter({
    name: 'pairshift_reconcile_errors_total',
    help: 'Reconciles that failed, by error kind (transient, waiting, conflict, terminal).',
    labelNames: ['kind'] as const,
    registers,
  });
  const reconcileDuration = new Histogram({
    name: 'pairshift_reconcile_duration_seconds',
    help: 'Time one reconcile took (it may run several steps).',
    buckets: RECONCILE_BUCKETS,
    registers,
  });
  let loopRead: (() => { queued: number; running: number }) | null = null;
  new Gauge({
    name: 'pairshift_reconcile_queue_depth',
    help: 'Upgrades waiting for a reconcile slot.',
    registers,
    collect() {
      if (loopRead) this.set(loopRead().queued);
    },
  });
  new Gauge({
    name: 'pairshift_reconciles_running',
    help: 'Reconciles in flight.',
    registers,
    collect() {
      if (loopRead) this.set(loopRead().running);
    },
  });
  let leaderRead: (() => boolean) | null = null;
  new Gauge({
    name: 'pairshift_leader',
    help: '1 while this replica may act (holds the Lease; standalone always), else 0.',
    registers,
    collect() {
      if (leaderRead) this.set(leaderRead() ? 1 : 0);
    },
  });
  const upgrades = new Counter({
    name: 'pairshift_upgrades_total',
    help: 'Upgrades that reached a terminal phase, by that phase (COMPLETE, FAILED, CANCELLED, TIMEOUT, UNREACHABLE).',
    labelNames: ['result'] as const,
    registers,
  });
  const rollbacks = new Counter({
    name: 'pairshift_rollbacks_total',
    help: 'Rollbacks started, by the state-machine event that started them (STEP_FAILED, ROLLBACK_REQUESTED, CANCEL_REQUESTED, TIMEOUT, ...).',
    labelNames: ['reason'] as const,
    registers,
  });
  const phaseDuration = new Histogram({
    name: 'pairshift_phase_duration_seconds',
    help: 'Time spent in a phase, observed when the phase is left.',
    labelNames: ['phase'] as const,
    buckets: STEP_BUCKETS,
    registers,
  });
  const stepDuration = new Histogram({
    name: 'pairshift_step_duration_seconds',
    help: 'Time one step took on the nodes, by phase, step and outcome (ok or the error kind).',
    labelNames: ['phase', 'step', 'outcome'] as const,
    buckets: STEP_BUCKETS,
    registers,
  });
  const vipSwitch = new Histogram({
    name: 'pairshift_vip_switch_duration_seconds',
    help: 'Time a VIP switch took as the keepalived driver measured it, by result (SUCCESS, FAILED, TIMEOUT).',
    labelNames: ['result'] as const,
    buckets: SWITCH_BUCKETS,
    registers,
  });
  const downtimeLongest = new Histogram({
    name: 'pairshift_upgrade_downtime_longest_seconds',
    help: "Longest outage of the VIP the operator's own probe saw during one upgrade (one sample per finished upgrade that was probed).",
    buckets: SWITCH_BUCKETS,
    registers,
  });
  const downtimeTotal = new Histogram({
    name: 'pairshift_upgrade_downtime_total_seconds',
    help: "All outages of the VIP the operator's own probe saw during one upgrade, added up.",
    buckets: SWITCH_BUCKETS,
    registers,
  });
  const sshDuration = new Histogram({
    name: 'pairshift_ssh_command_duration_seconds',
    help: 'Time an SSH command took from the caller (a connection opened for it included), by node.',
    labelNames: ['node'] as const,
    buckets: SSH_BUCKETS,
    registers,
  });
  const sshFailures = new Counter({
    name: 'pairshift_ssh_command_failures_total',
    help: 'SSH commands that failed, by node and kind (connect, timeout, exit_code, error).',
    labelNames: ['node', 'kind'] as const,
    registers,
  });

  const reconcile: ReconcileObserver = {
    stepFinished(e) {
      stepDuration.observe({ phase: e.phase, step: e.step, outcome: e.outcome }, e.seconds);
    },
    transitioned(e) {
      if (e.secondsInPhase !== null && e.secondsInPhase >= 0) {
        phaseDuration.observe({ phase: e.from }, e.secondsInPhase);
      }
      if (e.to === 'ROLLBACK' && e.from !== 'ROLLBACK') rollbacks.inc({ reason: e.event });
      if (isTerminal(e.to as Phase)) upgrades.inc({ result: e.to });
    },
    downtimeMeasured(e) {
      downtimeLongest.observe(e.httpLongestMs / 1000);
      downtimeTotal.observe(e.httpTotalMs / 1000);
    },
  };

  return {
    registry,
    reconcile,
    ssh(e) {
      sshDuration.observe({ node: e.node }, e.seconds);
      if (e.failure) sshFailures.inc({ node: e.node, kind: e.failure });
    },
    records(inner) {
      return {
        backup: (r) => inner.backup(r),
        updateBackupState: (id, state, at) => inner.updateBackupState(id, state, at),
        healthCheck: (r) => inner.healthCheck(r),
        async vipSwitch(r) {
          await inner.vipSwitch(r);
          // A RUNNING row has no duration yet: only a finished switch is a sample.
          if (r.result !== 'RUNNING' && r.durationMs !== null) {
            vipSwitch.observe({ result: r.result }, r.durationMs / 1000);
          }
        },
        rsyncStatus: (r) => inner.rsyncStatus(r),
        configSync: (r) => inner.configSync(r),
      };
    },
    followLoop(events$) {
      const started = new Map<string, number>();
      return events$.subscribe((e) => {
        if (e.type === 'started') {
          started.set(e.key, performance.now());
          return;
        }
        const t0 = started.get(e.key);
        started.delete(e.key);
        if (t0 !== undefined) reconcileDuration.observe((performance.now() - t0) / 1000);
        reconciles.inc({ result: e.type });
        if (e.type === 'failed') reconcileErrors.inc({ kind: kindOf(e.error, 'transient') });
      });
    },
    readLoop(read) {
      loopRead = read;
    },
    readLeader(read) {
      leaderRead = read;
    },
  };
}
