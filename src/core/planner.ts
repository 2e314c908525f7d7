// The planner: a pure function of (the machine's context, the request, the
// settings, what was observed on the nodes this round, the journal, now)
// that returns the one next action. It follows task list 4.1-4.5 step by
// step and encodes the invariant that keeps downtime near zero: a node's
// services are only stopped while the other node serves behind the VIP, and
// the VIP (with the database primary) only moves to a node that passed its
// health checks.

import { formatDuration } from '../config/duration.js';
import type { UpgradeSettings } from '../config/settings.js';
import { type Action, event, halt, type Step, step, wait } from './actions.js';
import { decide, NO_JITTER, type RetrySettings } from './error-policy.js';
import { BRING_BACK_STEPS, type JournalFacts, runsOf } from './journal.js';
import { type LostNodeInput, lostNodeAction, lostNodeNote } from './lost-node.js';
import type { UpgradeContext } from './machine.js';
import {
  type NodeObservation,
  node,
  notReadInWhole,
  type PairObservation,
  serving,
  vipHolders,
} from './observed.js';
import { isTerminal } from './phases.js';
import { repairOrHalt } from './repair.js';
import { timeLimitEvent } from './time-limit.js';

export interface PlanRequest {
  readonly fromVersion: string;
  readonly targetVersion: string;
}

export interface PlanInput {
  readonly ctx: UpgradeContext;
  readonly request: PlanRequest;
  readonly settings: UpgradeSettings;
  readonly observed: PairObservation;
  readonly journal: JournalFacts;
  readonly nowMs: number;
}

/** What the user wrote on the resource that ends an upgrade. */
export interface UserStop {
  readonly cancel: string | null;
  readonly rollback: string | null;
  readonly deleted: boolean;
}

/**
 * Why an upgrade that has not started (no memory yet, or IDLE) ends now, or
 * null to go on. Read before any gate (approval, a missing pair, the one
 * active upgrade per pair, building the runtime): a gate that holds an
 * unstarted upgrade must not also hold its cancel, or the pair stays blocked
 * by an upgrade nobody wants. Nothing ran, so a rollback is a cancel too.
 */
export function stopBeforeStart(s: UserStop): string | null {
  if (s.cancel !== null) return s.cancel;
  if (s.rollback !== null) return `rollback requested before any node changed: ${s.rollback}`;
  if (s.deleted) return 'the UpgradeRequest was deleted';
  return null;
}

/** Attempts at one step failing transiently before it counts as failed. */
export const MAX_TRANSIENT_ATTEMPTS = 5;
/** Attempts at one step that keeps answering "not yet" (each already waited its own deadline). */
export const MAX_WAITING_ATTEMPTS = 3;

/**
 * The error policy's settings for a failed step (src/core/error-policy.ts):
 * the planner asks it whether to give up, the reconciler how long to wait
 * before the retry. A conflict (the step's own check after acting found
 * something else) is re-observed and retried like a transient failure.
 */
export const STEP_RETRY: RetrySettings = {
  baseMs: 1000,
  maxMs: 10_000,
  jitter: 0.2,
  maxAttempts: MAX_TRANSIENT_ATTEMPTS,
  waitMs: 2000,
};

