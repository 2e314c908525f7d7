// The Kubernetes resource source: UpgradeRequests and HAPairs are custom
// resources (crds/), read and written through @kubernetes/client-node.
// - changes$: list, then watch from the list's resourceVersion; every added,
//   modified or deleted object's name is pushed. A watch that ends is resumed
//   from the last resourceVersion seen; "410 Gone" (the history was
//   compacted) or a failing watch re-lists, with capped backoff, and names
//   that vanished meanwhile are pushed too, so no change is lost. Every
//   resyncMs all known names are pushed again. With a leader elector, names
//   flow only while this replica leads (and all of them when it starts to).
// - Reads go to the API server (no cache): a reconcile re-reads fresh data,
//   which is also what makes status conflicts rare.
// - updateStatus: the status subresource with a JSON merge patch carrying
//   the resourceVersion as a precondition; on 409 Conflict it re-reads and
//   writes again (bounded), never touching the spec. A phase change also
//   records an Event (transitionEvents).
// - The finalizer pairshift.io/cleanup: addFinalizer/removeFinalizer.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import {
  concat,
  defer,
  distinctUntilChanged,
  EMPTY,
  from,
  type Observable,
  Subject,
  switchMap,
  takeUntil,
} from 'rxjs';
import { backoffDelay, decide, type Random, type RetrySettings } from '../core/error-policy.js';
import { phaseEventReason } from '../core/event-reasons.js';
import {
  API_GROUP,
  API_VERSION,
  parseUpgradeRequest,
  ResourceError,
  type UpgradeRequest,
  type UpgradeRequestSpec,
  type UpgradeRequestStatus,
  upgradeRequestStatusSchema,
} from '../core/upgrade-request.js';
import { type HAPair, parseHAPair } from '../inventory/hapair.js';
import {
  type EventType,
  LeaseLostError,
  ResourceConflictError,
  ResourceNotFoundError,
  type ResourceSource,
  type SourceState,
} from '../reconciler/source.js';
import { CLEANUP_FINALIZER, withFinalizer, withoutFinalizer } from './finalizer.js';
import { mergePatchBetween } from './merge-patch.js';
import { watchEnd } from './watch-end.js';

export const GROUP_VERSION = 'v1alpha1';
const UR_PLURAL = 'upgraderequests';
const HAPAIR_PLURAL = 'hapairs';
const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** The few logger methods used (a winston Logger fits). */
export interface SourceLog {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

const silent: SourceLog = { info() {}, warn() {}, debug() {} };

export interface KubernetesSourceOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** Push every known name again this often (default 5 minutes). */
  readonly resyncMs?: number;
  /** Ask the server to end each watch after this long (default 300 s); it is resumed. */
  readonly watchTimeoutSeconds?: number;
  /** Between failed lists/watches (default 500 ms doubling to 30 s). */
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Status and finalizer writes tried this many times on 409 (default 5). */
  readonly conflictAttempts?: number;
  /** Random source for the backoff's jitter (default Math.random). */
  readonly random?: Random;
  /** Record an Event when updateStatus changes the phase (default true). */
  readonly transitionEvents?: boolean;
  /** Only the leader's names flow on changes$ (lease.ts). */
  readonly isLeader$?: Observable<boolean>;
  /**
   * Whether this replica holds the Lease right now (LeaseElector.holdsLease):
   * mayAct() answers with it, and the reconciler runs no step without it.
   */
  readonly holdsLease?: () => boolean;
  /** holdsLease confirmed by reading the Lease (LeaseElector.confirmLease): confirmMayAct(). */
  readonly confirmLease?: () => Promise<boolean>;
  /** Who writes Events (reportingInstance): the pod name, say. */
  readonly identity?: string;
  readonly log?: SourceLog;
  readonly now?: () => Date;
}

export interface KubeConfigOptions {
  /** A kubeconfig file; otherwise $KUBECONFIG, ~/.kube/config or in-cluster. */
  readonly kubeconfigPath?: string | undefined;
  readonly inCluster?: boolean | undefined;
  readonly context?: string | undefined;
}

