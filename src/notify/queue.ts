// One receiver's queue: events go out one at a time, in the order they
// were queued (a receiver sees PREPARE before BACKUP), each retried with
// backoff until delivered or given up before the next one goes. push()
// returns at once; everything else happens on the queue's own timers, so a
// slow or dead receiver delays only its own later events, never the caller.

import type { ReceiverConfig } from '../config/receivers.js';
import type { CloudEvent } from '../core/notification.js';
import { nextRetry, type RetryPolicy } from './backoff.js';
import type { AttemptResult } from './deliver.js';

/** Where the queue writes down what it did (the delivery table). */
export interface DeliveryLog {
  /** A row for a new delivery: its id, or null when this receiver already has this event. */
  open(receiver: string, event: CloudEvent): Promise<number | null>;
  attempt(
    id: number,
    a: { attempts: number; status: number | null; error: string | null; at: Date },
  ): Promise<void>;
  finish(
    id: number,
    outcome: 'delivered' | 'gave-up' | 'dropped',
    at: Date,
    why?: string,
  ): Promise<void>;
}

export interface QueueOptions {
  /** The key the delivery table names it by. */
  readonly name: string;
  readonly policy: RetryPolicy;
  /** Events waiting at most; one more is recorded dropped ("queue full"). */
  readonly limit: number;
  readonly send: (
    receiver: ReceiverConfig,
    event: CloudEvent,
    signal: AbortSignal,
  ) => Promise<AttemptResult>;
  readonly log: DeliveryLog;
  /** Problems of the queue itself (the store refusing a write); never secrets. */
  readonly warn: (message: string) => void;
  readonly now?: () => Date;
  readonly random?: () => number;
}

interface Item {
  readonly event: CloudEvent;
  readonly receiver: ReceiverConfig;
  readonly queuedAt: Date;
  /** The row's id; null: already sent once; undefined: the store failed (sent unrecorded). */
  readonly row: Promise<number | null | undefined>;
}

export class ReceiverQueue {
  readonly #o: QueueOptions;
  readonly #items: Item[] = [];
  readonly #stop = new AbortController();
  #running: Promise<void> | null = null;
  #opening: Promise<unknown> = Promise.resolve();

  constructor(o: QueueOptions) {
    this.#o = o;
  }

  get length(): number {
    return this.#items.length;
  }

  push(receiver: ReceiverConfig, event: CloudEvent): void {
    if (this.#stop.signal.aborted) return;
    const row = this.#open(event);
    if (this.#items.length >= this.#o.limit) {
      void this.#finish(row, 'dropped', `queue full (${this.#o.limit} events waiting)`);
      return;
    }
    this.#items.push({ event, receiver, queuedAt: this.#now(), row });
    this.#running ??= this.#pump().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves when every queued event was delivered or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops at once: the attempt in flight is aborted; what is left is recorded dropped. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.idle();
    for (const item of this.#items.splice(0)) {
      await this.#finish(item.row, 'dropped', 'the operator stopped before it was delivered');
    }
  }

  #now(): Date {
    return this.#o.now?.() ?? new Date();
  }

  /** Rows are opened one after the other, so the table lists them in queue order. */
  #open(event: CloudEvent): Promise<number | null | undefined> {
    const row = this.#opening.then(() =>
      this.#o.log.open(this.#o.name, event).catch((err: unknown) => {
        this.#o.warn(`notification ${event.id} to ${this.#o.name}: not recorded: ${String(err)}`);
        return undefined;
      }),
    );
    this.#opening = row;
    return row;
  }

  async #finish(
    row: Promise<number | null | undefined>,
    outcome: 'delivered' | 'gave-up' | 'dropped',
    why?: string,
  ): Promise<void> {
    const id = await row;
    if (id === null || id === undefined) return;
    await this.#o.log
      .finish(id, outcome, this.#now(), why)
      .catch((err: unknown) =>
        this.#o.warn(`delivery ${id}: outcome not recorded: ${String(err)}`),
      );
  }

  async #pump(): Promise<void> {
    while (this.#items.length > 0 && !this.#stop.signal.aborted) {
      const item = this.#items[0]!;
      await this.#deliver(item);
      if (this.#stop.signal.aborted) return;
      this.#items.shift();
    }
  }

  async #deliver(item: Item): Promise<void> {
    const id = await item.row;
    if (id === null) return; // this receiver already has this event
    const signal = this.#stop.signal;
    for (let attempts = 1; ; attempts++) {
      const r = await this.#o.send(item.receiver, item.event, signal);
      if (signal.aborted) return;
      const at = this.#now();
      if (id !== undefined) {
        await this.#o.log
          .attempt(id, { attempts, status: r.status, error: r.error, at })
          .catch((err: unknown) =>
            this.#o.warn(`delivery ${id}: attempt not recorded: ${String(err)}`),
          );
      }
      if (r.ok) return this.#finish(item.row, 'delivered');
      if (!r.retryable) return this.#finish(item.row, 'gave-up', r.error ?? undefined);
      const d = nextRetry(
        attempts,
        item.queuedAt.getTime(),
        at.getTime(),
        this.#o.policy,
        this.#o.random,
      );
      if (d.do === 'give-up') return this.#finish(item.row, 'gave-up', `${r.error}; ${d.why}`);
      await sleep(d.afterMs, signal);
      if (signal.aborted) return;
    }
  }
}

/** Resolves after ms, or at once when the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