export function plan(input: PlanInput): Action {
  const { ctx, journal: j, nowMs, settings } = input;
  if (isTerminal(ctx.phase)) return tidyUp(input);
  if (ctx.phase === 'IDLE') {
    if (j.cancelRequested && !j.requestsSent.includes('cancel')) {
      return event(
        { type: 'CANCEL_REQUESTED', reason: j.cancelRequested },
        'cancelled before it started',
      );
    }
    return event({ type: 'START' }, 'upgrade admitted');
  }

  // Time limits: the whole upgrade, and a rollback on its own clock so a
  // rollback started by a timeout gets time to finish.
  const limit = timeLimitEvent(ctx, j, settings, nowMs, () => lostNodeNote(lostInput(input)));
  if (limit) return limit;

  // A node past the unreachable grace: end UNREACHABLE when that leaves
  // both nodes on the old version, else halt until it answers (lost-node.ts).
  const requested = requestedStop(input);
  const lostAction = lostNodeAction(lostInput(input), requested);
  if (lostAction) return lostAction;
  const lost = input.observed.nodes.find((n) => !n.reachable);
  if (lost) return wait(`${lost.name} is not answering; retrying before giving up`);

  if (requested) return requested;

  // A component that died by itself comes back (bounded) or halts the
  // upgrade naming it, before the phase plans around it (core/repair.ts).
  const repair = repairOrHalt({
    phase: ctx.phase,
    masterNode: ctx.masterNode,
    backupNode: ctx.backupNode,
    observed: input.observed,
    journal: j,
  });

  // Split brain: any switchover or service stop could leave no node, or
  // the wrong one, serving. Requests and time limits above still apply.
  // One step is still right: starting a keepalived that died. A SIGKILLed
  // keepalived leaves its VIP on the interface while the peer takes it
  // too; started again, VRRP elects one holder (lab fault matrix:
  // kill-keepalived on a in UPGRADE_BACKUP).
  const split = splitBrain(input.observed);
  if (split) {
    if (repair?.kind === 'step' && repair.step === 'START_KEEPALIVED') return repair;
    const dead = input.observed.nodes
      .filter((n) => n.reachable && n.keepalivedRunning === false)
      .map((n) => `; keepalived on ${n.name} is not running`)
      .join('');
    return halt(
      `${split}${dead}`,
      `stopped acting in ${ctx.phase}: no switchover, no service stop, no step while both claim it`,
      'make exactly one node hold the VIP and the primary (restore VRRP, IP protocol 112, ' +
        'between the nodes, or fence one); the upgrade resumes by itself, or cancel or roll back',
      'SplitBrain',
    );
  }
  if (repair) return repair;

  const failed = failure(input);
  if (failed) return failed;
  return bounded(input, phaseAction(input));
}

function lostInput(input: PlanInput): LostNodeInput {
  return {
    ctx: input.ctx,
    fromVersion: input.request.fromVersion,
    settings: input.settings,
    observed: input.observed,
    journal: input.journal,
    nowMs: input.nowMs,
  };
}

/** A person's cancel or rollback not yet fed to the machine, as the event for it, or null. */
function requestedStop(input: PlanInput): Action | null {
  const { ctx, journal: j } = input;
  if (j.cancelRequested && !j.requestsSent.includes('cancel')) {
    return event({ type: 'CANCEL_REQUESTED', reason: j.cancelRequested }, 'cancel requested');
  }
  if (j.rollbackRequested && !j.requestsSent.includes('rollback') && !ctx.backupVerified) {
    // Nothing has changed on a node yet: rolling back means stopping here.
    return event(
      {
        type: 'CANCEL_REQUESTED',
        reason: `rollback requested before any node changed: ${j.rollbackRequested}`,
      },
      'rollback requested; nothing to roll back yet',
    );
  }
  if (j.rollbackRequested && !j.requestsSent.includes('rollback') && ctx.phase !== 'ROLLBACK') {
    return event({ type: 'ROLLBACK_REQUESTED', reason: j.rollbackRequested }, 'rollback requested');
  }
  return null;
}

/** The next action of the current phase, before the bounds on runs and waits. */
function phaseAction(input: PlanInput): Action {
  const { ctx } = input;
  switch (ctx.phase) {
    case 'PREPARE':
      return prepare(input);
    case 'BACKUP':
      return backup(input);
    case 'UPGRADE_BACKUP':
      if (!input.observed.migrationsApplied) {
        return step(
          'RUN_MIGRATIONS',
          null,
          'schema changes on the primary before any node changes',
        );
      }
      return upgradeNode(input, ctx.backupNode, 'BACKUP_NODE_HEALTHY');
    case 'VIP_SWITCH':
      return vipSwitch(input);
    case 'UPGRADE_MASTER':
      return upgradeNode(input, ctx.masterNode, 'MASTER_NODE_HEALTHY');
    case 'VERIFY':
      return verify(input);
    case 'ROLLBACK':
      return rollback(input);
    default:
      return wait(`nothing to do in ${ctx.phase}`);
  }
}

