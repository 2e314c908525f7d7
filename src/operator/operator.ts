// The operator: a resource source, the reconcile loop and the reconciler
// wired together. Standalone by default (manifests folder + the store); the
// Kubernetes source plugs into the same place.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Observable, Subject, type Subscription } from 'rxjs';
import type { ReceiverConfig } from '../config/receivers.js';
import type { UpgradeSettings } from '../config/settings.js';
import type { Logger } from '../log/logger.js';
import { Notifier, type NotifySettings } from '../notify/notifier.js';
import type { TrustedKey } from '../packages/signing.js';
import { ReconcileLoop } from '../reconciler/loop.js';
import { type RuntimeFactory, UpgradeReconciler } from '../reconciler/reconciler.js';
import { createPairRuntime } from '../reconciler/runtime.js';
import type { ResourceSource } from '../reconciler/source.js';
import { storeRecords } from '../store/records.js';
import type { SqlClient } from '../store/sql-client.js';
import type { OperatorMetrics } from './metrics.js';

export interface OperatorOptions {
  readonly db: SqlClient;
  readonly source: ResourceSource;
  readonly settings: UpgradeSettings;
  readonly logger: Logger;
  readonly trustedKeys: readonly TrustedKey[];
  readonly workDir: string;
  readonly concurrency?: number;
  /** Replaces the real pair runtime (tests). */
  readonly runtimes?: RuntimeFactory;
  /**
   * Chaos testing: after this many actions (transitions or steps, each
   * already recorded) the process kills itself with SIGKILL, as a crash or
   * an OOM kill would. Set by PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS.
   */
  readonly killAfterActions?: number;
  /** Instruments to feed (the CLI serves them on --metrics-listen). */
  readonly metrics?: OperatorMetrics;
  /**
   * Webhooks (src/notify): the configuration's receivers and settings; each
   * HAPair's own receivers are added for its upgrades. Always on: with no
   * receiver anywhere, nothing is sent.
   */
  readonly notifications?: {
    readonly receivers: readonly ReceiverConfig[];
    readonly settings?: NotifySettings;
  };
}

/** What a drain ended with. */
export interface DrainResult {
  /** True when every running reconcile reached a boundary before the deadline. */
  readonly clean: boolean;
  /** Steps still running at the deadline ("upgrade: PHASE/STEP node"), empty when clean. */
  readonly leftRunning: readonly string[];
}

export interface RunningOperator {
  readonly loop: ReconcileLoop;
  readonly reconciler: UpgradeReconciler;
  readonly notifier: Notifier;
  /**
   * Names of upgrades, once per action the reconciler recorded (a step, a
   * transition, a status written): what the API's progress view listens to.
   */
  readonly actions$: Observable<string>;
  /** True once drain() was called (readiness reads it). */
  readonly draining: boolean;
  /**
   * Graceful shutdown, first half: no new reconcile, step or transition
   * starts; a step already running finishes and is recorded. Resolves when
   * no reconcile runs any more, or at the deadline with what was left
   * running (the journal shows it RUNNING: the next operator sees it as in
   * flight and observes before acting, as after a kill).
   */
  drain(deadlineMs: number): Promise<DrainResult>;
  stop(): Promise<void>;
}