export function loadKubeConfig(opts: KubeConfigOptions = {}): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (opts.inCluster) kc.loadFromCluster();
    else if (opts.kubeconfigPath) kc.loadFromFile(opts.kubeconfigPath);
    else kc.loadFromDefault();
  } catch (err) {
    throw new Error(
      `cannot load the Kubernetes configuration${opts.kubeconfigPath ? ` from ${opts.kubeconfigPath}` : ''}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (opts.context) kc.setCurrentContext(opts.context);
  if (!kc.getCurrentCluster()) {
    throw new Error('the Kubernetes configuration has no current cluster');
  }
  return kc;
}

/** The namespace to watch: explicit, else the context's, else the pod's, else "default". */
export function namespaceFrom(kc: KubeConfig, explicit?: string): string {
  if (explicit) return explicit;
  const ctx = kc.getContextObject(kc.getCurrentContext());
  if (ctx?.namespace) return ctx.namespace;
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/** The HTTP status of a client-node error (ApiException.code or a watch's statusCode). */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** One line about a client-node error, without its headers (which may carry tokens). */
function describe(err: unknown): string {
  const status = httpStatusOf(err);
  const body = (err as { body?: unknown } | null)?.body;
  let message: string | undefined;
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: string }).message;
    } catch {
      message = body.slice(0, 200);
    }
  } else if (typeof body === 'object' && body !== null) {
    message = (body as { message?: string }).message;
  }
  if (status !== undefined) return `HTTP ${status}${message ? `: ${message}` : ''}`;
  const line = (err as Error)?.message?.split('\n')[0] ?? String(err);
  // client-node 2.x fetches with undici, whose network errors all say
  // "fetch failed": the reason (ECONNREFUSED, a TLS error) is in the cause.
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const reason = cause?.code ?? cause?.message;
  return typeof reason === 'string' && !line.includes(reason) ? `${line}: ${reason}` : line;
}

// biome-ignore lint/suspicious/noExplicitAny: raw Kubernetes JSON
type Raw = { [key: string]: any };

const mergePatchHeader = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

const FAILURE_PHASES = new Set(['FAILED', 'TIMEOUT', 'UNREACHABLE', 'ROLLBACK']);

export class KubernetesSource implements ResourceSource {
  readonly description: string;
  readonly changes$: Observable<string>;
  readonly namespace: string;

  readonly #kc: KubeConfig;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #raw$ = new Subject<string>();
  readonly #stop$ = new Subject<void>();
  readonly #names = new Set<string>();
  readonly #log: SourceLog;
  readonly #now: () => Date;
  readonly #opts: KubernetesSourceOptions;
  #resourceVersion = '';
  /** Bumped for every watch started, so callbacks of an old one are ignored. */
  #watchGeneration = 0;
  #abort: AbortController | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #resyncTimer: NodeJS.Timeout | null = null;
  #failures = 0;
  /** The last list or watch failure, for state(); cleared by a healthy watch. */
  #lastFailure: string | undefined;
  #running = false;

  constructor(opts: KubernetesSourceOptions) {
    this.#opts = opts;
    this.#kc = opts.kubeConfig;
    this.namespace = opts.namespace;
    this.#custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#log = opts.log ?? silent;
    this.#now = opts.now ?? (() => new Date());
    this.description = `kubernetes namespace ${opts.namespace}`;
    const raw$ = this.#raw$.pipe(takeUntil(this.#stop$));
    this.changes$ = opts.isLeader$
      ? opts.isLeader$.pipe(
          distinctUntilChanged(),
          // A new leader reconciles everything once: the old one may have
          // stopped mid-way.
          switchMap((leader) =>
            leader
              ? concat(
                  defer(() => from([...this.#names])),
                  raw$,
                )
              : EMPTY,
          ),
          takeUntil(this.#stop$),
        )
      : raw$;
  }

  /** False while another replica may be acting: this one must not change the pair. */
  mayAct(): boolean {
    return this.#opts.holdsLease?.() ?? true;
  }

  async confirmMayAct(): Promise<boolean> {
    return this.#opts.confirmLease ? this.#opts.confirmLease() : this.mayAct();
  }

  /**
   * The reconciler's writes (status, finalizers, Events) are its side
   * effects on the cluster: a replica without the Lease makes none, checked
   * at the last moment before each request (a conflict retry included), not
   * only when the reconcile began.
   */
  #mustHoldLease(what: string, name: string): void {
    if (!this.mayAct()) {
      throw new LeaseLostError(
        `${what} of UpgradeRequest ${this.namespace}/${name}: this replica does not hold the Lease`,
      );
    }
  }

  /** Names currently known from list + watch. */
  get knownNames(): readonly string[] {
    return [...this.#names];
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // The first list must work: a wrong kubeconfig or missing CRD is a
    // startup error, not a silent retry loop.
    await this.#relist();
    this.#startWatch();
    const resyncMs = this.#opts.resyncMs ?? 300_000;
    this.#resyncTimer = setInterval(() => {
      for (const name of this.#names) this.#raw$.next(name);
    }, resyncMs);
  }

  state(): SourceState {
    return {
      running: this.#running,
      ...(this.#lastFailure !== undefined
        ? {
            problem: `following UpgradeRequests failed ${this.#failures} time(s) in a row (${this.#lastFailure}); retrying`,
          }
        : {}),
    };
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#watchGeneration++;
    this.#abort?.abort();
    this.#abort = null;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    this.#stop$.next();
    this.#stop$.complete();
  }

  // ---- list + watch -------------------------------------------------------

  #path(plural: string): string {
    return `/apis/${API_GROUP}/${GROUP_VERSION}/namespaces/${encodeURIComponent(this.namespace)}/${plural}`;
  }

  #coords(plural: string) {
    return { group: API_GROUP, version: GROUP_VERSION, namespace: this.namespace, plural };
  }

  async #relist(): Promise<void> {
    const list = (await this.#custom.listNamespacedCustomObject(this.#coords(UR_PLURAL))) as Raw;
    const now = new Set<string>((list.items as Raw[]).map((o) => o.metadata.name as string));
    // Deleted while not watching: the reconciler must hear of those too.
    const vanished = [...this.#names].filter((n) => !now.has(n));
    this.#names.clear();
    for (const n of now) this.#names.add(n);
    this.#resourceVersion = String(list.metadata?.resourceVersion ?? '');
    this.#log.debug('listed UpgradeRequests', {
      count: now.size,
      resourceVersion: this.#resourceVersion,
    });
    for (const n of [...now, ...vanished]) this.#raw$.next(n);
  }

  #startWatch(): void {
    if (!this.#running) return;
    const generation = ++this.#watchGeneration;
    const startedAt = Date.now();
    let events = 0;
    let relist = false;
    let errorEvent = false;
    const watch = new Watch(this.#kc);
    const onEvent = (type: string, obj: Raw) => {
      if (generation !== this.#watchGeneration) return;
      if (type === 'ERROR') {
        // 410 Gone: our resourceVersion is older than the server's history.
        relist = obj?.code === 410;
        errorEvent = true;
        this.#log.debug('watch error event', { code: obj?.code, message: obj?.message });
        this.#abort?.abort();
        return;
      }
      const rv = obj?.metadata?.resourceVersion;
      if (rv) this.#resourceVersion = String(rv);
      if (type === 'BOOKMARK') return;
      const name = obj?.metadata?.name;
      if (typeof name !== 'string') return;
      events++;
      if (type === 'DELETED') this.#names.delete(name);
      else this.#names.add(name);
      this.#raw$.next(name);
    };
    let ended = false;
    const onDone = (err: unknown) => {
      ended = true;
      if (generation !== this.#watchGeneration || !this.#running) return;
      if (httpStatusOf(err) === 410) relist = true;
      // A watch that ends cleanly after a while (server timeout, restart,
      // client-node's inactivity timeout) is resumed at once; one that
      // fails, or ends at once, backs off.
      const { failed, healthy } = watchEnd({
        err,
        relist,
        errorEvent,
        events,
        livedMs: Date.now() - startedAt,
      });
      if (healthy) {
        this.#failures = 0;
        this.#lastFailure = undefined;
      } else {
        this.#failures++;
        this.#lastFailure = `watch: ${err ? describe(err) : relist ? '410 Gone' : failed ? 'error event' : 'ended at once'}`;
      }
      const delay = healthy && !relist ? 0 : this.#delay();
      if (failed && !relist)
        this.#log.warn('UpgradeRequest watch failed', { error: describe(err) });
      this.#schedule(relist || this.#failures > 3, delay);
    };
    watch
      .watch(
        this.#path(UR_PLURAL),
        {
          resourceVersion: this.#resourceVersion || undefined,
          allowWatchBookmarks: true,
          timeoutSeconds: this.#opts.watchTimeoutSeconds ?? 300,
        },
        onEvent,
        onDone,
      )
      .then((controller) => {
        if (generation !== this.#watchGeneration) {
          controller.abort();
          return;
        }
        this.#abort = controller;
        // Resolved without having ended: the server accepted the watch, so
        // the source is following again (failures still shape the backoff).
        if (!ended) this.#lastFailure = undefined;
      })
      .catch(onDone);
  }

  #delay(): number {
    return backoffDelay(this.#failures, this.#retrySettings(), this.#opts.random ?? Math.random);
  }

  /** The error policy's settings for this source: watches retry without end, writes a few times. */
  #retrySettings(): RetrySettings {
    const b = this.#opts.backoff ?? { baseMs: 500, maxMs: 30_000 };
    return {
      baseMs: b.baseMs,
      maxMs: b.maxMs,
      jitter: 0.2,
      maxAttempts: this.#opts.conflictAttempts ?? 5,
    };
  }

  /** Re-watch after delay, re-listing first when asked (410, repeated failures). */
  #schedule(relist: boolean, delayMs: number): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#watchGeneration++; // the old watch's callbacks are now stale
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#running) return;
      const next = relist ? this.#relist() : Promise.resolve();
      next.then(
        () => this.#startWatch(),
        (err) => {
          this.#failures++;
          this.#lastFailure = `list: ${describe(err)}`;
          this.#log.warn('UpgradeRequest list failed', { error: describe(err) });
          this.#schedule(true, this.#delay());
        },
      );
    }, delayMs);
  }

  // ---- reads ----------------------------------------------------------------

  async #getRaw(plural: string, name: string): Promise<Raw | null> {
    try {
      return (await this.#custom.getNamespacedCustomObject({
        ...this.#coords(plural),
        name,
      })) as Raw;
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw new Error(`reading ${plural}/${name} in ${this.namespace}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  #parse(raw: Raw): UpgradeRequest {
    return parseUpgradeRequest(raw, `UpgradeRequest ${this.namespace}/${raw.metadata?.name}`);
  }

  async getUpgradeRequest(name: string): Promise<UpgradeRequest | null> {
    const raw = await this.#getRaw(UR_PLURAL, name);
    return raw ? this.#parse(raw) : null;
  }

  async listUpgradeRequests(): Promise<UpgradeRequest[]> {
    const list = (await this.#custom.listNamespacedCustomObject(this.#coords(UR_PLURAL))) as Raw;
    return (list.items as Raw[]).map((o) => this.#parse(o));
  }

  async getHAPair(name: string): Promise<HAPair | null> {
    const raw = await this.#getRaw(HAPAIR_PLURAL, name);
    if (!raw) return null;
    // JSON is YAML: the same parser (and fingerprint normalising) as files.
    return parseHAPair(JSON.stringify(raw), `HAPair ${this.namespace}/${name}`);
  }

  // ---- writes ---------------------------------------------------------------

  async createUpgradeRequest(
    req: Pick<UpgradeRequest, 'metadata' | 'spec'>,
  ): Promise<UpgradeRequest> {
    const { name, labels, annotations, finalizers } = req.metadata;
    const body = {
      apiVersion: API_VERSION,
      kind: 'UpgradeRequest',
      metadata: { name, namespace: this.namespace, labels, annotations, finalizers },
      spec: req.spec,
    };
    // Validate here so a bad request is refused with the field's name, not
    // a 422 from the server.
    this.#parse(body);
    try {
      return this.#parse(
        (await this.#custom.createNamespacedCustomObject({
          ...this.#coords(UR_PLURAL),
          body,
        })) as Raw,
      );
    } catch (err) {
      if (httpStatusOf(err) === 409) {
        throw new ResourceConflictError(`UpgradeRequest ${this.namespace}/${name} already exists`, {
          cause: err,
        });
      }
      throw new Error(`creating UpgradeRequest ${this.namespace}/${name}: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  async patchSpec(name: string, patch: Partial<UpgradeRequestSpec>): Promise<UpgradeRequest> {
    try {
      const raw = (await this.#custom.patchNamespacedCustomObject(
        { ...this.#coords(UR_PLURAL), name, body: { spec: patch } },
        mergePatchHeader,
      )) as Raw;
      return this.#parse(raw);
    } catch (err) {
      if (httpStatusOf(err) === 404) {
        throw new ResourceNotFoundError(`UpgradeRequest ${this.namespace}/${name} not found`, {
          cause: err,
        });
      }
      if (err instanceof ResourceError) throw err;
      throw new Error(
        `patching the spec of UpgradeRequest ${this.namespace}/${name}: ${describe(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * Re-reads, computes a merge patch with the resourceVersion as a
   * precondition, writes; on 409 (someone wrote in between) does it again.
   */
  async #writeWithRetry(
    name: string,
    what: string,
    build: (raw: Raw) => Raw | null,
    send: (body: Raw) => Promise<unknown>,
  ): Promise<{ before: Raw; after: Raw } | null> {
    for (let attempt = 1; ; attempt++) {
      const raw = await this.#getRaw(UR_PLURAL, name);
      if (!raw)
        throw new ResourceNotFoundError(`UpgradeRequest ${this.namespace}/${name} not found`);
      const body = build(raw);
      if (body === null) return null;
      body.metadata = { ...(body.metadata ?? {}), resourceVersion: raw.metadata.resourceVersion };
      this.#mustHoldLease(what, name);
      try {
        return { before: raw, after: (await send(body)) as Raw };
      } catch (err) {
        const status = httpStatusOf(err);
        if (status === 404) {
          throw new ResourceNotFoundError(`UpgradeRequest ${this.namespace}/${name} not found`, {
            cause: err,
          });
        }
        if (status !== 409) {
          throw new Error(`${what} of UpgradeRequest ${this.namespace}/${name}: ${describe(err)}`, {
            cause: err,
          });
        }
        // The one error policy: a conflict is re-read and retried, a few times.
        const d = decide(
          'conflict',
          attempt,
          this.#retrySettings(),
          this.#opts.random ?? Math.random,
          `${what} of UpgradeRequest ${this.namespace}/${name}`,
        );
        if (d.do === 'give-up') {
          throw new ResourceConflictError(`${d.cause}: still conflicting`, { cause: err });
        }
        this.#log.debug(`${what}: conflict, re-reading`, { name, attempt });
        if (d.afterMs > 0) await new Promise((resolve) => setTimeout(resolve, d.afterMs));
      }
    }
  }

  async updateStatus(name: string, status: UpgradeRequestStatus): Promise<void> {
    const checked = upgradeRequestStatusSchema.safeParse(status);
    if (!checked.success) {
      const issue = checked.error.issues[0]!;
      throw new ResourceError(
        `status of UpgradeRequest ${this.namespace}/${name}: ${issue.path.join('.') || '(status)'}: ${issue.message}`,
      );
    }
    const written = await this.#writeWithRetry(
      name,
      'writing the status',
      (raw) => {
        const patch = mergePatchBetween(raw.status ?? {}, checked.data);
        return Object.keys(patch).length === 0 ? null : { status: patch };
      },
      (body) =>
        this.#custom.patchNamespacedCustomObjectStatus(
          { ...this.#coords(UR_PLURAL), name, body },
          mergePatchHeader,
        ),
    );
    const before = written?.before.status?.phase;
    if (written && (this.#opts.transitionEvents ?? true) && before !== checked.data.phase) {
      const phase = checked.data.phase;
      const type: EventType = FAILURE_PHASES.has(phase) ? 'Warning' : 'Normal';
      const reason = phaseEventReason(phase);
      const message = `${before ?? 'new'} → ${phase}${checked.data.message ? `: ${checked.data.message}` : ''}`;
      await this.#createEvent(written.after, type, reason, message);
    }
  }

  /** Adds pairshift.io/cleanup (idempotent); returns the object as it is now. */
  async addFinalizer(name: string): Promise<UpgradeRequest | null> {
    return this.#setFinalizers(
      name,
      (list) => withFinalizer(list, CLEANUP_FINALIZER),
      'adding the finalizer',
    );
  }

  /** Removes pairshift.io/cleanup; a deleting object then goes (null). */
  async removeFinalizer(name: string): Promise<UpgradeRequest | null> {
    return this.#setFinalizers(
      name,
      (list) => withoutFinalizer(list, CLEANUP_FINALIZER),
      'removing the finalizer',
    );
  }

  async #setFinalizers(
    name: string,
    change: (list: string[] | undefined) => string[],
    what: string,
  ): Promise<UpgradeRequest | null> {
    let current: Raw | null = null;
    const written = await this.#writeWithRetry(
      name,
      what,
      (raw) => {
        current = raw;
        const next = change(raw.metadata.finalizers);
        if (JSON.stringify(next) === JSON.stringify(raw.metadata.finalizers ?? [])) return null;
        // Merge patch replaces arrays whole: the precondition keeps other
        // controllers' finalizers from being lost.
        return { metadata: { finalizers: next } };
      },
      (body) =>
        this.#custom.patchNamespacedCustomObject(
          { ...this.#coords(UR_PLURAL), name, body },
          mergePatchHeader,
        ),
    );
    if (!written) return current ? this.#parse(current) : null;
    return this.getUpgradeRequest(name);
  }

  async recordEvent(name: string, type: EventType, reason: string, message: string): Promise<void> {
    const raw = await this.#getRaw(UR_PLURAL, name).catch(() => null);
    await this.#createEvent(raw ?? { metadata: { name } }, type, reason, message);
  }

  /** Events are best effort, as in client-go's recorder: a failure is logged, not thrown. */
  async #createEvent(obj: Raw, type: EventType, reason: string, message: string): Promise<void> {
    const now = this.#now();
    const name = obj.metadata.name as string;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${name}.${now.getTime().toString(16)}${randomBytes(4).toString('hex')}`,
        namespace: this.namespace,
      },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: 'UpgradeRequest',
        name,
        namespace: this.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: 'pairshift-operator' },
      reportingComponent: 'pairshift.io/operator',
      reportingInstance: this.#opts.identity ?? 'pairshift-operator',
    };
    // Best effort like the rest of this method, and like every write of the
    // reconciler's: none without the Lease.
    if (!this.mayAct()) {
      this.#log.debug('no Event without the Lease', { name, reason });
      return;
    }
    try {
      await this.#core.createNamespacedEvent({ namespace: this.namespace, body });
    } catch (err) {
      this.#log.warn('could not record an Event', { name, reason, error: describe(err) });
    }
  }
}