/**
 * Both nodes hold the VIP, or both databases are primaries: the cause,
 * naming the nodes, or null. Only reachable nodes count (an unreachable one
 * is handled by the unreachable grace).
 */
export function splitBrain(observed: PairObservation): string | null {
  const holders = vipHolders(observed);
  if (holders.length > 1) {
    return `split brain: both ${holders.map((n) => n.name).join(' and ')} hold the VIP`;
  }
  const primaries = observed.nodes.filter((n) => n.reachable && n.dbRole === 'primary');
  if (primaries.length > 1) {
    return `split brain: both ${primaries.map((n) => n.name).join(' and ')} run a primary database`;
  }
  return null;
}

/**
 * Runs of one step on one node within one phase before the planner stops
 * asking for it. Steps are idempotent, so a step whose effect is on the
 * nodes is observed as done and not planned again; one planned past these
 * counts "succeeds" without its effect (measured: SWITCHOVER and
 * CHECK_HEALTH 60+ times in a ROLLBACK), and repeating it is a loop.
 * The error policy's retries of a failing step come first, so the default
 * allows them plus a few re-runs after an operator restart.
 */
export const STEP_RUN_BUDGET = MAX_TRANSIENT_ATTEMPTS + 3;
/**
 * A switchover moves every client: one, plus one re-run after an operator
 * restart mid-switch and one after a transient failure at its boundary
 * (the driver already retries vipSwitchRetries times inside one run).
 */
export const SWITCHOVER_RUN_BUDGET = 3;
/**
 * Each WAIT_REPLAY run waits up to healthCheckTimeout for a standby still
 * catching up ('waiting' is not a failure of it), and the upgrade timeout is
 * what bounds honest waiting: the budget lets the runs fill that time (plus
 * two), so it only stops a WAIT_REPLAY that returns without its effect.
 */
export function waitReplayRunBudget(settings: UpgradeSettings): number {
  return Math.ceil(settings.upgradeTimeout / settings.healthCheckTimeout) + 2;
}

/**
 * A node is proven (healthCheckConsecutivePasses in a row) at most twice in
 * one phase: in a rollback before it takes the clients and again after the
 * switchover reset its count; the third allowance covers a restart of its
 * services (its count starts again). A failed check fails the node at once
 * (healthFailures), so no failure retries need room here.
 */
export function stepRunBudget(s: Step, settings: UpgradeSettings): number {
  if (s === 'CHECK_HEALTH') return 3 * settings.healthCheckConsecutivePasses;
  if (s === 'SWITCHOVER') return SWITCHOVER_RUN_BUDGET;
  if (s === 'WAIT_REPLAY') return waitReplayRunBudget(settings);
  return STEP_RUN_BUDGET;
}

/**
 * How long the planner may give the same wait before it is no longer
 * waiting but missing something: a component restarting comes back within
 * its health-check timeout plus the checks' retries (60 s with the defaults).
 */
export function waitBoundMs(settings: UpgradeSettings): number {
  return settings.healthCheckTimeout + settings.healthCheckRetries * settings.healthCheckInterval;
}

/**
 * Never act without bound: a step planned past its run budget ends the
 * phase (STEP_FAILED, so a rollback starts), and in a rollback ends it
 * FAILED while a node still serves the clients behind the VIP, else halts
 * (ending would leave nobody watching a pair that serves nobody); a wait
 * that lasted past waitBoundMs becomes a halt naming what is missing.
 */
