// One reconcile of one UpgradeRequest: re-read everything (the request,
// the pair, the memory in the store, the nodes), ask the planner for the
// next action, do it, write down what happened, and repeat until the
// planner says to wait or that it is done. Nothing is kept in memory between
// reconciles that the store and the nodes do not also hold, so an operator
// killed at any instant and restarted carries on from the same point, and a
// step whose effect is already on the nodes is observed as done rather than
// repeated.

import { parseDuration } from '../config/duration.js';
import type { UpgradeSettings } from '../config/settings.js';
import { type Action, describeAction, type Step } from '../core/actions.js';
import { conditionsFor } from '../core/conditions.js';
import { decide, kindOf, type Random, type RetrySettings } from '../core/error-policy.js';
import type { ErrorKind } from '../core/errors.js';
import { phaseEventReason, REASON } from '../core/event-reasons.js';
import {
  emptyJournal,
  enterPhase,
  type JournalFacts,
  recordSight,
  recordStep,
  recordWait,
  type StepOutcome,
} from '../core/journal.js';
import { lostAtStartAction } from '../core/lost-node.js';
import {
  initialContext,
  type TransitionRecord,
  type UpgradeContext,
  type UpgradeEvent,
  upgradeMachine,
} from '../core/machine.js';
import type { MeasuredDowntime, NotifyFact, NotifySink } from '../core/notification.js';
import type { PairObservation } from '../core/observed.js';
import { isTerminal, type Phase } from '../core/phases.js';
import { plan, STEP_RETRY, stopBeforeStart } from '../core/planner.js';
import { estimatedCompletion, progressPercent, stepLabel } from '../core/status.js';
import type { UpgradeRequest, UpgradeRequestStatus } from '../core/upgrade-request.js';
import type { HAPair } from '../inventory/hapair.js';
import type { Logger } from '../log/logger.js';
import { redact } from '../log/redact.js';
import {
  commitTransition,
  loadMemory,
  saveMemory,
  type UpgradeMemory,
} from '../store/journal-store.js';
import { listSteps, markStep } from '../store/progress-store.js';
import { lastVipSwitch, verifiedBackups } from '../store/records.js';
import type { SqlClient } from '../store/sql-client.js';
import {
  ActiveUpgradeExistsError,
  appendLog,
  createUpgradeTask,
  getUpgradeTask,
} from '../store/upgrades.js';
import { leaseGatedDb } from './lease-gated-db.js';
import type { ReconcileOutcome } from './loop.js';
import { CLEANUP_FINALIZER, LeaseLostError, type ResourceSource } from './source.js';

/** The pair-facing side of one upgrade: built once, used by every reconcile of it. */
export interface UpgradeRuntime {
  /** Versions as the pair runs them before the upgrade. */
  readonly fromVersion: string;
  readonly targetVersion: string;
  observe(opts: { compareConfig: boolean }): Promise<PairObservation>;
  execute(
    step: Step,
    node: string | null,
    ctx: UpgradeContext,
    restoreDatabase: boolean,
  ): Promise<StepOutcome>;
  /**
   * Downtime seen by the operator's own probe of the VIP; with finish, the
   * probe stops and the final figures are returned (null: no probe ran).
   */
  downtime(
    finish: boolean,
  ): Promise<{ httpLongestMs: number; httpTotalMs: number; httpBlindMs?: number } | null>;
  close(): Promise<void>;
}

export type RuntimeFactory = (args: {
  request: UpgradeRequest;
  pair: HAPair;
  upgradeId: string;
  settings: UpgradeSettings;
  /**
   * A dry run (spec.options.dryRun): the runtime must change nothing on the
   * nodes while it is built (the agent is checked, not installed). The
   * reconciler only observes and plans with it; it never executes a step.
   */
  dryRun: boolean;
}) => Promise<UpgradeRuntime>;

export interface ReconcilerDeps {
  readonly source: ResourceSource;
  readonly db: SqlClient;
  readonly settings: UpgradeSettings;
  readonly runtimes: RuntimeFactory;
  readonly logger: Logger;
  readonly now: () => Date;
  /** Who acts, for the history: "operator@host". */
  readonly actor: string;
  /** Steps one reconcile may take before yielding to other keys. */
  readonly maxStepsPerReconcile?: number;
  /** Random source for the error policy's jitter (default Math.random). */
  readonly random?: Random;
  /** Called after every action: tests use it to stop the operator at each boundary. */
  readonly afterAction?: (upgradeId: string, action: Action) => void;
  /** Told what happened (metrics); never asked anything back. */
  readonly observer?: ReconcileObserver;
  /**
   * True once the operator is shutting down: no new step or transition
   * starts; a step already running finishes and is recorded.
   */
  readonly draining?: () => boolean;
  /**
   * Told of phase changes, halts and results (webhooks, src/notify): it
   * queues and returns at once, so no receiver can delay or fail a step.
   */
  readonly notifier?: NotifySink;
}

/**
 * What a reconcile did, for metrics. Every field is a bounded code (phase,
 * step, event, error kind) or a number: nothing here may carry free text.
 */
export interface ReconcileObserver {
  /** A step is about to run on the nodes; label is "PHASE/STEP node". */
  stepStarted?(e: { readonly upgradeId: string; readonly label: string }): void;
  stepFinished?(e: {
    readonly upgradeId: string;
    readonly phase: Phase;
    readonly step: Step;
    readonly outcome: 'ok' | ErrorKind;
    readonly seconds: number;
  }): void;
  /** A committed transition; secondsInPhase is how long the machine was in `from`. */
  transitioned?(e: {
    readonly from: Phase;
    readonly to: Phase;
    readonly event: string;
    readonly secondsInPhase: number | null;
  }): void;
  /** The final figures of the operator's VIP probe, once per finished upgrade. */
  downtimeMeasured?(e: { readonly httpLongestMs: number; readonly httpTotalMs: number }): void;
}

const WAIT_REQUEUE_MS = 1000;
/**
 * A halted upgrade looks again this often: the cause (a split brain) may go
 * away by itself, and the upgrade resumes on the next look; nothing is done
 * on the nodes meanwhile, so looking costs only an observation.
 */
const HALT_REQUEUE_MS = 2000;

/**
 * Building a runtime that fails transiently (an SSH hiccup at start) is
 * retried 2, 4, 8, 16, 30 s apart: about a minute, as long as the planner
 * waits for an unreachable node (settings.unreachableGrace) before it gives up.
 */
