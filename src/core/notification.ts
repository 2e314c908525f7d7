// What a notification says, as a CloudEvents 1.0 event (structured mode:
// the whole event is the JSON body, `application/cloudevents+json`). Pure:
// the reconciler hands over a fact, this turns it into the event every
// receiver gets, so the same fact always makes the same event (and the same
// id: a receiver, and the delivery table, can tell a repeat from a new one).
// The delivery (queues, HTTP, the delivery table) is src/notify's.
import type { NotifyKind } from '../config/receivers.js';
import type { Phase } from './phases.js';

export const EVENT_TYPE_PREFIX = 'io.pairshift.upgrade';

/** A terminal phase's word in the result event's type. */
const RESULT_WORD: Partial<Record<Phase, string>> = {
  COMPLETE: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TIMEOUT: 'timedout',
  UNREACHABLE: 'unreachable',
};

/** Downtime the operator's VIP probe measured; null when no probe ran. */
export interface MeasuredDowntime {
  readonly longestMs: number;
  readonly totalMs: number;
}

interface Common {
  readonly upgradeId: string;
  readonly pair: string;
  readonly at: Date;
  /** Versions as far as known when the fact happened (null: not known yet). */
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly message: string;
}

/** What happened, as the reconciler recorded it. */
export type NotifyFact =
  | (Common & { readonly kind: 'phase'; readonly from: Phase; readonly to: Phase })
  | (Common & { readonly kind: 'halted'; readonly phase: Phase; readonly reason: string })
  | (Common & {
      readonly kind: 'result';
      readonly phase: Phase;
      readonly rolledBack: boolean;
      readonly downtime: MeasuredDowntime | null;
    });

export interface CloudEvent {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: NotifyData;
}

export interface NotifyData {
  readonly pair: string;
  readonly upgradeId: string;
  readonly phase: Phase;
  /** phase events only: the phase left. */
  readonly previousPhase?: Phase;
  /** halted events only: the Stalled condition's reason (SplitBrain, ...). */
  readonly reason?: string;
  /** result events only. */
  readonly rolledBack?: boolean;
  readonly fromVersion: string | null;
  readonly toVersion: string | null;
  readonly message: string;
  /**
   * result events only: what the probe measured, or null when nothing was
   * measured (no probe ran): never a made-up 0.
   */
  readonly downtime?: MeasuredDowntime | null;
}

export function eventType(fact: NotifyFact): string {
  switch (fact.kind) {
    case 'phase':
      return `${EVENT_TYPE_PREFIX}.phase.changed`;
    case 'halted':
      return `${EVENT_TYPE_PREFIX}.halted`;
    case 'result': {
      const word = RESULT_WORD[fact.phase];
      if (!word) throw new Error(`a result needs a terminal phase, got ${fact.phase}`);
      return `${EVENT_TYPE_PREFIX}.${word}`;
    }
  }
}

/**
 * The event id: the same fact gives the same id (the upgrade, what
 * happened, and when it was recorded), so a fact reported twice (a status
 * write retried, an operator restarted) is one event to the receiver.
 */
export function eventId(fact: NotifyFact): string {
  const ms = fact.at.getTime();
  switch (fact.kind) {
    case 'phase':
      return `${fact.upgradeId}/phase/${fact.to}/${ms}`;
    case 'halted':
      return `${fact.upgradeId}/halted/${fact.reason}/${ms}`;
    case 'result':
      // One result per upgrade, whenever it is reported.
      return `${fact.upgradeId}/result/${fact.phase}`;
  }
}

/** source: a URI-reference naming the pair (CloudEvents: source + id is unique). */
export function eventSource(pair: string): string {
  return `/pairshift/pairs/${encodeURIComponent(pair)}`;
}

export function buildEvent(fact: NotifyFact): CloudEvent {
  const base = {
    pair: fact.pair,
    upgradeId: fact.upgradeId,
    fromVersion: fact.fromVersion,
    toVersion: fact.toVersion,
    message: fact.message,
  };
  const data: NotifyData =
    fact.kind === 'phase'
      ? { ...base, phase: fact.to, previousPhase: fact.from }
      : fact.kind === 'halted'
        ? { ...base, phase: fact.phase, reason: fact.reason }
        : {
            ...base,
            phase: fact.phase,
            rolledBack: fact.rolledBack,
            downtime: fact.downtime ? { ...fact.downtime } : null,
          };
  return {
    specversion: '1.0',
    id: eventId(fact),
    source: eventSource(fact.pair),
    type: eventType(fact),
    subject: fact.upgradeId,
    time: fact.at.toISOString(),
    datacontenttype: 'application/json',
    data,
  };
}

export function kindOfEvent(e: CloudEvent): NotifyKind {
  if (e.type === `${EVENT_TYPE_PREFIX}.phase.changed`) return 'phase';
  if (e.type === `${EVENT_TYPE_PREFIX}.halted`) return 'halted';
  return 'result';
}

/** Where the reconciler reports facts: it must return at once and never throw. */
export interface NotifySink {
  notify(fact: NotifyFact): void;
}