function bounded(input: PlanInput, a: Action): Action {
  const { ctx, journal: j, settings, nowMs } = input;
  if (a.kind === 'step') {
    const runs = runsOf(j, a.step, a.node);
    const budget = stepRunBudget(a.step, settings);
    if (runs < budget) return a;
    const what = `${a.step}${a.node ? ` on ${a.node}` : ''} ran ${runs} times in ${ctx.phase} (its budget) without the effect it should have`;
    if (ctx.phase !== 'ROLLBACK') return failStep(what);
    if (pairServed(input.observed)) {
      return event({ type: 'ROLLBACK_FAILED', error: what }, 'the rollback could not finish');
    }
    return halt(
      what,
      `stopped the rollback before running it again; no node serves the clients behind the VIP`,
      'bring one node back to serving behind the VIP by hand, then roll back or cancel',
      'StepBudgetSpent',
    );
  }
  if (a.kind === 'wait' && a.untilMs === null) {
    const w = j.waiting;
    const bound = waitBoundMs(settings);
    if (w && w.reason === a.reason && nowMs - w.sinceMs >= bound) {
      return halt(
        `${a.reason}, for ${formatDuration(nowMs - w.sinceMs)} (bound ${formatDuration(bound)})`,
        `stopped waiting in silence in ${ctx.phase}; nothing is done on the nodes`,
        'bring back what is missing (status.problems lists what the last look found), or cancel or roll back',
        'WaitBoundReached',
      );
    }
  }
  return a;
}

/** Exactly one node holds the VIP, serves and runs the primary. */
function pairServed(observed: PairObservation): boolean {
  const holders = vipHolders(observed);
  return holders.length === 1 && serving(holders[0]!) && holders[0]!.dbRole === 'primary';
}

/** A step that failed for good (or too often) ends the phase. */
function failure(input: PlanInput): Action | null {
  const e = input.journal.lastError;
  // Health checks have their own policy (healthFailures). A standby still
  // replaying is 'waiting' for as long as the time limits allow; any other
  // step that keeps waiting (a service that never comes up) fails after a
  // few attempts instead of looping until the upgrade times out.
  // Bring-backs have their own bound (core/repair.ts), which halts.
  if (!e || e.step === 'CHECK_HEALTH' || BRING_BACK_STEPS.includes(e.step)) return null;
  if (e.kind === 'waiting' && e.step === 'WAIT_REPLAY') return null;
  const limits =
    e.kind === 'waiting' ? { ...STEP_RETRY, maxAttempts: MAX_WAITING_ATTEMPTS } : STEP_RETRY;
  if (decide(e.kind, e.attempts, limits, NO_JITTER).do !== 'give-up') return null;
  const what = `${e.step}${e.node ? ` on ${e.node}` : ''} failed${e.attempts > 1 ? ` ${e.attempts} times` : ''}: ${e.message}`;
  if (input.ctx.phase === 'ROLLBACK')
    return event({ type: 'ROLLBACK_FAILED', error: what }, 'the rollback could not finish');
  return event({ type: 'STEP_FAILED', error: what }, 'a step failed');
}

function prepare(input: PlanInput): Action {
  const { ctx, observed, request, journal, nowMs, settings } = input;
  const master = node(observed, ctx.masterNode);
  const standby = node(observed, ctx.backupNode);
  // One slow observation (a probe past its deadline on a busy machine) must
  // not fail the upgrade: preflight waits up to the health-check timeout for
  // the pair to look healthy before it gives up.
  const patient = nowMs - journal.phaseEnteredAtMs < settings.healthCheckTimeout;
  const fail = (why: string) => (patient ? wait(`${why}; looking again`) : failStep(why));
  // Preflight (4.1): both serving the old version, VIP and primary together.
  for (const n of [master, standby]) {
    if (!serving(n)) return fail(`preflight: ${n.name} is not serving (services or /health down)`);
    if (n.appVersion !== request.fromVersion && n.appVersion !== request.targetVersion) {
      return fail(
        `preflight: ${n.name} runs ${n.appVersion ?? 'an unknown version'}, the package upgrades from ${request.fromVersion}`,
      );
    }
  }
  if (!master.holdsVip || master.dbRole !== 'primary') {
    return fail(`preflight: ${master.name} should hold the VIP and the database primary`);
  }
  if (standby.dbRole !== 'standby')
    return fail(`preflight: ${standby.name} is not a streaming standby`);
  if (observed.nodes.some((n) => !n.rsyncPaused))
    return step('PAUSE_RSYNC', null, 'no config copies during the upgrade (4.1.1)');
  const unlocked = observed.nodes.find((n) => !n.configLocked);
  if (unlocked)
    return step('LOCK_CONFIG', unlocked.name, 'no config changes during the upgrade (2.5.4)');
  return event({ type: 'PREPARED' }, 'preflight passed, rsync paused, config locked');
}