const START_RETRY: RetrySettings = { baseMs: 2000, maxMs: 30_000, jitter: 0.2, maxAttempts: 6 };

export class UpgradeReconciler {
  readonly #runtimes = new Map<string, Promise<UpgradeRuntime>>();
  /**
   * Failed attempts in a row at building each upgrade's runtime. In memory
   * only: an operator restarted starts counting again, which only delays
   * the end an unreachable pair reaches.
   */
  readonly #startFailures = new Map<string, number>();
  readonly #random: Random;
  /**
   * Upgrades whose status has not been written yet in the current reconcile:
   * their first write also lists the steps the store marked DONE that the
   * status lacks. Once per reconcile is enough: a failed status write ends
   * the reconcile, and the next one starts by catching up.
   */
  readonly #catchUp = new Set<string>();

  private readonly deps: ReconcilerDeps;

  constructor(deps: ReconcilerDeps) {
    // Every store statement of a reconcile asks for the Lease first (the
    // checks below stop a reconcile at its next action; this one stops it
    // at its next write, wherever that is).
    this.deps = { ...deps, db: leaseGatedDb(deps.db, () => deps.source.mayAct?.() ?? true) };
    this.#random = deps.random ?? Math.random;
  }

  /** Settings for one request: operator defaults, then the request's own options. */
  settingsFor(req: UpgradeRequest): UpgradeSettings {
    const o = req.spec.options ?? {};
    const ms = (v: string | undefined, fallback: number) =>
      v ? (parseDuration(v) ?? fallback) : fallback;
    const s = this.deps.settings;
    return {
      ...s,
      autoRollback: o.autoRollback ?? s.autoRollback,
      upgradeTimeout: ms(o.upgradeTimeout, s.upgradeTimeout),
      vipSwitchTimeout: ms(o.vipSwitchTimeout, s.vipSwitchTimeout),
      healthCheckTimeout: ms(o.healthCheckTimeout, s.healthCheckTimeout),
      downtimeBudget: ms(o.downtimeBudget, s.downtimeBudget),
    };
  }

  /**
   * One reconcile, in named steps: admit the request (deletion, pair,
   * approval, the one-active-upgrade-per-pair row), build or reuse its
   * runtime, then drive it: observe, plan, act, until the planner waits or
   * is done.
   */
  async reconcile(name: string): Promise<ReconcileOutcome> {
    // A replica without the Lease does nothing, not even a status write: the
    // leader does it, and this replica is triggered again if it gets the Lease.
    if (!this.#mayAct()) return {};
    try {
      return await this.#reconcileLeading(name);
    } catch (err) {
      // A gated write (store, status, finalizer) found the Lease gone.
      if (err instanceof LeaseLostError) return this.#lostLease(name, err.message);
      throw err;
    }
  }

  async #reconcileLeading(name: string): Promise<ReconcileOutcome> {
    this.#catchUp.add(name);
    const request = await this.deps.source.getUpgradeRequest(name);
    if (!request) {
      await this.#dropRuntime(name);
      return {};
    }
    // Cancel, rollback or deletion of an upgrade that has not started ends
    // it before any gate (approval included).
    if (await this.#stopBeforeStart(request)) return {};
    const admitted = await this.#admit(request);
    if ('outcome' in admitted) return admitted.outcome;
    const { pair, settings } = admitted;
    const memory = await loadMemory(this.deps.db, name);
    if (memory && isTerminal(memory.context.phase) && request.status?.finishedAt) {
      await this.#dropRuntime(name);
      return {};
    }
    // Building a runtime reaches the nodes (the agent is installed where it
    // is missing): a side effect like a step, so the Lease is confirmed first.
    if (!this.#runtimes.has(name) && !(await this.#confirmMayAct())) {
      return this.#lostLease(name, 'connecting to the pair not started');
    }
    let runtime: UpgradeRuntime;
    try {
      runtime = await this.#runtime(name, request, pair, settings);
    } catch (err) {
      return this.#cannotStart(request, memory, err);
    }
    this.#startFailures.delete(name);
    return this.#drive(
      request,
      runtime,
      settings,
      memory ?? (await this.#begin(name, runtime, settings)),
    );
  }

  #mayAct(): boolean {
    return this.deps.source.mayAct?.() ?? true;
  }

