// Bring back or name (issue 12.3). A component the operator is responsible
// for that died by itself (a node's database, its services, keepalived) is
// started again by an ensure-style driver when that is safe, a small bounded
// number of times; otherwise, or once the bound is spent, the upgrade halts
// naming the component and what a person must do. Without this the planner
// waited for the component (VERIFY's "waiting for bothNodesHealthy") until
// the upgrade timed out, saying nothing.
//
// Pure: a function of the phase, this round's observation and the journal.
// Called from one spot in planner.ts, before the phase's own planning.

import { type Action, halt, type Step, step } from './actions.js';
import { bringBackKey, type JournalFacts } from './journal.js';
import type { NodeObservation, PairObservation } from './observed.js';
import type { Phase } from './phases.js';

/** Attempts to bring back one component on one node before the upgrade halts. */
export const MAX_BRING_BACKS = 2;

export interface RepairInput {
  readonly phase: Phase;
  readonly masterNode: string;
  readonly backupNode: string;
  readonly observed: PairObservation;
  readonly journal: JournalFacts;
}

/**
 * Phases in which a down database or keepalived is never the operator's
 * doing: between steps nothing of the upgrade leaves them stopped. Not
 * VIP_SWITCH nor ROLLBACK: a switchover stops the old primary (and, with the
 * stop method, its keepalived) and its own retry finishes what it began;
 * starting either by hand there could hand the VIP or the primary back.
 * PREPARE's preflight fails the upgrade naming an unhealthy node instead.
 */
const WATCHED: readonly Phase[] = ['BACKUP', 'UPGRADE_BACKUP', 'UPGRADE_MASTER', 'VERIFY'];

/**
 * The nodes whose services must be running in a phase: not the node being
 * upgraded (the planner stops and starts it itself), nor any node in
 * ROLLBACK (rollback.ts-style planning restores stopped nodes itself).
 */
function mustServe(i: RepairInput): readonly string[] {
  switch (i.phase) {
    case 'BACKUP':
    case 'VERIFY':
      return [i.masterNode, i.backupNode];
    case 'UPGRADE_BACKUP':
    case 'VIP_SWITCH':
      return [i.masterNode];
    case 'UPGRADE_MASTER':
      return [i.backupNode];
    default:
      return [];
  }
}

/** The next bring-back or halt, or null when every component is where it should be. */
export function repairOrHalt(i: RepairInput): Action | null {
  if (!WATCHED.includes(i.phase) && i.phase !== 'VIP_SWITCH') return null;
  const nodes = i.observed.nodes.filter((n) => n.reachable);
  // Only with both nodes in view: an unreachable node has its own rule.
  if (nodes.length !== i.observed.nodes.length) return null;
  if (WATCHED.includes(i.phase)) {
    for (const n of nodes) {
      const a = database(i, n);
      if (a) return a;
    }
    for (const n of nodes) {
      if (n.keepalivedRunning === false) {
        const a = bounded(
          i,
          'START_KEEPALIVED',
          n.name,
          `keepalived on ${n.name} is not running: without it the pair has no failover`,
        );
        if (a) return a;
      }
    }
  }
  for (const name of mustServe(i)) {
    const n = nodes.find((x) => x.name === name);
    if (n && !n.servicesRunning) {
      const a = bounded(
        i,
        'BRING_BACK_SERVICES',
        n.name,
        `the services on ${n.name} stopped by themselves; ${n.name} must serve in ${i.phase}`,
      );
      if (a) return a;
    }
  }
  return null;
}

function database(i: RepairInput, n: NodeObservation): Action | null {
  if (n.dbRole !== 'down') return null;
  const other = i.observed.nodes.find((x) => x.name !== n.name)!;
  if (other.dbRole === 'primary' && n.dbStandbySignal === true) {
    return bounded(
      i,
      'START_DATABASE',
      n.name,
      `the standby database on ${n.name} is down; ${other.name} is the primary, so it starts again as its standby`,
    );
  }
  // A primary that died (or a down database that would not come back as a
  // standby of a running primary) is not fixed by guessing: starting it
  // could make a second primary, and promoting the other loses what it did
  // not receive.
  const what =
    n.dbStandbySignal === true
      ? `the database on ${n.name} is down and ${other.name} is not a running primary it could follow (${other.dbRole})`
      : `the database on ${n.name} is down and was not a standby (the primary, or stopped by hand)`;
  return halt(
    what,
    `stopped acting in ${i.phase}: the operator does not start or fail over a primary by guessing`,
    `find out why PostgreSQL on ${n.name} stopped; start it as it was (or fail over by hand and make the other node a standby); the upgrade goes on by itself once ${n.name} runs its database, or cancel it`,
    'PrimaryDown',
  );
}

/** What each bring-back step brings back, for the halt's words. */
const COMPONENT: Partial<Record<Step, { readonly name: string; readonly it: string }>> = {
  START_DATABASE: { name: 'the database', it: 'it' },
  START_KEEPALIVED: { name: 'keepalived', it: 'it' },
  BRING_BACK_SERVICES: { name: 'the services', it: 'them' },
};

/** The step while attempts remain, else the halt naming the component. */
function bounded(i: RepairInput, s: Step, node: string, reason: string): Action {
  const tried = i.journal.bringBacks?.[bringBackKey(s, node)] ?? 0;
  if (tried < MAX_BRING_BACKS)
    return step(s, node, `${reason} (bring-back ${tried + 1} of ${MAX_BRING_BACKS})`);
  const c = COMPONENT[s]!;
  const last =
    i.journal.lastError?.step === s && i.journal.lastError.node === node
      ? `; the last attempt: ${i.journal.lastError.message}`
      : '';
  return halt(
    `${c.name} on ${node}: still down after ${tried} attempts to start ${c.it}`,
    `started ${c.name} on ${node} ${tried} times in this upgrade and stopped trying${last}`,
    `find out why ${c.name} on ${node} stopped and start ${c.it} by hand; the upgrade goes on by itself once ${c.name} on ${node} run${c.it === 'them' ? '' : 's'}, or cancel it`,
    'ComponentDown',
  );
}