export async function startOperator(o: OperatorOptions): Promise<RunningOperator> {
  const records = o.metrics ? o.metrics.records(storeRecords(o.db)) : storeRecords(o.db);
  let draining = false;
  /** Steps running now, by upgrade: what a drain that runs out of time names. */
  const runningSteps = new Map<string, string>();
  const log = (message: string, meta?: Record<string, unknown>) => o.logger.debug(message, meta);
  const runtimes: RuntimeFactory =
    o.runtimes ??
    ((args) =>
      createPairRuntime({
        ...args,
        ...(o.metrics ? { sshObserver: o.metrics.ssh } : {}),
        // A dry run measures no downtime: nothing will move.
        ...(args.dryRun ? { probeVip: false } : {}),
        records,
        trustedKeys: o.trustedKeys,
        workDir: join(o.workDir, args.upgradeId),
        log,
      }));
  const actions = new Subject<string>();
  const chaos = o.killAfterActions ? killAfter(o.killAfterActions, o.logger) : undefined;
  const actor = `pairshift-operator@${hostname()}`;
  const notifier = new Notifier({
    db: o.db,
    receivers: o.notifications?.receivers ?? [],
    pairReceivers: async (pair) =>
      (await o.source.getHAPair(pair))?.spec.notifications?.receivers ?? [],
    ...(o.notifications?.settings ? { settings: o.notifications.settings } : {}),
    owner: actor,
    logger: o.logger,
  });
  await notifier.start();
  const reconciler = new UpgradeReconciler({
    source: o.source,
    db: o.db,
    settings: o.settings,
    runtimes,
    logger: o.logger,
    now: () => new Date(),
    actor,
    notifier,
    afterAction: (id, action) => {
      actions.next(id);
      chaos?.(id, action);
    },
    draining: () => draining,
    observer: {
      ...o.metrics?.reconcile,
      stepStarted: (e) => runningSteps.set(e.upgradeId, `${e.upgradeId}: ${e.label}`),
      stepFinished: (e) => {
        runningSteps.delete(e.upgradeId);
        o.metrics?.reconcile.stepFinished?.(e);
      },
    },
  });
  const loop = new ReconcileLoop({
    concurrency: o.concurrency ?? 4,
    // While draining, a key that comes up is not reconciled at all: building
    // its runtime alone (staging, agents) would touch the nodes.
    reconcile: (key) => (draining ? Promise.resolve({}) : reconciler.reconcile(key)),
    backoff: { baseMs: 1000, maxMs: 30_000 },
  });
  const subs: Subscription[] = [];
  subs.push(
    loop.events$.subscribe((e) => {
      if (e.type === 'failed') {
        const next =
          e.retryInMs === null
            ? `not retried (${e.gaveUp}); waiting for its next change`
            : `retrying in ${e.retryInMs} ms`;
        o.logger.warn(`reconcile of ${e.key} failed; ${next}`, {
          upgradeId: e.key,
          error: e.error instanceof Error ? e.error.message : String(e.error),
        });
      }
    }),
  );
  if (o.metrics) {
    subs.push(o.metrics.followLoop(loop.events$));
    o.metrics.readLoop(() => ({ queued: loop.queued(), running: loop.running().length }));
  }
  subs.push(loop.connect(o.source.changes$));
  await o.source.start();
  for (const r of await o.source.listUpgradeRequests()) loop.trigger(r.metadata.name);
  o.logger.info(`operator started: ${o.source.description}`);
  return {
    loop,
    reconciler,
    notifier,
    actions$: actions.asObservable(),
    get draining() {
      return draining;
    },
    async drain(deadlineMs) {
      draining = true;
      const until = Date.now() + deadlineMs;
      // The loop's own record of what runs; polled, since a reconcile that
      // stops at a boundary ends with an ordinary 'succeeded' event.
      while (loop.running().length > 0 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
      }
      if (loop.running().length === 0) return { clean: true, leftRunning: [] };
      const named = [...runningSteps.values()];
      return {
        clean: false,
        leftRunning: named.length > 0 ? named : loop.running().map((k) => `${k}: (no step)`),
      };
    },
    async stop() {
      for (const s of subs) s.unsubscribe();
      loop.stop();
      actions.complete();
      await o.source.stop();
      await reconciler.close();
      // Undelivered notifications are recorded dropped, not resumed (docs/notifications.md).
      await notifier.stop();
    },
  };
}

function killAfter(n: number, logger: Logger): (id: string, action: { kind: string }) => void {
  let seen = 0;
  return (id, action) => {
    if (action.kind === 'wait' || action.kind === 'halt') return;
    if (++seen < n) return;
    logger.warn(`chaos: killing the operator after ${seen} action(s)`, { upgradeId: id });
    process.kill(process.pid, 'SIGKILL');
  };
}
