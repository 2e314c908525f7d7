// A node the operator can no longer reach, once the unreachable grace is
// spent: end UNREACHABLE, or halt until it answers again. Pure.
//
// UNREACHABLE is terminal, and a terminal phase other than COMPLETE promises
// the old version on both nodes: nobody rolls back a node after the end.
// Ending is right only when the lost node was last seen serving the old
// version, unchanged since, and the node still in view does too (a cut
// during PREPARE or BACKUP). Otherwise (the lost node was upgraded, stopped,
// or was being changed when it vanished) ending would leave the pair on two
// versions with nobody watching it: the planner halts instead, keeps its
// hands off both nodes, and goes on by itself once the node answers (the
// phase's own planning then finishes the upgrade or the rollback).
//
// Bounds: a halt takes no step. The time limits still run (planner.ts):
// past upgradeTimeout the phase moves to ROLLBACK (or TIMEOUT), ROLLBACK
// halts again while the node is away, and the rollback's own limit ends it
// in TIMEOUT, whose message then names the lost node and the mixed pair. So
// a node that never comes back ends the upgrade after at most twice
// upgradeTimeout, and a person is told what is left to do by hand.

import { formatDuration } from '../config/duration.js';
import type { UpgradeSettings } from '../config/settings.js';
import { type Action, event, halt } from './actions.js';
import type { JournalFacts, LastSeen } from './journal.js';
import type { UpgradeContext } from './machine.js';
import { type NodeObservation, type PairObservation, serving } from './observed.js';
import { timeLimitEvent } from './time-limit.js';

export interface LostNodeInput {
  readonly ctx: UpgradeContext;
  readonly fromVersion: string;
  readonly settings: UpgradeSettings;
  readonly observed: PairObservation;
  readonly journal: JournalFacts;
  readonly nowMs: number;
}

/** Phases before any node changed: a node lost here leaves the pair as it was. */
const UNCHANGED_PHASES = ['PREPARE', 'BACKUP'];

/** A node past the unreachable grace: its name and since when, or null. */
export function lostPastGrace(
  j: JournalFacts,
  settings: UpgradeSettings,
  nowMs: number,
): { name: string; sinceMs: number } | null {
  for (const [name, sinceMs] of Object.entries(j.unreachableSinceMs)) {
    if (nowMs - sinceMs >= settings.unreachableGrace) return { name, sinceMs };
  }
  return null;
}

/** Serving the old version, as far as the planner knows (now, or when last seen). */
function onOldVersion(
  n: NodeObservation,
  seen: LastSeen | undefined,
  fromVersion: string,
): boolean {
  if (n.reachable) return n.installedVersion === fromVersion && n.servicesRunning;
  return (
    seen !== undefined &&
    !seen.changedSince &&
    seen.installedVersion === fromVersion &&
    seen.servicesRunning
  );
}

/**
 * Ending UNREACHABLE now leaves both nodes serving the old version: the
 * phase is before any change, or every node is (or was last seen, with
 * nothing changed since) on fromVersion with its services running.
 */
export function safeToEndUnreachable(input: LostNodeInput): boolean {
  if (UNCHANGED_PHASES.includes(input.ctx.phase)) return true;
  return input.observed.nodes.every((n) =>
    onOldVersion(n, input.journal.lastSeen?.[n.name], input.fromVersion),
  );
}

function describeSeen(seen: LastSeen | undefined): string {
  if (!seen) return 'never seen in this upgrade';
  const parts = [`on ${seen.installedVersion ?? 'an unknown version'}`];
  if (!seen.servicesRunning) parts.push('with its services stopped');
  if (seen.holdsVip && seen.dbRole === 'primary') parts.push('holding the VIP and the primary');
  else if (seen.dbRole === 'standby') parts.push('as the standby');
  if (seen.changedSince) parts.push('with a change to it cut off half way');
  return `last seen ${parts.join(', ')}`;
}

/** What the node still in view does for the clients, in words. */
function describeKept(n: NodeObservation | undefined, lost: string, seen?: LastSeen): string {
  if (!n) return 'no node is in view';
  const version = n.appVersion ?? n.installedVersion ?? 'an unknown version';
  if (n.holdsVip && n.dbRole === 'primary' && serving(n))
    return `the VIP and the primary stay on ${n.name}, serving ${version}`;
  if (seen?.holdsVip && seen.dbRole === 'primary')
    return `${lost} held the VIP and the primary when last seen (clients are served by it if it still runs); ${n.name} is left as it is (${n.dbRole}, ${version})`;
  return `${n.name} is left as it is (${n.holdsVip ? 'holds the VIP' : 'without the VIP'}, database ${n.dbRole}, ${version})`;
}

/** The cause of the halt (stable from round to round: one Event per cause). */
function lostCause(input: LostNodeInput, name: string, sinceMs: number): string {
  const seen = input.journal.lastSeen?.[name];
  const other = input.observed.nodes.find((n) => n.name !== name);
  const otherRuns = other?.reachable
    ? `${other.name} runs ${other.installedVersion ?? 'an unknown version'}`
    : `${other?.name ?? 'the other node'} is unreachable too`;
  return (
    `${name} is unreachable: no SSH answer since ${new Date(sinceMs).toISOString()} ` +
    `(grace ${formatDuration(input.settings.unreachableGrace)} spent), ${describeSeen(seen)}; ` +
    `${otherRuns}: ending UNREACHABLE now would not leave both nodes serving ${input.fromVersion}`
  );
}