  /**
   * mayAct() confirmed with the source (the Lease read from the server):
   * asked right before each action and around each step, where a takeover
   * the elector has not noticed yet would otherwise let a step run.
   */
  async #confirmMayAct(): Promise<boolean> {
    const { source } = this.deps;
    return source.confirmMayAct ? source.confirmMayAct() : this.#mayAct();
  }

  #draining(): boolean {
    return this.deps.draining?.() ?? false;
  }

  /** Stops a reconcile at a boundary because the operator shuts down; the next operator goes on. */
  async #drained(name: string, what: string): Promise<ReconcileOutcome> {
    this.deps.logger.info(`shutting down: stopping this reconcile (${what})`, { upgradeId: name });
    return {};
  }

  /** Stops a reconcile whose replica lost the Lease; getting it back triggers every name again. */
  async #lostLease(name: string, what: string): Promise<ReconcileOutcome> {
    this.deps.logger.warn(`not holding the lease any more: stopping this reconcile (${what})`, {
      upgradeId: name,
    });
    return {};
  }

  /**
   * Whether this request may go on now: a deletion with nothing running
   * completes; a missing pair, a missing approval or another active upgrade
   * of the pair waits. Otherwise the pair and the settings to run with.
   */
  async #admit(
    request: UpgradeRequest,
  ): Promise<{ outcome: ReconcileOutcome } | { pair: HAPair; settings: UpgradeSettings }> {
    const { source } = this.deps;
    const name = request.metadata.name;
    if (request.metadata.deletionTimestamp !== undefined) {
      if (await this.#deletionCompletes(name)) return { outcome: {} };
    } else if (source.addFinalizer && !request.metadata.finalizers?.includes(CLEANUP_FINALIZER)) {
      await source.addFinalizer(name);
    }
    const settings = this.settingsFor(request);
    const pair = await source.getHAPair(request.spec.pairRef.name);
    if (!pair) {
      await this.#status(request, { message: `waiting for HAPair ${request.spec.pairRef.name}` });
      return { outcome: { requeueAfterMs: 10_000 } };
    }
    if (request.spec.options?.approved === false && !request.status?.startedAt) {
      await this.#status(request, { message: 'waiting for approval (spec.options.approved)' });
      return { outcome: {} };
    }
    const busy = await this.#ensureTask(request, pair, settings);
    if (busy) {
      await this.#status(request, { message: `waiting: ${busy.message}` });
      return { outcome: { requeueAfterMs: 10_000 } };
    }
    return { pair, settings };
  }

  /** A deleted request with nothing running (or nothing started): let the deletion complete. */
  async #deletionCompletes(name: string): Promise<boolean> {
    const memory = await loadMemory(this.deps.db, name);
    if (memory && !isTerminal(memory.context.phase) && memory.context.phase !== 'IDLE') {
      return false;
    }
    await this.#dropRuntime(name);
    await this.deps.source.removeFinalizer?.(name);
    return true;
  }

  /**
   * The upgrade's task row. At most one active upgrade per pair: the
   * store's unique index decides; the refusal is returned, not thrown.
   */
  async #ensureTask(
    request: UpgradeRequest,
    pair: HAPair,
    settings: UpgradeSettings,
  ): Promise<ActiveUpgradeExistsError | null> {
    const { db } = this.deps;
    const name = request.metadata.name;
    if (await getUpgradeTask(db, name)) return null;
    try {
      await createUpgradeTask(db, {
        upgradeId: name,
        pairName: pair.metadata.name,
        targetVersion: request.spec.package.version,
        requestedBy: request.metadata.annotations?.['pairshift.io/requested-by'] ?? 'resource',
        packagePath: request.spec.package.path,
        autoRollback: settings.autoRollback,
        at: this.deps.now(),
        ...(request.metadata.uid && /^[0-9a-f-]{36}$/.test(request.metadata.uid)
          ? { requestUid: request.metadata.uid }
          : {}),
      });
      return null;
    } catch (err) {
      if (err instanceof ActiveUpgradeExistsError) return err;
      throw err;
    }
  }

  /** The first memory of an upgrade: the VIP holder is the master, the other node the backup. */
  async #begin(
    name: string,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
  ): Promise<UpgradeMemory> {
    const first = await runtime.observe({ compareConfig: false });
    const holder = first.nodes.find((n) => n.holdsVip) ?? first.nodes[0];
    const other = first.nodes.find((n) => n.name !== holder.name)!;
    const memory = {
      context: initialContext({
        masterNode: holder.name,
        backupNode: other.name,
        autoRollback: settings.autoRollback,
        requiredHealthPasses: settings.healthCheckConsecutivePasses,
      }),
      facts: emptyJournal(this.deps.now().getTime()),
    };
    await saveMemory(this.deps.db, name, memory);
    return memory;
  }

  /**
   * Observe, plan, act, up to maxStepsPerReconcile times: returns when the
   * planner waits or is done, a step failed and is to be retried later, or
   * the budget of steps is spent (then at once again, after other keys).
   */
  async #drive(
    request: UpgradeRequest,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
    initial: UpgradeMemory,
  ): Promise<ReconcileOutcome> {
    const name = request.metadata.name;
    let memory = initial;
    const max = this.deps.maxStepsPerReconcile ?? 50;
    for (let i = 0; i < max; i++) {
      // Shutting down: stop at this boundary (the last step is recorded).
      if (this.#draining()) return this.#drained(name, 'before observing again');
      const fresh = (await this.deps.source.getUpgradeRequest(name)) ?? request;
      const round = await this.#observe(runtime, withRequests(memory, fresh));
      memory = round.memory;
      if (memory.context.phase === 'IDLE' && fresh.spec.options?.dryRun === true) {
        return this.#dryRun(fresh, memory, runtime, settings, round.observed);
      }
      const action = plan({
        ctx: memory.context,
        request: { fromVersion: runtime.fromVersion, targetVersion: runtime.targetVersion },
        settings,
        observed: round.observed,
        journal: memory.facts,
        nowMs: round.nowMs,
      });
      this.deps.logger.debug(describeAction(action), { upgradeId: name });
      // Checked again before each action: the Lease may have been lost (or
      // the process frozen past it) while the last one ran.
      if (!(await this.#confirmMayAct())) {
        return this.#lostLease(name, `next: ${describeAction(action)}`);
      }
      if (this.#draining()) return this.#drained(name, `next: ${describeAction(action)}`);
      if (action.kind !== 'halt') memory = await this.#resumed(name, memory, action);
      const acted = await this.#act(fresh, memory, runtime, settings, action, round.observed);
      this.deps.afterAction?.(name, action);
      if ('outcome' in acted) return acted.outcome;
      memory = acted.memory;
    }
    return { requeueAfterMs: 0 };
  }

  /** Reads the pair and folds its reachability into the journal. */
  async #observe(
    runtime: UpgradeRuntime,
    memory: UpgradeMemory,
  ): Promise<{ memory: UpgradeMemory; observed: PairObservation; nowMs: number }> {
    const nowMs = this.deps.now().getTime();
    // Configuration is compared once a CHECK_CONFIG step has run a sync
    // round (and written its config_sync_record).
    const observed = await runtime.observe({
      compareConfig: memory.context.phase === 'VERIFY' && memory.facts.configChecked === true,
    });
    const facts = recordSight(memory.facts, observed, nowMs);
    return { memory: { ...memory, facts }, observed, nowMs };
  }

  /** Does what the planner asked: finish, wait, take a transition or run a step. */
  async #act(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
    action: Action,
    observed: PairObservation,
  ): Promise<{ outcome: ReconcileOutcome } | { memory: UpgradeMemory }> {
    const { db } = this.deps;
    const name = request.metadata.name;
    switch (action.kind) {
      case 'done':
        await saveMemory(db, name, memory);
        await this.#publish(request, memory, runtime, action.reason, settings, true, { observed });
        await this.#dropRuntime(name);
        return { outcome: {} };
      case 'halt':
        return this.#halt(request, memory, runtime, settings, action, observed);
      case 'wait':
        memory = {
          ...memory,
          facts: recordWait(memory.facts, action.reason, this.deps.now().getTime()),
        };
        await saveMemory(db, name, memory);
        await this.#publish(
          request,
          memory,
          runtime,
          waitMessage(action.reason, observed),
          settings,
          false,
          { observed },
        );
        return { outcome: { requeueAfterMs: WAIT_REQUEUE_MS } };
      case 'event':
        return { memory: await this.#transition(request, memory, action) };
      case 'step':
        return this.#runStep(request, memory, runtime, settings, action, observed);
    }
  }

  /**
   * The planner halted: nothing is done on the nodes. The status says
   * Stalled=True with the halt's text; a new cause (not each round: no
   * Event storm) gets one WARNING line and one Warning Event. The next
   * look comes after HALT_REQUEUE_MS; the upgrade resumes when the planner
   * no longer halts (#resumed).
   */
  async #halt(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
    action: Extract<Action, { kind: 'halt' }>,
    observed: PairObservation,
  ): Promise<{ outcome: ReconcileOutcome }> {
    const { next, fresh } = withHalt(memory, action, this.deps.now().getTime());
    await saveMemory(this.deps.db, request.metadata.name, next);
    if (fresh) await this.#announceHalt(request, next, action);
    await this.#publish(
      request,
      next,
      runtime,
      waitMessage(action.reason, observed),
      settings,
      false,
      { observed },
    );
    return { outcome: { requeueAfterMs: HALT_REQUEUE_MS } };
  }

  /** A new halt cause: one WARNING line, one Warning Event, one notification. */
  async #announceHalt(
    request: UpgradeRequest,
    next: UpgradeMemory,
    action: Extract<Action, { kind: 'halt' }>,
  ): Promise<void> {
    const name = request.metadata.name;
    await this.#log(name, 'WARNING', `${next.context.phase}: ${action.reason}`);
    await this.deps.source.recordEvent(name, 'Warning', action.code, action.reason);
    this.#notify({
      // Dated by the halt's start: the same halt always makes the same event id.
      ...factBase(
        request,
        new Date(next.facts.halted?.sinceMs ?? this.deps.now().getTime()),
        action.reason,
      ),
      kind: 'halted',
      phase: next.context.phase,
      reason: action.code,
    });
  }

  /** The planner no longer halts: say once that the upgrade resumed, and why. */
  async #resumed(name: string, memory: UpgradeMemory, action: Action): Promise<UpgradeMemory> {
    const h = memory.facts.halted;
    if (!h) return memory;
    const next = { ...memory, facts: { ...memory.facts, halted: null } };
    await saveMemory(this.deps.db, name, next);
    const message = `resumed: no longer halted (${h.cause}); next: ${describeAction(action)}`;
    await this.#log(name, 'INFO', message);
    await this.deps.source.recordEvent(name, 'Normal', REASON.Resumed, message);
    return next;
  }

  /**
   * Runs one step and records it (progress row, journal, log, status). A
   * failure the planner will retry comes back after the error policy's
   * delay; a terminal one goes straight back to the planner.
   */
  async #runStep(
    request: UpgradeRequest,
    before: UpgradeMemory,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
    action: Extract<Action, { kind: 'step' }>,
    observed: PairObservation,
  ): Promise<{ outcome: ReconcileOutcome } | { memory: UpgradeMemory }> {
    const { db } = this.deps;
    const name = request.metadata.name;
    const phase = before.context.phase;
    const label = `${phase}/${stepLabel(action.step, action.node)}`;
    await markStep(db, name, label, phase, action.node, 'RUNNING', action.reason, this.deps.now());
    await this.#log(name, 'INFO', `${describeAction(action)}`);
    // The status names the step while it runs (it may take minutes).
    const running = await this.#publish(
      request,
      before,
      runtime,
      describeAction(action),
      settings,
      false,
      { current: label, observed },
    );
    // The last moment before the pair changes: the status write just above
    // may have taken long enough for the Lease to go.
    // (Its RUNNING row stays: the leader that runs it overwrites it.)
    if (!(await this.#confirmMayAct())) {
      return { outcome: await this.#lostLease(name, `${describeAction(action)} not run`) };
    }
    if (this.#draining()) {
      return { outcome: await this.#drained(name, `${describeAction(action)} not run`) };
    }
    this.deps.observer?.stepStarted?.({ upgradeId: name, label });
    const t0 = performance.now();
    const outcome = await runtime.execute(
      action.step,
      action.node,
      before.context,
      request.spec.rollback?.restoreDatabase === true,
    );
    this.deps.observer?.stepFinished?.({
      upgradeId: name,
      phase,
      step: action.step,
      outcome: outcome.ok ? 'ok' : outcome.kind,
      seconds: (performance.now() - t0) / 1000,
    });
    // The step ran; if the Lease went meanwhile, another replica may already
    // be writing this upgrade's memory: writing ours would take it back.
    if (!(await this.#confirmMayAct())) {
      const what = `${describeAction(action)} ran but is not recorded by this replica`;
      return { outcome: await this.#lostLease(name, what) };
    }
    const facts = recordStep(before.facts, action.step, action.node, outcome);
    const memory = {
      ...before,
      facts: outcome.ok ? { ...facts, stepsInPhase: (before.facts.stepsInPhase ?? 0) + 1 } : facts,
    };
    await saveMemory(db, name, memory);
    await markStep(
      db,
      name,
      label,
      phase,
      action.node,
      outcome.ok ? 'DONE' : 'FAILED',
      outcome.ok ? withDetail(action.reason, outcome.detail) : (redact(outcome.message) as string),
      this.deps.now(),
    );
    if (outcome.ok && outcome.detail) {
      await this.#log(name, 'INFO', `${label}: done: ${outcome.detail}`);
    }
    if (!outcome.ok) {
      await this.#log(
        name,
        outcome.kind === 'waiting' ? 'INFO' : 'WARNING',
        `${label}: ${outcome.message}`,
      );
    }
    await this.#publish(running, memory, runtime, describeAction(action), settings, false, {
      ...(outcome.ok ? { completed: label } : {}),
      observed,
    });
    if (outcome.ok) return { memory };
    // The planner decides whether this was the last try (it reads the same
    // policy); when it was not, the policy says how long to wait first.
    const d = decide(
      outcome.kind,
      memory.facts.lastError?.attempts ?? 1,
      STEP_RETRY,
      this.#random,
      label,
    );
    if (d.do === 'give-up') return { memory };
    return { outcome: { requeueAfterMs: d.afterMs } };
  }

  async #transition(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    action: Extract<Action, { kind: 'event' }>,
  ) {
    const { db, source } = this.deps;
    const name = request.metadata.name;
    const at = this.deps.now();
    let facts = memory.facts;
    const e = action.event;
    if (e.type === 'CANCEL_REQUESTED')
      facts = { ...facts, requestsSent: [...facts.requestsSent, 'cancel'] };
    if (e.type === 'ROLLBACK_REQUESTED')
      facts = { ...facts, requestsSent: [...facts.requestsSent, 'rollback'] };
    const r = upgradeMachine.transition(memory.context, e, { at, actor: this.deps.actor });
    if (!r.ok) {
      // Only user requests can be refused here (the planner proposes legal events).
      const next = { ...memory, facts };
      await saveMemory(db, name, next);
      await this.#log(name, 'WARNING', `${e.type} refused: ${r.reason}`);
      await source.recordEvent(name, 'Warning', REASON.Refused, r.reason);
      return next;
    }
    facts = {
      ...enterPhase(facts, at.getTime()),
      stepsInPhase: 0,
      progressBefore:
        e.type === 'START' ? 0 : (request.status?.progress ?? facts.progressBefore ?? 0),
      upgradeStartedAtMs: e.type === 'START' ? at.getTime() : facts.upgradeStartedAtMs,
    };
    const next = { context: r.context, facts };
    await commitTransition(db, name, r.record, next);
    this.#transitioned(request, r.record, memory.facts.phaseEnteredAtMs);
    const warn = ['FAILED', 'TIMEOUT', 'UNREACHABLE', 'ROLLBACK'].includes(r.context.phase);
    await this.#log(
      name,
      warn ? 'WARNING' : 'INFO',
      `${r.record.from} -> ${r.record.to}: ${r.record.cause}`,
    );
    await source.recordEvent(
      name,
      warn ? 'Warning' : 'Normal',
      phaseEventReason(r.context.phase),
      r.record.cause,
    );
    return next;
  }

  /**
   * A dry run ends before the upgrade starts: the package was verified and
   * the pair observed when the runtime was built, the first step is planned
   * as the real run would plan it, all of it is reported, and the request
   * ends CANCELLED (the upgrade did not happen, on purpose). Nothing is
   * executed, so nothing on the nodes changes.
   */
  async #dryRun(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    runtime: UpgradeRuntime,
    settings: UpgradeSettings,
    observed: PairObservation,
  ): Promise<ReconcileOutcome> {
    const name = request.metadata.name;
    const at = this.deps.now();
    const started = upgradeMachine.transition(
      memory.context,
      { type: 'START' },
      { at, actor: this.deps.actor },
    );
    // What the real run would do first, planned from what was just observed.
    const first = started.ok
      ? describeAction(
          plan({
            ctx: started.context,
            request: { fromVersion: runtime.fromVersion, targetVersion: runtime.targetVersion },
            settings,
            observed,
            journal: {
              ...memory.facts,
              upgradeStartedAtMs: at.getTime(),
              phaseEnteredAtMs: at.getTime(),
            },
            nowMs: at.getTime(),
          }),
        )
      : `nothing: ${started.reason}`;
    const report =
      `dry run, nothing was changed: package ${runtime.targetVersion} verified, upgrades ` +
      `${runtime.fromVersion}; pair: ${describeObservation(observed)}; the upgrade would ` +
      `start with ${first}`;
    await this.#log(name, 'INFO', report);
    const next = await this.#transition(request, memory, {
      kind: 'event',
      event: { type: 'CANCEL_REQUESTED', reason: 'dry run: the upgrade was only planned' },
      reason: 'dry run',
    });
    await this.#publish(request, next, runtime, report, settings, true, { observed });
    await this.#dropRuntime(name);
    return {};
  }

  /**
   * Writes the status from the memory and what was observed; returns the
   * request as it now stands. `current` names a step about to run,
   * `completed` one that just finished.
   */
  async #publish(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    runtime: UpgradeRuntime,
    message: string,
    settings: UpgradeSettings,
    finished: boolean,
    more: { current?: string; completed?: string; observed?: PairObservation } = {},
  ): Promise<UpgradeRequest> {
    const { current, completed, observed } = more;
    const now = this.deps.now();
    const prev = request.status;
    const phase = memory.context.phase;
    const progress = progressPercent({
      ctx: memory.context,
      stepsInPhase: memory.facts.stepsInPhase ?? 0,
      progressBefore: memory.facts.progressBefore ?? 0,
    });
    const eta = estimatedCompletion(memory.facts.upgradeStartedAtMs, now.getTime(), progress);
    const seen = await runtime.downtime(finished || isTerminal(phase));
    // Once per upgrade: the first publish that finishes it (a restarted
    // operator's probe reports what it measured since its start).
    if (seen && (finished || isTerminal(phase)) && prev?.finishedAt === undefined) {
      this.deps.observer?.downtimeMeasured?.({
        httpLongestMs: seen.httpLongestMs,
        httpTotalMs: seen.httpTotalMs,
      });
    }
    const problems = observed?.problems?.length ? observationProblems(observed.problems) : null;
    const records = await recordsFor(this.deps.db, request.metadata.name);
    const status: UpgradeRequestStatus = {
      phase,
      observedGeneration: request.metadata.generation,
      progress,
      fromVersion: runtime.fromVersion,
      targetVersion: runtime.targetVersion,
      completedSteps: await this.#completedSteps(
        request.metadata.name,
        now,
        completed
          ? [...(prev?.completedSteps ?? []), { step: completed, at: now.toISOString() }]
          : (prev?.completedSteps ?? []),
      ),
      ...(current ? { currentStep: current } : {}),
      message,
      conditions: conditionsFor({
        phase,
        rolledBack: isTerminal(phase) && memory.context.rollbackOutcome !== null,
        stalled: memory.facts.halted ?? null,
        generation: request.metadata.generation,
        previous: prev?.conditions ?? [],
        now: now.toISOString(),
        message,
      }),
      ...(eta ? { estimatedCompletionTime: eta.toISOString() } : {}),
      ...(memory.facts.upgradeStartedAtMs !== null
        ? { startedAt: new Date(memory.facts.upgradeStartedAtMs).toISOString() }
        : {}),
      ...(finished || isTerminal(phase)
        ? { finishedAt: prev?.finishedAt ?? now.toISOString() }
        : {}),
      ...(problems ? { problems } : {}),
      ...records,
      ...(seen
        ? {
            downtime: {
              httpLongestMs: seen.httpLongestMs,
              httpTotalMs: seen.httpTotalMs,
              ...(seen.httpBlindMs !== undefined ? { httpBlindMs: seen.httpBlindMs } : {}),
              budgetMs: settings.downtimeBudget,
              withinBudget: seen.httpLongestMs <= settings.downtimeBudget,
            },
          }
        : prev?.downtime
          ? { downtime: prev.downtime }
          : {}),
    };
    await this.deps.source.updateStatus(request.metadata.name, status);
    this.#catchUp.delete(request.metadata.name);
    this.#notifyResult(
      request,
      phase,
      isTerminal(phase) && memory.context.rollbackOutcome !== null,
      message,
      now,
      seen ? { longestMs: seen.httpLongestMs, totalMs: seen.httpTotalMs } : null,
      runtime,
    );
    return { ...request, status };
  }

  /** The status' completed steps, caught up with the store at a reconcile's first write. */
  async #completedSteps(
    name: string,
    now: Date,
    listed: NonNullable<UpgradeRequestStatus['completedSteps']>,
  ): Promise<NonNullable<UpgradeRequestStatus['completedSteps']>> {
    return this.#catchUp.has(name) ? withStoreSteps(this.deps.db, name, now, listed) : listed;
  }

  /**
   * A cancel, rollback or deletion of an upgrade that has not started ends
   * it CANCELLED here, before any gate (approval included) and without a
   * runtime: nothing on the nodes changed, so no node is needed. True when
   * it ended (a deletion then goes on to release its finalizer).
   */
  async #stopBeforeStart(request: UpgradeRequest): Promise<boolean> {
    const reason = stopBeforeStart({
      cancel: request.spec.cancel?.reason ?? null,
      rollback: request.spec.rollback?.reason ?? null,
      deleted: request.metadata.deletionTimestamp !== undefined,
    });
    if (reason === null) return false;
    const { db, source } = this.deps;
    const name = request.metadata.name;
    const deleted = request.metadata.deletionTimestamp !== undefined;
    const [memory, task] = await Promise.all([loadMemory(db, name), getUpgradeTask(db, name)]);
    if (!task && !memory && request.status?.finishedAt !== undefined) return !deleted;
    const phase = task?.phase ?? memory?.context.phase ?? 'IDLE';
    if (phase !== 'IDLE') {
      // Started: the planner reads the request at its next safe point. Ended
      // and published: nothing to do, unless a deletion waits for its finalizer.
      return isTerminal(phase) && request.status?.finishedAt !== undefined && !deleted;
    }
    const at = this.deps.now();
    const r = upgradeMachine.transition(
      memory?.context ?? initialContext({ masterNode: '?', backupNode: '?' }),
      { type: 'CANCEL_REQUESTED', reason },
      { at, actor: this.deps.actor },
    );
    if (!r.ok) return false;
    // No task row: the request never got past a gate, so no row holds the pair.
    if (task) {
      const facts = memory?.facts ?? emptyJournal(at.getTime());
      await commitTransition(db, name, r.record, {
        context: r.context,
        facts: {
          ...facts,
          requestsSent: [...facts.requestsSent, 'cancel'],
          tempFilesRemoved: true,
        },
      });
      this.#transitioned(request, r.record, memory ? facts.phaseEnteredAtMs : null);
      await this.#log(name, 'INFO', `IDLE -> CANCELLED: ${reason}`);
    }
    await source.recordEvent(name, 'Normal', REASON.Cancelled, reason);
    if (deleted) {
      await this.#dropRuntime(name);
      await source.removeFinalizer?.(name);
      return true;
    }
    const message = `ended before it started: ${reason}`;
    await source.updateStatus(name, {
      phase: r.context.phase,
      observedGeneration: request.metadata.generation,
      progress: 100,
      completedSteps: request.status?.completedSteps ?? [],
      message,
      conditions: conditionsFor({
        phase: r.context.phase,
        rolledBack: false,
        generation: request.metadata.generation,
        previous: request.status?.conditions ?? [],
        now: at.toISOString(),
        message,
      }),
      finishedAt: at.toISOString(),
    });
    this.#notifyResult(request, r.context.phase, false, message, at, null);
    await this.#dropRuntime(name);
    return true;
  }

  async #status(request: UpgradeRequest, patch: { message: string }): Promise<void> {
    const prev = request.status;
    await this.deps.source.updateStatus(request.metadata.name, {
      phase: prev?.phase ?? 'IDLE',
      progress: prev?.progress ?? 0,
      completedSteps: prev?.completedSteps ?? [],
      conditions: prev?.conditions ?? [],
      ...prev,
      observedGeneration: request.metadata.generation,
      message: patch.message,
    });
  }

  /**
   * The runtime could not be built (SSH to the nodes, the agents, the
   * package). The error policy decides: a transient failure (an SSH hiccup
   * at start) is retried with backoff; a terminal one (a package that does
   * not verify, a version that does not fit), or the START_RETRY bound
   * reached, ends the upgrade through the state machine: UNREACHABLE when
   * a node could not be reached, else FAILED (task list 2.1.1). The status
   * is finished only when the machine reached a terminal phase (never in
   * the middle of a rollback) and keeps the progress it had.
   */
  async #cannotStart(
    request: UpgradeRequest,
    memory: UpgradeMemory | null,
    err: unknown,
  ): Promise<ReconcileOutcome> {
    const name = request.metadata.name;
    const problem = err instanceof Error ? err.message : String(err);
    const attempt = (this.#startFailures.get(name) ?? 0) + 1;
    this.#startFailures.set(name, attempt);
    // An error that does not say its kind (a package that does not verify,
    // a version that does not fit) will not get better by trying again.
    const kind = kindOf(err, 'terminal');
    const d = decide(kind, attempt, START_RETRY, this.#random, 'preparing the upgrade');
    if (d.do !== 'give-up') {
      const message =
        `cannot prepare the upgrade yet (attempt ${attempt} of ${START_RETRY.maxAttempts}): ` +
        `${problem}; trying again in ${d.afterMs} ms`;
      await this.#log(name, 'WARNING', message);
      await this.#status(request, { message });
      return { requeueAfterMs: d.afterMs };
    }
    this.#startFailures.delete(name);
    const message =
      kind === 'terminal'
        ? `cannot prepare the upgrade: ${problem}`
        : `cannot prepare the upgrade: ${d.cause}: ${problem}`;
    const node = kind === 'transient' ? (err as { node?: unknown }).node : undefined;
    let last: UpgradeEvent | null = null;
    if (typeof node === 'string') {
      // The same rule as a node lost past the grace (core/lost-node.ts): a
      // node changed by this upgrade must not be left behind by an end.
      const decided = lostAtStartAction({
        ctx: memory?.context ?? initialContext({ masterNode: '?', backupNode: '?' }),
        fromVersion: request.status?.fromVersion ?? null,
        settings: this.settingsFor(request),
        journal: memory?.facts ?? emptyJournal(this.deps.now().getTime()),
        nowMs: this.deps.now().getTime(),
        node,
        error: message,
      });
      if (decided.kind === 'halt' && memory) {
        // Keep connecting: the next failure halts again at once (same
        // cause, no new Event); the first success goes on (#resumed).
        this.#startFailures.set(name, START_RETRY.maxAttempts - 1);
        return this.#haltWithoutRuntime(request, memory, decided, problem);
      }
      if (decided.kind === 'event') last = decided.event;
    }
    const ctx = await this.#endBeforeStart(request, memory, message, last);
    await this.#log(name, 'ERROR', message);
    await this.deps.source.recordEvent(name, 'Warning', REASON.CannotStart, message);
    await this.#finishWithoutRuntime(request, ctx, message, null);
    return isTerminal(ctx.phase) ? {} : { requeueAfterMs: START_RETRY.maxMs };
  }

  /**
   * A node cannot be connected to and ending would leave the pair on two
   * versions: halted as the planner halts (Stalled=True, one WARNING line
   * and one Warning Event per cause), nothing done on the nodes; the next
   * try to connect comes after HALT_REQUEUE_MS.
   */
  async #haltWithoutRuntime(
    request: UpgradeRequest,
    memory: UpgradeMemory,
    action: Extract<Action, { kind: 'halt' }>,
    problem: string,
  ): Promise<ReconcileOutcome> {
    const { next, fresh } = withHalt(memory, action, this.deps.now().getTime());
    if (fresh) {
      await saveMemory(this.deps.db, request.metadata.name, next);
      await this.#announceHalt(request, next, action);
    }
    await this.#finishWithoutRuntime(
      request,
      next.context,
      `${action.reason}; last try: ${problem}`,
      next,
    );
    return { requeueAfterMs: HALT_REQUEUE_MS };
  }

  /**
   * Takes the machine to its end without a runtime: START if it had not
   * started, then `last` (NODE_UNREACHABLE or TIMED_OUT, decided by
   * lostAtStartAction) or STEP_FAILED / ROLLBACK_FAILED. Only legal
   * transitions are taken, each committed with its history row.
   */
  async #endBeforeStart(
    request: UpgradeRequest,
    memory: UpgradeMemory | null,
    message: string,
    given: UpgradeEvent | null,
  ): Promise<UpgradeContext> {
    const name = request.metadata.name;
    const at = this.deps.now();
    let ctx = memory?.context ?? initialContext({ masterNode: '?', backupNode: '?' });
    let facts = memory?.facts ?? emptyJournal(at.getTime());
    const last: UpgradeEvent =
      given ??
      (ctx.phase === 'ROLLBACK'
        ? { type: 'ROLLBACK_FAILED', error: message }
        : { type: 'STEP_FAILED', error: message });
    const events: UpgradeEvent[] = ctx.phase === 'IDLE' ? [{ type: 'START' }, last] : [last];
    for (const e of events) {
      const r = upgradeMachine.transition(ctx, e, { at, actor: this.deps.actor });
      if (!r.ok) continue;
      ctx = r.context;
      const enteredAtMs = facts.phaseEnteredAtMs;
      // A new phase starts its own clock (a rollback's time limit); at the
      // end there is nothing to tidy on the nodes without a runtime.
      facts = {
        ...enterPhase(facts, at.getTime()),
        halted: null,
        ...(isTerminal(ctx.phase) ? { tempFilesRemoved: true } : {}),
      };
      await commitTransition(this.deps.db, name, r.record, { context: ctx, facts });
      this.#transitioned(request, r.record, memory ? enteredAtMs : null);
    }
    return ctx;
  }

  /** The status after #endBeforeStart: finished only in a terminal phase; progress as it was. */
  async #finishWithoutRuntime(
    request: UpgradeRequest,
    ctx: UpgradeContext,
    message: string,
    memory: UpgradeMemory | null,
  ): Promise<void> {
    const at = this.deps.now();
    const finished = isTerminal(ctx.phase);
    await this.deps.source.updateStatus(request.metadata.name, {
      phase: ctx.phase,
      observedGeneration: request.metadata.generation,
      progress: request.status?.progress ?? 0,
      completedSteps: request.status?.completedSteps ?? [],
      // What the last runtime read is still what the pair ran before (the
      // lost-node rule reads fromVersion from here on the next try).
      ...(request.status?.fromVersion ? { fromVersion: request.status.fromVersion } : {}),
      ...(request.status?.targetVersion ? { targetVersion: request.status.targetVersion } : {}),
      ...(request.status?.startedAt ? { startedAt: request.status.startedAt } : {}),
      message,
      conditions: conditionsFor({
        phase: ctx.phase,
        rolledBack: false,
        stalled: isTerminal(ctx.phase) ? null : (memory?.facts.halted ?? null),
        generation: request.metadata.generation,
        previous: request.status?.conditions ?? [],
        now: at.toISOString(),
        message,
      }),
      ...(finished ? { finishedAt: at.toISOString() } : {}),
    });
    this.#notifyResult(request, ctx.phase, false, message, at, null);
  }

  async #log(
    upgradeId: string,
    level: 'INFO' | 'WARNING' | 'ERROR',
    message: string,
  ): Promise<void> {
    this.deps.logger.log(
      level === 'ERROR' ? 'error' : level === 'WARNING' ? 'warn' : 'info',
      message,
      { upgradeId },
    );
    // The store's log is served by the API: it gets the redactor's pass too
    // (driver messages carry command output).
    await appendLog(this.deps.db, upgradeId, {
      level,
      source: 'reconciler',
      message: redact(message) as string,
      at: this.deps.now(),
    });
  }

  #runtime(
    name: string,
    request: UpgradeRequest,
    pair: HAPair,
    settings: UpgradeSettings,
  ): Promise<UpgradeRuntime> {
    let r = this.#runtimes.get(name);
    if (!r) {
      r = this.deps.runtimes({
        request,
        pair,
        upgradeId: name,
        settings,
        dryRun: request.spec.options?.dryRun === true,
      });
      this.#runtimes.set(name, r);
      r.catch(() => this.#runtimes.delete(name));
    }
    return r;
  }

  async #dropRuntime(name: string): Promise<void> {
    const r = this.#runtimes.get(name);
    this.#runtimes.delete(name);
    this.#startFailures.delete(name);
    if (r) await (await r.catch(() => null))?.close();
  }

  /** After every committed transition: metrics and the phase.changed notification. */
  #transitioned(
    request: UpgradeRequest,
    record: TransitionRecord,
    phaseEnteredAtMs: number | null,
  ): void {
    this.#notify({
      ...factBase(request, record.at, record.cause),
      kind: 'phase',
      from: record.from,
      to: record.to,
    });
    this.deps.observer?.transitioned?.({
      from: record.from,
      to: record.to,
      event: record.event,
      secondsInPhase:
        phaseEnteredAtMs === null ? null : (record.at.getTime() - phaseEnteredAtMs) / 1000,
    });
  }

  /** The upgrade's result, once, when its status first says it finished. */
  #notifyResult(
    request: UpgradeRequest,
    phase: Phase,
    rolledBack: boolean,
    message: string,
    at: Date,
    downtime: MeasuredDowntime | null,
    versions?: { fromVersion: string; targetVersion: string },
  ): void {
    if (!isTerminal(phase) || request.status?.finishedAt !== undefined) return;
    const base = factBase(request, at, message);
    this.#notify({
      ...base,
      ...(versions ? { fromVersion: versions.fromVersion, toVersion: versions.targetVersion } : {}),
      kind: 'result',
      phase,
      rolledBack,
      downtime,
    });
  }

  /** Never throws, never waits: a notifier's problem is its own. */
  #notify(fact: NotifyFact): void {
    try {
      this.deps.notifier?.notify(fact);
    } catch (err) {
      this.deps.logger.warn(`notification not queued: ${String(err)}`, {
        upgradeId: fact.upgradeId,
      });
    }
  }

  async close(): Promise<void> {
    for (const name of [...this.#runtimes.keys()]) await this.#dropRuntime(name);
  }
}

/** Requests written on the resource (cancel, rollback) become journal facts. */
function withRequests(memory: UpgradeMemory, req: UpgradeRequest): UpgradeMemory {
  const deleted =
    req.metadata.deletionTimestamp !== undefined ? 'the UpgradeRequest was deleted' : null;
  const facts: JournalFacts = {
    ...memory.facts,
    cancelRequested: req.spec.cancel?.reason ?? deleted,
    rollbackRequested: req.spec.rollback?.reason ?? null,
  };
  return { ...memory, facts };
}

/** One line about the pair as observed: "a: primary, VIP, 1.0.0, healthy; b: ...". */
function describeObservation(o: PairObservation): string {
  return o.nodes
    .map((n) =>
      n.reachable
        ? [
            `${n.name}: ${n.dbRole}`,
            ...(n.holdsVip ? ['VIP'] : []),
            n.appVersion ?? n.installedVersion ?? 'version unknown',
            n.healthy ? 'healthy' : 'NOT healthy',
            ...(n.replayLagBytes ? [`${n.replayLagBytes} bytes behind`] : []),
            ...(n.rsyncPaused ? ['rsync paused'] : []),
          ].join(', ')
        : `${n.name}: NOT reachable`,
    )
    .join('; ');
}

/** Problems listed in the status: redacted (probe errors carry command output) and bounded. */
const MAX_PROBLEMS = 10;
const MAX_PROBLEM_CHARS = 300;
function observationProblems(problems: readonly string[]): string[] {
  const shown = problems
    .slice(0, MAX_PROBLEMS)
    .map((p) => (redact(p) as string).slice(0, MAX_PROBLEM_CHARS));
  const more = problems.length - shown.length;
  return more > 0 ? [...shown, `and ${more} more`] : shown;
}

/** Why the upgrade waits, with what the observation found wrong (often the reason). */
function waitMessage(reason: string, observed: PairObservation): string {
  const p = observed.problems ?? [];
  return p.length === 0 ? reason : `${reason}; observed: ${observationProblems(p).join('; ')}`;
}

/** The verified backups and the last VIP switch, as the store's records hold them. */
async function recordsFor(
  db: SqlClient,
  upgradeId: string,
): Promise<Pick<UpgradeRequestStatus, 'backups' | 'vipSwitch'>> {
  const [backups, vip] = await Promise.all([
    verifiedBackups(db, upgradeId),
    lastVipSwitch(db, upgradeId),
  ]);
  return {
    ...(backups.length > 0
      ? {
          backups: backups.map((b) => ({
            node: b.node,
            kind: b.kind,
            path: b.path,
            md5: b.md5,
            sha256: b.sha256,
            verifiedAt: b.verifiedAt.toISOString(),
          })),
        }
      : {}),
    ...(vip
      ? {
          vipSwitch: {
            from: vip.from,
            to: vip.to,
            result: vip.result,
            attempt: vip.attempt,
            at: vip.startedAt.toISOString(),
            ...(vip.durationMs !== null ? { durationMs: vip.durationMs } : {}),
          },
        }
      : {}),
  };
}

/**
 * The completed steps for the status: those it already lists, then any step
 * the store marked DONE that it does not (a status write that failed after
 * the step ran: the API server was away, or conflicts outlasted the retries),
 * so the status catches up with the store once it can be written again.
 */
async function withStoreSteps(
  db: SqlClient,
  upgradeId: string,
  now: Date,
  listed: NonNullable<UpgradeRequestStatus['completedSteps']>,
): Promise<NonNullable<UpgradeRequestStatus['completedSteps']>> {
  const known = new Set(listed.map((s) => s.step));
  const missing = (await listSteps(db, upgradeId))
    .filter((r) => r.status === 'DONE' && !known.has(r.step))
    .map((r) => ({ step: r.step, at: (r.finishedAt ?? now).toISOString() }));
  return missing.length === 0 ? listed : [...listed, ...missing];
}

/** A step's record: why it ran, and what the drivers did when they said. */
function withDetail(reason: string, detail: string | undefined): string {
  return detail ? (redact(`${reason}; done: ${detail}`) as string) : reason;
}

/** What every notification of a request says: who, when, which versions, why. */
function factBase(request: UpgradeRequest, at: Date, message: string) {
  return {
    upgradeId: request.metadata.name,
    pair: request.spec.pairRef.name,
    at,
    fromVersion: request.status?.fromVersion ?? null,
    toVersion: request.status?.targetVersion ?? request.spec.package.version ?? null,
    message: redact(message) as string,
  };
}

/**
 * The memory with the halt recorded; `fresh` when its cause or reason is
 * new (a repeat of the same halt keeps its start, so no new Event).
 */
function withHalt(
  memory: UpgradeMemory,
  action: Extract<Action, { kind: 'halt' }>,
  nowMs: number,
): { next: UpgradeMemory; fresh: boolean } {
  const before = memory.facts.halted;
  const fresh = before?.cause !== action.cause || before.reason !== action.code;
  if (!fresh) return { next: memory, fresh };
  const halted = {
    cause: action.cause,
    reason: action.code,
    message: action.reason,
    sinceMs: nowMs,
  };
  return { next: { ...memory, facts: { ...memory.facts, halted } }, fresh };
}
