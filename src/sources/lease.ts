// Leader election on a coordination.k8s.io/v1 Lease, so several operator
// replicas can run and only one reconciles (the Kubernetes source gates its
// changes$ on isLeader$). The algorithm is client-go's leaderelection:
// - no Lease: create it holding it (409: someone else was faster);
// - we hold it: renew (renewTime = now) every renewIntervalMs with the
//   resourceVersion as a precondition, so two writers cannot both win;
// - another holds it: wait until the Lease has not changed for
//   leaseDurationSeconds as measured on OUR clock since we last saw it change
//   (clocks of different machines are not compared), then take it over with
//   leaseTransitions + 1; an empty holder (a released Lease) is taken at once;
// - a leader whose renewals fail for renewDeadlineMs stops leading. The
//   deadline is shorter than the lease duration, so it steps down before
//   anyone else may take over: never two leaders at once.
// Times on the Lease are MicroTime (RFC 3339 with microseconds).
import { CoordinationV1Api, type KubeConfig, V1MicroTime } from '@kubernetes/client-node';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { httpStatusOf, type SourceLog } from './kubernetes.js';

export interface LeaseElectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The Lease's name (default "pairshift-operator"). */
  readonly name?: string;
  /** This replica (the pod name): unique among replicas. */
  readonly identity: string;
  /** How long a Lease is valid after its last renewal (default 15 s). */
  readonly leaseDurationSeconds?: number;
  /** How often the leader renews and others retry (default 2 s). */
  readonly renewIntervalMs?: number;
  /** The leader gives up after failing to renew this long (default 2/3 of the lease). */
  readonly renewDeadlineMs?: number;
  readonly log?: SourceLog;
  /** Milliseconds now (tests). */
  readonly now?: () => number;
}

// biome-ignore lint/suspicious/noExplicitAny: raw Lease JSON
type RawLease = { [key: string]: any };

const silent: SourceLog = { info() {}, warn() {}, debug() {} };

export class LeaseElector {
  readonly identity: string;
  readonly leaseName: string;
  readonly isLeader$: Observable<boolean>;

  readonly #api: CoordinationV1Api;
  readonly #leader = new BehaviorSubject(false);
  readonly #opts: LeaseElectorOptions;
  readonly #log: SourceLog;
  readonly #now: () => number;
  readonly #durationMs: number;
  readonly #intervalMs: number;
  readonly #deadlineMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #tick: Promise<void> | null = null;
  /** Local time of our last successful create/renew. */
  #renewedAt = 0;
  /** What we last saw on the Lease and when (our clock). */
  #observed = '';
  /** The holder the last read of the Lease named ('' : nobody). */
  #lastHolder = '';
  #observedAt = 0;

