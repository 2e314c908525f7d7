// What GET /api/v1/upgrade/progress/{id} serves: the last answer computed
// from the source and the store, kept in memory until something says it
// changed. Progress is what dashboards and scripts poll, many at once, all
// asking the same few upgrades; reading the UpgradeRequest (a Kubernetes API
// call, or a store row), the task and its steps for every poll would put that
// load on the store and the API server for answers that change a few times
// a second at most.
//
// Freshness: an entry is dropped at once when the operator learns of a
// change to that upgrade (the source's change feed, the API's own writes,
// the reconciler after each action), and in any case after maxAgeMs, which
// bounds how stale an answer can be when the writer is one this process
// cannot hear (another replica writing the shared store). Concurrent misses
// for one id share one computation; a computation that started before an
// invalidation is never cached (nor joined by requests arriving after it).
// Failures (unknown upgrade, store down) are not cached.

export interface ProgressViewOptions<T> {
  /** Reads the answer afresh. */
  readonly compute: (id: string) => Promise<T>;
  /** Longest time an answer is served without being read again. */
  readonly maxAgeMs: number;
  /** Most upgrades kept; the least recently computed go first. */
  readonly maxEntries: number;
  readonly nowMs?: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly computedAtMs: number;
}

export const DEFAULT_PROGRESS_MAX_AGE_MS = 500;
export const DEFAULT_PROGRESS_MAX_ENTRIES = 1000;

export class ProgressView<T> {
  readonly #entries = new Map<string, Entry<T>>();
  /**
   * Computations running, by id. Invalidation removes an id from here, which
   * is what marks its computation as outdated: only a computation still
   * listed when it ends is cached.
   */
  readonly #inFlight = new Map<string, Promise<T>>();
  readonly #now: () => number;

  constructor(private readonly opts: ProgressViewOptions<T>) {
    this.#now = opts.nowMs ?? (() => performance.now());
  }

  get(id: string): Promise<T> {
    const hit = this.#entries.get(id);
    if (hit && this.#now() - hit.computedAtMs < this.opts.maxAgeMs)
      return Promise.resolve(hit.value);
    const running = this.#inFlight.get(id);
    if (running) return running;
    // The answer's age counts from when its reads began, not ended.
    const startedAtMs = this.#now();
    const promise: Promise<T> = this.opts.compute(id).then(
      (value) => {
        if (this.#inFlight.get(id) === promise) {
          this.#inFlight.delete(id);
          this.#store(id, value, startedAtMs);
        }
        return value;
      },
      (e: unknown) => {
        if (this.#inFlight.get(id) === promise) this.#inFlight.delete(id);
        throw e;
      },
    );
    this.#inFlight.set(id, promise);
    return promise;
  }

  /** Something about this upgrade changed (or, without an id, maybe everything did). */
  invalidate(id?: string): void {
    if (id === undefined) {
      this.#entries.clear();
      this.#inFlight.clear();
      return;
    }
    this.#entries.delete(id);
    this.#inFlight.delete(id);
  }

  /** How many answers are held (tests, metrics). */
  get size(): number {
    return this.#entries.size;
  }

  #store(id: string, value: T, computedAtMs: number): void {
    this.#entries.delete(id); // re-inserted last: Map order is the eviction order
    this.#entries.set(id, { value, computedAtMs });
    while (this.#entries.size > this.opts.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value as string);
    }
  }
}