function backup(input: PlanInput): Action {
  const { ctx, journal } = input;
  for (const name of [ctx.masterNode, ctx.backupNode]) {
    if (!journal.backupsVerified.includes(name)) {
      return step(
        'BACKUP',
        name,
        'jar, config with the root key, database; checksummed and verified (4.1.2-4.1.5)',
      );
    }
  }
  return event({ type: 'BACKUP_VERIFIED' }, 'backups of both nodes verified');
}

/** Steps 4.2 / 4.4: bring one node to the target version while the other serves. */
function upgradeNode(
  input: PlanInput,
  name: string,
  done: 'BACKUP_NODE_HEALTHY' | 'MASTER_NODE_HEALTHY',
): Action {
  const { observed, request, journal, settings } = input;
  const n = node(observed, name);
  const other = observed.nodes.find((x) => x.name !== name)!;
  // Its version and services read as stand-ins would install on a running node.
  if (notReadInWhole(observed, name)) return wait(unreadWait(name));
  if (n.installedVersion !== request.targetVersion) {
    if (n.servicesRunning) {
      if (n.dbRole === 'standby' && (n.replayLagBytes ?? 1) > 0) {
        return step(
          'WAIT_REPLAY',
          name,
          `${name} must replay everything the primary wrote (4.2.3)`,
        );
      }
      if (!safeToStop(other))
        return wait(`${other.name} must serve behind the VIP before ${name} stops`);
      return step(
        'STOP_SERVICES',
        name,
        `${other.name} serves; stopping ${name} to install ${request.targetVersion}`,
      );
    }
    return step(
      'INSTALL_PACKAGE',
      name,
      `install ${request.targetVersion}, keeping the old jar (4.2.5)`,
    );
  }
  if (!n.servicesRunning)
    return step('START_SERVICES', name, `start ${request.targetVersion} on ${name}`);
  const passes = journal.healthPasses[name] ?? 0;
  // One CHECK_HEALTH step already retried (healthCheckRetries at
  // healthCheckInterval, task list 2.2.5); a failed step is a failed node.
  if ((journal.healthFailures[name] ?? 0) > 0) {
    return fail(
      `${name} failed its health check after the upgrade: ${journal.lastError?.message ?? 'DOWN'}`,
    );
  }
  if (passes < settings.healthCheckConsecutivePasses) {
    return step(
      'CHECK_HEALTH',
      name,
      `health check ${passes + 1} of ${settings.healthCheckConsecutivePasses} in a row`,
    );
  }
  return event(
    { type: done, node: name, consecutivePasses: passes },
    `${name} runs ${request.targetVersion} and is healthy`,
  );
}

/** The other node may be stopped only while this one carries the clients. */
function safeToStop(other: NodeObservation): boolean {
  return serving(other) && other.holdsVip && other.dbRole === 'primary';
}

function vipSwitch(input: PlanInput): Action {
  const { ctx, observed, journal, settings } = input;
  const target = node(observed, ctx.backupNode);
  const holders = vipHolders(observed);
  if (target.holdsVip && target.dbRole === 'primary' && holders.length === 1) {
    return event(
      { type: 'VIP_MOVED', holder: target.name },
      'VIP and database primary on the upgraded node',
    );
  }
  if (
    !serving(target) ||
    (journal.healthPasses[target.name] ?? 0) < settings.healthCheckConsecutivePasses
  ) {
    // A round whose probes failed proves nothing: right after a switchover
    // (which resets the target's passes) one probe past its deadline on a
    // busy machine read as "VIP not on b" and rolled a good switch back
    // (lab rp, load 20 on 2 cores). Look again; the time limits bound it.
    const unread = observed.problems?.[0];
    if (unread) return wait(`the pair was not fully read (${unread}); looking again`);
    return fail(`${target.name} is no longer healthy; the VIP stays where it is`);
  }
  return step('SWITCHOVER', target.name, 'move the database primary and the VIP together (4.3)');
}