/**
 * The action for a node lost past its grace, or null when none is: the
 * NODE_UNREACHABLE event when ending is safe; else a person's cancel or
 * rollback (still fed to the machine while halted: `requested`), else a
 * halt naming the node, what was kept serving and what a person must do.
 */
export function lostNodeAction(input: LostNodeInput, requested: Action | null): Action | null {
  const lost = lostPastGrace(input.journal, input.settings, input.nowMs);
  if (!lost) return null;
  if (safeToEndUnreachable(input)) {
    return event(
      {
        type: 'NODE_UNREACHABLE',
        node: lost.name,
        error: `no SSH answer for ${formatDuration(input.nowMs - lost.sinceMs)}`,
      },
      `${lost.name} stayed unreachable`,
    );
  }
  if (requested) return requested;
  const seen = input.journal.lastSeen?.[lost.name];
  const other = input.observed.nodes.find((n) => n.name !== lost.name && n.reachable);
  return halt(
    lostCause(input, lost.name, lost.sinceMs),
    `stopped acting in ${input.ctx.phase}: no step on either node while ${lost.name} cannot be seen; ${describeKept(other, lost.name, seen)}`,
    `restore SSH and the network to ${lost.name}: the upgrade then goes on by itself and is finished or rolled back; ` +
      `or cancel or roll back (that too waits for ${lost.name}); the time limits still run ` +
      `(upgradeTimeout ${formatDuration(input.settings.upgradeTimeout)}, then the rollback's own)`,
    'NodeUnreachable',
  );
}

/**
 * For a time limit that ends the upgrade while a node is lost and ending
 * is not safe: the words the TIMEOUT message adds so a person knows the
 * pair is left on two versions. Empty otherwise.
 */
export function lostNodeNote(input: LostNodeInput): string {
  const lost = lostPastGrace(input.journal, input.settings, input.nowMs);
  if (!lost || safeToEndUnreachable(input)) return '';
  return `; ${lostCause(input, lost.name, lost.sinceMs)}: restore ${lost.name} and bring both nodes to one version by hand`;
}

/** What the reconciler knows when it cannot connect to the pair to go on (no runtime). */
export interface LostAtStartInput {
  readonly ctx: UpgradeContext;
  /** The version the pair ran before the upgrade (the status' fromVersion); null when never read. */
  readonly fromVersion: string | null;
  readonly settings: UpgradeSettings;
  readonly journal: JournalFacts;
  readonly nowMs: number;
  /** The node the connection failed to, after the start retries (they stand for the grace). */
  readonly node: string;
  /** What the connection said (words for the event; kept out of the halt's cause, which must stay stable). */
  readonly error: string;
}

/** Neither node read: without a runtime the operator sees nothing of the pair. */
function unread(name: string): NodeObservation {
  return {
    name,
    reachable: false,
    appVersion: null,
    installedVersion: null,
    servicesRunning: false,
    healthy: false,
    dbRole: 'unknown',
    holdsVip: false,
    replayLagBytes: null,
    rsyncPaused: false,
    configLocked: false,
  };
}

/**
 * The reconciler gave up connecting to a node (the runtime could not be
 * built: after an operator restart, or once a runtime was dropped). The
 * same rule as a node lost past the grace: the time limits first (as the
 * planner has them), then NODE_UNREACHABLE only when that leaves both nodes
 * serving the old version (nothing started, nothing changed yet, or both
 * last seen unchanged on fromVersion), else a NodeUnreachable halt: the
 * reconciler keeps trying to connect and goes on when the node answers.
 */
export function lostAtStartAction(input: LostAtStartInput): Action {
  const { ctx, journal: j, settings, nowMs, node: name } = input;
  const observed: PairObservation = {
    nodes: [unread(ctx.masterNode), unread(ctx.backupNode)],
    configConsistent: null,
    migrationsApplied: false,
  };
  const li: LostNodeInput = {
    ctx,
    fromVersion: input.fromVersion ?? '',
    settings,
    observed,
    journal: j,
    nowMs,
  };
  const nodeUnreachable = event(
    { type: 'NODE_UNREACHABLE', node: name, error: input.error },
    `${name} could not be connected to`,
  );
  if (ctx.phase === 'IDLE' || UNCHANGED_PHASES.includes(ctx.phase)) return nodeUnreachable;
  const safe = input.fromVersion !== null && safeToEndUnreachable(li);
  const limit = timeLimitEvent(ctx, j, settings, nowMs, () =>
    safe
      ? ''
      : `; ${lostAtStartCause(input)}: restore ${name} and bring both nodes to one version by hand`,
  );
  if (limit) return limit;
  if (safe) return nodeUnreachable;
  return halt(
    lostAtStartCause(input),
    `stopped in ${ctx.phase}: no step on either node; connecting again every few seconds`,
    `restore SSH and the network to ${name}: the upgrade then goes on by itself and is finished or rolled back; ` +
      `the time limits still run (upgradeTimeout ${formatDuration(settings.upgradeTimeout)}, then the rollback's own)`,
    'NodeUnreachable',
  );
}

/** The halt's cause when the pair cannot be connected to (stable from try to try). */
function lostAtStartCause(input: LostAtStartInput): string {
  const { ctx, journal: j, node: name } = input;
  const other = name === ctx.masterNode ? ctx.backupNode : ctx.masterNode;
  const from = input.fromVersion ?? 'the version it ran before (never read)';
  return (
    `${name} is unreachable: the operator cannot connect to it to go on with the upgrade in ${ctx.phase}, ` +
    `${describeSeen(j.lastSeen?.[name])}; ${other} ${describeSeen(j.lastSeen?.[other])}: ` +
    `ending UNREACHABLE now would not leave both nodes serving ${from}`
  );
}
