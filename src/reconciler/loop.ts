// The reconcile loop: keys (resource names), not events. Everything that
// may call for a reconcile — a resource changed, the periodic resync, a
// driver finished, a retry came due — pushes the key; the loop guarantees:
// - at most one reconcile of a key at a time;
// - a trigger that arrives while its key is being reconciled causes exactly
//   one follow-up run (coalesced: ten triggers, one run), so no change is
//   missed and none is handled twice in parallel (exhaustMap alone would
//   drop it, mergeMap would race);
// - a failing key is retried as the one error policy decides
//   (src/core/error-policy.ts: capped exponential backoff with jitter for
//   transient errors, at once for a conflict since a reconcile re-reads
//   everything, never for a terminal one: that key waits for its next
//   trigger) and never stops the loop or the other keys;
// - at most `concurrency` reconciles run at once, across all keys.
// Time comes from an RxJS scheduler so tests run on virtual time.
import {
  asyncScheduler,
  defer,
  mergeMap,
  type Observable,
  type SchedulerLike,
  Subject,
  type Subscription,
  timer,
} from 'rxjs';
import { decide, kindOf, type Random, type RetrySettings } from '../core/error-policy.js';

export interface ReconcileOutcome {
  /** Reconcile this key again after this long even if nothing triggers it. */
  readonly requeueAfterMs?: number | undefined;
}

// biome-ignore lint/suspicious/noConfusingVoidType: most reconcilers return nothing
export type Reconcile = (key: string) => Promise<ReconcileOutcome | undefined | void>;

export interface LoopOptions {
  readonly reconcile: Reconcile;
  readonly concurrency: number;
  readonly backoff?: {
    readonly baseMs: number;
    readonly maxMs: number;
    /** Fraction of each delay that is random (default 0.2). */
    readonly jitter?: number;
  };
  /** Random source for the jitter (default Math.random). */
  readonly random?: Random;
  readonly scheduler?: SchedulerLike;
}

export type LoopEvent =
  | { readonly type: 'started'; readonly key: string }
  | { readonly type: 'succeeded'; readonly key: string; readonly requeueAfterMs: number | null }
  | {
      readonly type: 'failed';
      readonly key: string;
      readonly error: unknown;
      /** null: the error is terminal; the key waits for its next trigger. */
      readonly retryInMs: number | null;
      /** Why there is no retry (retryInMs null). */
      readonly gaveUp?: string;
    };

interface KeyState {
  queued: boolean;
  running: boolean;
  /** Triggered while running: run once more afterwards. */
  dirty: boolean;
  failures: number;
  timer: Subscription | null;
}

export class ReconcileLoop {
  readonly #states = new Map<string, KeyState>();
  readonly #queue = new Subject<string>();
  readonly #events = new Subject<LoopEvent>();
  readonly #subscription: Subscription;
  readonly #scheduler: SchedulerLike;
  readonly #retry: RetrySettings;
  readonly #random: Random;
  #stopped = false;

  constructor(private readonly opts: LoopOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new RangeError(
        `concurrency must be a whole number of at least 1, got ${opts.concurrency}`,
      );
    }
    this.#scheduler = opts.scheduler ?? asyncScheduler;
    const b = opts.backoff ?? { baseMs: 1000, maxMs: 60_000 };
    // The loop is the last line: it gives up only on terminal errors; a
    // transient one is retried at the capped delay for as long as it lasts.
    this.#retry = {
      baseMs: b.baseMs,
      maxMs: b.maxMs,
      jitter: b.jitter ?? 0.2,
      maxAttempts: Number.POSITIVE_INFINITY,
    };
    this.#random = opts.random ?? Math.random;
    this.#subscription = this.#queue
      .pipe(mergeMap((key) => defer(() => this.#run(key)), opts.concurrency))
      .subscribe();
  }

  /** What happened, for logs, metrics and tests. */
  get events$(): Observable<LoopEvent> {
    return this.#events.asObservable();
  }

  /** Feed a stream of keys (resource watch, resync tick, driver results). */
  connect(triggers$: Observable<string>): Subscription {
    return triggers$.subscribe((key) => this.trigger(key));
  }

  trigger(key: string): void {
    if (this.#stopped) return;
    const s = this.#state(key);
    if (s.running) {
      s.dirty = true;
      return;
    }
    if (s.queued) return;
    s.timer?.unsubscribe();
    s.timer = null;
    s.queued = true;
    this.#queue.next(key);
  }

  /** True once stop() was called: nothing is reconciled any more. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Keys currently being reconciled. */
  running(): string[] {
    return [...this.#states].filter(([, s]) => s.running).map(([k]) => k);
  }

  /** Keys waiting for a free slot (metrics: the queue depth). */
  queued(): number {
    let n = 0;
    for (const s of this.#states.values()) if (s.queued) n++;
    return n;
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#states.values()) s.timer?.unsubscribe();
    this.#subscription.unsubscribe();
    this.#events.complete();
  }

  #state(key: string): KeyState {
    let s = this.#states.get(key);
    if (!s) {
      s = { queued: false, running: false, dirty: false, failures: 0, timer: null };
      this.#states.set(key, s);
    }
    return s;
  }

  #later(key: string, ms: number): void {
    const s = this.#state(key);
    s.timer?.unsubscribe();
    s.timer = timer(ms, this.#scheduler).subscribe(() => {
      s.timer = null;
      this.trigger(key);
    });
  }

  async #run(key: string): Promise<void> {
    const s = this.#state(key);
    s.queued = false;
    s.running = true;
    s.dirty = false;
    this.#events.next({ type: 'started', key });
    try {
      const outcome = (await this.opts.reconcile(key)) ?? {};
      s.failures = 0;
      const requeue = outcome.requeueAfterMs ?? null;
      this.#events.next({ type: 'succeeded', key, requeueAfterMs: requeue });
      if (requeue !== null && !this.#stopped) this.#later(key, requeue);
    } catch (error) {
      s.failures++;
      // An error that does not say its kind is taken as transient: retrying
      // a reconcile is always safe (it re-reads everything).
      const d = decide(
        kindOf(error, 'transient'),
        s.failures,
        this.#retry,
        this.#random,
        'reconcile',
      );
      if (d.do === 'give-up') {
        this.#events.next({ type: 'failed', key, error, retryInMs: null, gaveUp: d.cause });
      } else {
        this.#events.next({ type: 'failed', key, error, retryInMs: d.afterMs });
        if (!this.#stopped) this.#later(key, d.afterMs);
      }
    } finally {
      s.running = false;
      if (s.dirty && !this.#stopped) this.trigger(key);
    }
  }
}