function verify(input: PlanInput): Action {
  const { observed, journal, request } = input;
  if (observed.nodes.some((n) => n.rsyncPaused))
    return step('RESUME_RSYNC', null, 'config copies back on (4.5.1)');
  const locked = observed.nodes.find((n) => n.configLocked);
  if (locked) return step('UNLOCK_CONFIG', locked.name, 'config may change again');
  if (observed.configConsistent === null)
    return step('CHECK_CONFIG', null, 'compare config checksums (4.5.3)');
  if (!journal.tempFilesRemoved)
    return step('REMOVE_TEMP_FILES', null, 'package files no longer needed (4.5.9)');
  const standby = observed.nodes.find((n) => n.dbRole === 'standby');
  const holders = vipHolders(observed);
  const checks = {
    bothNodesHealthy: observed.nodes.every(
      (n) => serving(n) && n.appVersion === request.targetVersion,
    ),
    replicationHealthy: standby !== undefined && standby.replayLagBytes !== null,
    vipOnHealthyNode:
      holders.length === 1 && serving(holders[0]!) && holders[0]!.dbRole === 'primary',
    configConsistent: observed.configConsistent === true,
    rsyncResumed: observed.nodes.every((n) => !n.rsyncPaused),
  };
  if (!checks.configConsistent)
    return fail('configuration checksums differ between the nodes after the upgrade');
  const failing = Object.entries(checks)
    .filter(([, ok]) => !ok)
    .map(([k]) => k);
  if (failing.length > 0) return wait(`waiting for ${failing.join(', ')}`);
  return event({ type: 'VERIFIED', checks }, 'both nodes upgraded and every check passed (4.5)');
}

/** Back to the old version on every node that changed, one node at a time. */
function rollback(input: PlanInput): Action {
  const { observed, request, journal, settings } = input;
  // Every choice below reads versions, services and the VIP: from stand-ins
  // the node serving the clients reads as "changed, stopped" and is the one
  // restored (lab fault matrix, stop-replication in VIP_SWITCH at load 40:
  // a SWITCHOVER to b planned with a on 1.0.0 holding the VIP).
  const unread = observed.nodes.find((n) => n.reachable && notReadInWhole(observed, n.name));
  if (unread) return wait(unreadWait(unread.name));
  const onOld = (n: NodeObservation) => n.installedVersion === request.fromVersion;
  const passed = (n: NodeObservation) =>
    (journal.healthPasses[n.name] ?? 0) >= settings.healthCheckConsecutivePasses;
  // A node already on the old version (restored, or never changed) runs again first.
  const stopped = observed.nodes.find((n) => onOld(n) && !n.servicesRunning);
  if (stopped)
    return step('START_SERVICES', stopped.name, `start ${request.fromVersion} on ${stopped.name}`);
  const unhealthy = observed.nodes.find(
    (n) => onOld(n) && (journal.healthFailures[n.name] ?? 0) > 0,
  );
  if (unhealthy) {
    return event(
      {
        type: 'ROLLBACK_FAILED',
        error: `${unhealthy.name} fails its health check on ${request.fromVersion}`,
      },
      'the old version is not healthy either',
    );
  }
  // Restore first a node that does not carry the clients.
  const changed = observed.nodes.filter((n) => !onOld(n));
  const candidate = changed.find((n) => !n.holdsVip) ?? changed[0];
  if (candidate) {
    const other = observed.nodes.find((x) => x.name !== candidate.name)!;
    if (candidate.holdsVip) {
      if (!onOld(other) || !serving(other)) {
        return wait(`${candidate.name} carries the clients and ${other.name} cannot take them yet`);
      }
      if (!passed(other)) {
        return step(
          'CHECK_HEALTH',
          other.name,
          `${other.name} must pass its checks before it takes the clients`,
        );
      }
      return step(
        'SWITCHOVER',
        other.name,
        `move the clients to ${other.name}, back on ${request.fromVersion}`,
      );
    }
    if (candidate.servicesRunning) {
      if (!safeToStop(other))
        return wait(`${other.name} must serve before ${candidate.name} stops`);
      return step(
        'STOP_SERVICES',
        candidate.name,
        `stop ${candidate.name} to restore ${request.fromVersion}`,
      );
    }
    // VERIFY resumed the sync job; left running, it copies the VIP holder's
    // new configuration over the folder being restored (CI saw a restore of
    // /etc/app fail its own check on a release.properties pushed meanwhile).
    if (observed.nodes.some((n) => n.reachable && !n.rsyncPaused))
      return step('PAUSE_RSYNC', null, 'no config copies while a configuration is restored');
    return step(
      'RESTORE',
      candidate.name,
      'restore the jar and the configuration with the root key (3.4.4)',
    );
  }
  const unproven = observed.nodes.find((n) => !passed(n));
  if (unproven)
    return step('CHECK_HEALTH', unproven.name, 'prove health after the rollback (3.4.6)');
  // A rolled-back pair whose standby does not stream is a broken pair, not
  // a finished rollback (lab fault matrix: stop-replication in VIP_SWITCH
  // ended FAILED with b's standby 2389 acknowledged writes behind). Wait for
  // it; past the wait bound this is a halt naming it (bounded()).
  const notStreaming = observed.nodes.find((n) => n.dbRole === 'standby' && n.streaming === false);
  if (notStreaming)
    return wait(
      `the standby database on ${notStreaming.name} is not streaming from the primary (WAL receiver not running); replication must be back before the rollback ends`,
    );
  return event({ type: 'ROLLBACK_DONE' }, `both nodes back on ${request.fromVersion} and healthy`);
}