  constructor(opts: LeaseElectorOptions) {
    this.#opts = opts;
    this.identity = opts.identity;
    this.leaseName = opts.name ?? 'pairshift-operator';
    this.#api = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#log = opts.log ?? silent;
    this.#now = opts.now ?? Date.now;
    this.#durationMs = (opts.leaseDurationSeconds ?? 15) * 1000;
    this.#intervalMs = opts.renewIntervalMs ?? 2000;
    this.#deadlineMs = opts.renewDeadlineMs ?? Math.floor((this.#durationMs * 2) / 3);
    if (!(this.#intervalMs < this.#deadlineMs && this.#deadlineMs < this.#durationMs)) {
      throw new RangeError(
        `lease timing must satisfy renewInterval < renewDeadline < leaseDuration, got ${this.#intervalMs} ms, ${this.#deadlineMs} ms, ${this.#durationMs} ms`,
      );
    }
    this.isLeader$ = this.#leader.pipe(distinctUntilChanged());
  }

  get isLeader(): boolean {
    return this.#leader.value;
  }

  /**
   * Who leads, as far as this replica knows: itself while it leads, else the
   * holder its last read of the Lease named ('' when nobody held it). For
   * telling an API client where upgrades run (src/api/upload-replicas.ts),
   * never for deciding whether to act (holdsLease, confirmLease).
   */
  get leader(): string {
    return this.isLeader ? this.identity : this.#lastHolder;
  }

  /**
   * Whether this replica may act now: it leads AND its last renewal is
   * younger than the renew deadline, read from the clock at the moment of
   * asking. isLeader alone is not enough: a process that was frozen
   * (SIGSTOP, a long GC pause, a suspended VM) past its lease still says
   * "leader" until its next tick runs, while another replica may already
   * have taken over. The reconciler asks this before every step.
   */
  holdsLease(): boolean {
    // The same bound as the tick's step-down (> deadline), so a replica told
    // "no" here is always flipped to not-leader by its next tick, and gets
    // every name again when it leads again: no reconcile is left stranded.
    return this.#leader.value && this.#now() - this.#renewedAt <= this.#deadlineMs;
  }

  /**
   * holdsLease(), confirmed against the Lease on the server, for the moment
   * right before a side effect. The clock alone trusts that nobody writes
   * the Lease before it expires; a holder that does not wait (a replica
   * whose clock runs fast, a human with kubectl, a takeover that another
   * elector believed was due) would otherwise go unnoticed until the next
   * renewal, and a fast upgrade can run many steps in one renew interval.
   * Another holder on the server: step down at once (so the source stops
   * handing out names and every later check says no). The Lease unreadable
   * (the API server away): the clock decides, as client-go does; nobody can
   * take the Lease through a server that cannot be reached, and a replica
   * cut off from it stops at the renew deadline.
   */
  async confirmLease(): Promise<boolean> {
    if (!this.holdsLease()) return false;
    let holder: string;
    try {
      const lease = (await this.#withTimeout(
        this.#api.readNamespacedLease({ name: this.leaseName, namespace: this.#opts.namespace }),
      )) as RawLease;
      holder = lease.spec?.holderIdentity ?? '';
    } catch (err) {
      this.#log.debug('could not read the lease to confirm it: the clock decides', {
        lease: this.leaseName,
        error: (err as Error)?.message?.split('\n')[0],
      });
      return this.holdsLease();
    }
    if (holder !== this.identity) {
      if (this.isLeader) {
        this.#log.warn('the lease is held by someone else: stepping down', {
          lease: this.leaseName,
          holder,
        });
      }
      this.#setLeader(false);
      return false;
    }
    return this.holdsLease();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop();
  }

  /**
   * Stops campaigning. With release (the default) a leader hands the Lease
   * back so another replica takes over at once instead of after the
   * lease duration.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#tick;
    const wasLeader = this.isLeader;
    this.#setLeader(false);
    if (wasLeader && (opts.release ?? true)) await this.#release();
  }

  #loop(): void {
    if (!this.#running) return;
    this.#tick = this.#tryAcquireOrRenew()
      .catch((err) => this.#failed(err))
      .finally(() => {
        this.#tick = null;
        if (this.#running) this.#timer = setTimeout(() => this.#loop(), this.#intervalMs);
      });
  }

  #setLeader(value: boolean): void {
    if (value !== this.#leader.value) {
      this.#log.info(value ? 'became the leader' : 'no longer the leader', {
        lease: this.leaseName,
        identity: this.identity,
      });
    }
    this.#leader.next(value);
  }

  #failed(err: unknown): void {
    const since = this.#now() - this.#renewedAt;
    if (this.isLeader && since > this.#deadlineMs) {
      this.#log.warn('lease renewal failing past the deadline: stepping down', {
        lease: this.leaseName,
        error: (err as Error)?.message?.split('\n')[0],
      });
      this.#setLeader(false);
    }
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const now = this.#now();
    // Even a hanging API server must not keep a stale leader leading.
    if (this.isLeader && now - this.#renewedAt > this.#deadlineMs) this.#setLeader(false);
    let lease: RawLease;
    try {
      lease = (await this.#withTimeout(
        this.#api.readNamespacedLease({ name: this.leaseName, namespace: this.#opts.namespace }),
      )) as RawLease;
    } catch (err) {
      if (httpStatusOf(err) !== 404) throw err;
      await this.#create(now);
      return;
    }
    const spec = lease.spec ?? {};
    const holder: string = spec.holderIdentity ?? '';
    this.#lastHolder = holder;
    const seen = `${holder}|${String(spec.renewTime)}|${lease.metadata?.resourceVersion}`;
    if (seen !== this.#observed) {
      this.#observed = seen;
      this.#observedAt = now;
    }
    if (holder !== '' && holder !== this.identity) {
      const durationMs = (spec.leaseDurationSeconds ?? this.#durationMs / 1000) * 1000;
      if (now - this.#observedAt < durationMs) {
        this.#setLeader(false);
        return;
      }
      this.#log.info('taking over an expired lease', { lease: this.leaseName, from: holder });
    }
    const mine = holder === this.identity;
    const body = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.#durationMs / 1000,
        renewTime: new V1MicroTime(now),
        acquireTime: mine ? toMicroTime(spec.acquireTime, now) : new V1MicroTime(now),
        leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      await this.#withTimeout(
        this.#api.replaceNamespacedLease({
          name: this.leaseName,
          namespace: this.#opts.namespace,
          body,
        }),
      );
    } catch (err) {
      if (httpStatusOf(err) === 409) {
        // Someone else wrote first: they lead, unless our own lease is still valid.
        this.#failed(err);
        if (!mine) this.#setLeader(false);
        return;
      }
      throw err;
    }
    this.#renewedAt = now;
    this.#setLeader(true);
  }

  async #create(now: number): Promise<void> {
    try {
      await this.#withTimeout(
        this.#api.createNamespacedLease({
          namespace: this.#opts.namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.leaseName, namespace: this.#opts.namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: this.#durationMs / 1000,
              acquireTime: new V1MicroTime(now),
              renewTime: new V1MicroTime(now),
              leaseTransitions: 0,
            },
          },
        }),
      );
    } catch (err) {
      if (httpStatusOf(err) === 409) return; // another replica created it first
      throw err;
    }
    this.#renewedAt = now;
    this.#setLeader(true);
  }

  async #release(): Promise<void> {
    try {
      const lease = (await this.#api.readNamespacedLease({
        name: this.leaseName,
        namespace: this.#opts.namespace,
      })) as RawLease;
      if (lease.spec?.holderIdentity !== this.identity) return;
      await this.#api.replaceNamespacedLease({
        name: this.leaseName,
        namespace: this.#opts.namespace,
        body: {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: '',
            leaseDurationSeconds: 1,
            renewTime: new V1MicroTime(this.#now()),
            acquireTime: toMicroTime(lease.spec.acquireTime, this.#now()),
          },
        },
      });
    } catch (err) {
      // Not fatal: the Lease then expires after its duration.
      this.#log.warn('could not release the lease', {
        lease: this.leaseName,
        error: (err as Error)?.message?.split('\n')[0],
      });
    }
  }

  #withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`lease request timed out after ${this.#intervalMs} ms`)),
        this.#intervalMs,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

function toMicroTime(value: unknown, fallback: number): V1MicroTime {
  const t = value instanceof Date ? value.getTime() : Date.parse(String(value));
  return new V1MicroTime(Number.isNaN(t) ? fallback : t);
}
