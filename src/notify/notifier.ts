// The notifier: takes the reconciler's facts, turns each into one event,
// and hands it to the queue of every receiver that wants it (the global
// ones from the configuration, then the pair's own from its HAPair).
// notify() returns at once and never throws; which receivers a pair has is
// looked up on an intake chain of its own, in order, so events reach each
// queue in the order they happened.

import type { ReceiverConfig } from '../config/receivers.js';
import {
  buildEvent,
  type CloudEvent,
  kindOfEvent,
  type NotifyFact,
  type NotifySink,
} from '../core/notification.js';
import type { Logger } from '../log/logger.js';
import {
  dropLeftovers,
  finishDelivery,
  openDelivery,
  recordAttempt,
} from '../store/notification-deliveries.js';
import type { SqlClient } from '../store/sql-client.js';
import { DEFAULT_RETRY, type RetryPolicy } from './backoff.js';
import { sendOnce } from './deliver.js';
import { type DeliveryLog, type QueueOptions, ReceiverQueue } from './queue.js';

export interface NotifySettings {
  readonly retry: RetryPolicy;
  /** One attempt's limit (connect, send, answer). */
  readonly requestTimeoutMs: number;
  /** Events waiting per receiver at most. */
  readonly queueLimit: number;
}

export const DEFAULT_NOTIFY_SETTINGS: NotifySettings = {
  retry: DEFAULT_RETRY,
  requestTimeoutMs: 10_000,
  queueLimit: 1000,
};

export interface NotifierOptions {
  readonly db: SqlClient;
  /** notifications.receivers of the configuration. */
  readonly receivers: readonly ReceiverConfig[];
  /** The pair's own receivers (spec.notifications.receivers), [] when none or no pair. */
  readonly pairReceivers: (pair: string) => Promise<readonly ReceiverConfig[]>;
  readonly settings?: NotifySettings;
  /** This operator process, for the delivery table (a restart drops its own leftovers). */
  readonly owner: string;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly random?: () => number;
  /** Replaces the HTTP attempt (unit tests). */
  readonly send?: QueueOptions['send'];
}

/** The delivery table as a queue's log. */
export function storeDeliveryLog(db: SqlClient, owner: string): DeliveryLog {
  return {
    open: (receiver, e: CloudEvent) =>
      openDelivery(db, {
        receiver,
        eventId: e.id,
        eventType: e.type,
        upgradeId: e.subject,
        owner,
      }),
    attempt: (id, a) => recordAttempt(db, id, a),
    finish: (id, outcome, at, why) => finishDelivery(db, id, outcome, at, why ?? null),
  };
}

export class Notifier implements NotifySink {
  readonly #o: NotifierOptions;
  readonly #settings: NotifySettings;
  readonly #queues = new Map<string, ReceiverQueue>();
  readonly #log: DeliveryLog;
  #intake: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(o: NotifierOptions) {
    this.#o = o;
    this.#settings = o.settings ?? DEFAULT_NOTIFY_SETTINGS;
    this.#log = storeDeliveryLog(o.db, o.owner);
  }

  /**
   * At start: what this operator left pending when it stopped (and anything
   * pending longer than a delivery may live) is marked dropped. Not resumed.
   */
  async start(): Promise<number> {
    const now = this.#now();
    const cutoff = new Date(now.getTime() - this.#settings.retry.maxAgeMs - 60_000);
    const n = await dropLeftovers(this.#o.db, this.#o.owner, cutoff, now);
    if (n > 0) {
      this.#o.logger.warn(
        `notifications: ${n} delivery(ies) left pending by an earlier operator marked dropped`,
      );
    }
    return n;
  }

  notify(fact: NotifyFact): void {
    if (this.#stopped) return;
    let event: CloudEvent;
    try {
      event = buildEvent(fact);
    } catch (err) {
      this.#o.logger.warn(`notification not built: ${String(err)}`, { upgradeId: fact.upgradeId });
      return;
    }
    this.#intake = this.#intake
      .then(() => this.#fanOut(fact.pair, event))
      .catch((err: unknown) => {
        this.#o.logger.warn(`notification ${event.id} not queued: ${String(err)}`, {
          upgradeId: fact.upgradeId,
        });
      });
  }

  /** Resolves when every event notified so far was delivered or given up (tests). */
  async idle(): Promise<void> {
    await this.#intake;
    for (const q of this.#queues.values()) await q.idle();
  }

  /** Stops every queue: attempts in flight are aborted; what is left is recorded dropped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#intake;
    await Promise.all([...this.#queues.values()].map((q) => q.stop()));
  }

  async #fanOut(pair: string, event: CloudEvent): Promise<void> {
    const kind = kindOfEvent(event);
    const own = await this.#o.pairReceivers(pair).catch((err: unknown) => {
      this.#o.logger.warn(`notifications: receivers of pair ${pair} not read: ${String(err)}`);
      return [];
    });
    const targets: [string, ReceiverConfig][] = [
      ...this.#o.receivers.map((r): [string, ReceiverConfig] => [r.name, r]),
      // A pair's receiver is named after its pair: two pairs may both have "chat".
      ...own.map((r): [string, ReceiverConfig] => [`${pair}/${r.name}`, r]),
    ];
    for (const [key, r] of targets) {
      if (r.events && !r.events.includes(kind)) continue;
      this.#queue(key).push(r, event);
    }
  }

  #queue(key: string): ReceiverQueue {
    let q = this.#queues.get(key);
    if (!q) {
      const timeoutMs = this.#settings.requestTimeoutMs;
      q = new ReceiverQueue({
        name: key,
        policy: this.#settings.retry,
        limit: this.#settings.queueLimit,
        send: this.#o.send ?? ((r, e, signal) => sendOnce(r, e, { timeoutMs, signal })),
        log: this.#log,
        warn: (m) => this.#o.logger.warn(m),
        ...(this.#o.now ? { now: this.#o.now } : {}),
        ...(this.#o.random ? { random: this.#o.random } : {}),
      });
      this.#queues.set(key, q);
    }
    return q;
  }

  #now(): Date {
    return this.#o.now?.() ?? new Date();
  }
}

/** The notifications section of the configuration, defaults filled in. */
export function notifySettingsFrom(
  c: {
    requestTimeout?: number;
    queueLimit?: number;
    retry?: { maxAttempts?: number; maxAge?: number; baseDelay?: number; maxDelay?: number };
  } = {},
): NotifySettings {
  const d = DEFAULT_NOTIFY_SETTINGS;
  return {
    requestTimeoutMs: c.requestTimeout ?? d.requestTimeoutMs,
    queueLimit: c.queueLimit ?? d.queueLimit,
    retry: {
      maxAttempts: c.retry?.maxAttempts ?? d.retry.maxAttempts,
      maxAgeMs: c.retry?.maxAge ?? d.retry.maxAgeMs,
      baseDelayMs: c.retry?.baseDelay ?? d.retry.baseDelayMs,
      maxDelayMs: c.retry?.maxDelay ?? d.retry.maxDelayMs,
    },
  };
}