/** After the end: rsync back on, config unlocked, package files gone (whatever the outcome). */
function tidyUp(input: PlanInput): Action {
  const { observed, journal } = input;
  const e = journal.lastError;
  if (e && e.attempts >= MAX_TRANSIENT_ATTEMPTS) {
    return { kind: 'done', reason: `finished; tidying up failed: ${e.step}: ${e.message}` };
  }
  const reachable = observed.nodes.filter((n) => n.reachable);
  // With a node lost (UNREACHABLE) the pair-wide steps act on the reachable
  // node only: a command to the lost one can hang, and nothing else would
  // happen for this upgrade meanwhile.
  const only = reachable.length < observed.nodes.length ? (reachable[0]?.name ?? null) : null;
  // A tidy-up step planned past its budget did not take effect: finish
  // rather than repeat it (the outcome is already decided).
  const spent = (s: Step, n: string | null) =>
    runsOf(journal, s, n) >= stepRunBudget(s, input.settings);
  const paused = reachable.find((n) => n.rsyncPaused);
  const tidy = (s: Step, n: string | null, why: string): Action =>
    spent(s, n)
      ? {
          kind: 'done',
          reason: `finished; tidying up failed: ${s}${n ? ` on ${n}` : ''} ran ${runsOf(journal, s, n)} times without its effect`,
        }
      : step(s, n, why);
  if (paused) return tidy('RESUME_RSYNC', only && paused.name, 'config copies back on');
  const locked = reachable.find((n) => n.configLocked);
  if (locked) return tidy('UNLOCK_CONFIG', locked.name, 'config may change again');
  if (!journal.tempFilesRemoved)
    return tidy('REMOVE_TEMP_FILES', only, 'package files no longer needed');
  return { kind: 'done', reason: `finished in ${input.ctx.phase}` };
}

/** The wait for a node read only in part (stable: bounded() counts it). */
function unreadWait(name: string): string {
  return `${name} was not read in whole this round (its installed version, services or VIP probe failed); looking again before acting on it`;
}

function failStep(why: string): Action {
  return event({ type: 'STEP_FAILED', error: why }, why);
}

const fail = failStep;
