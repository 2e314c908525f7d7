// A small Kubernetes API server for tests: real HTTP on 127.0.0.1, exactly
// the requests pairshift's Kubernetes source and lease elector make, with
// the semantics that matter to them:
// - namespaced custom resources (any group/version/plural under /apis):
//   list with a collection resourceVersion; watch (?watch=true, chunked JSON
//   lines) from a resourceVersion, with 410 Gone as an ERROR event once the
//   history before it is compacted; get; create (409 AlreadyExists); JSON
//   merge patch and update (PUT) on the resource and on /status (status only
//   through /status, spec only through the resource; generation bumps only
//   when the spec changes; a resourceVersion in the body is a precondition,
//   409 Conflict when stale); delete with finalizers (deletionTimestamp set,
//   the object kept until its finalizers are gone);
// - core/v1 events: create (and list, for tests);
// - coordination.k8s.io/v1 leases: get, create (409), update (409 when stale).
// Bearer-token authentication as a kubeconfig gives it. Test hooks: compact()
// to make older resourceVersions 410, dropWatches() to cut every watch
// connection, beforeWrite() to run another writer just before a write (a
// real conflict, not a faked status code). Faults (issue 12): outage('503')
// answers every request 503 and cuts the watches, outage('refuse') closes
// the listening socket (connection refused) and restore() listens again on
// the same port; conflictStorm(n) makes the next n status writes meet
// another writer first (real 409s). A test double, not a product:
// no label selectors, no field validation, no server-side apply.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects are open JSON
export type KObject = { [key: string]: any };

interface WatchEvent {
  readonly rv: number;
  readonly collection: string;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KObject;
}

interface Watcher {
  readonly collection: string;
  readonly res: ServerResponse;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly status: number;
  /** Date.now() when answered. */
  readonly at: number;
  /**
   * Every Lease's holderIdentity ("namespace/name" -> holder) when the
   * request arrived: who held the Lease while a write was made.
   */
  readonly leaseHolders: Readonly<Record<string, string>>;
}

type Hook = (server: KubeApiServer) => void;

const clone = <T>(v: T): T => structuredClone(v);

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const out: KObject =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch as KObject)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const statusBody = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  code,
});

export class KubeApiServer {
  readonly token = `test-${randomUUID()}`;
  /** collection path ("/apis/g/v/namespaces/ns/plural") → name → object */
  readonly #store = new Map<string, Map<string, KObject>>();
  readonly #history: WatchEvent[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #hooks: Hook[] = [];
  readonly requests: RequestRecord[] = [];
  /** How many watches were answered with 410 Gone. */
  goneSent = 0;
  #failWatches = { n: 0, code: 503 };
  #rv = 1;
  #down: 'no' | '503' | 'refuse' = 'no';
  #port = 0;
  #storm = 0;
  /** 409s that conflictStorm() caused. */
  conflictsSent = 0;
  /** Requests answered 503 by outage('503'). */
  unavailableSent = 0;
  /** Watches from a resourceVersion below this get 410 Gone. */
  #compactedBelow = 0;
  #server: Server | null = null;
  #url = '';

  get url(): string {
    return this.#url;
  }

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err) => {
        if (!res.headersSent) this.#send(res, 500, statusBody(500, 'InternalError', String(err)));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.#port, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#port = port;
    this.#url = `http://127.0.0.1:${port}`;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * A kubeconfig (YAML text) pointing at this server with its token.
   * client-node 1.4 refuses a plain http:// server unless the cluster says
   * insecure-skip-tls-verify (config.js createAgent): that is the switch
   * for http, no TLS is involved.
   */
  kubeconfig(namespace = 'default'): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: test\n  cluster:\n    server: ${this.#url}\n    insecure-skip-tls-verify: true`,
      'users:',
      `- name: test\n  user:\n    token: ${this.token}`,
      'contexts:',
      `- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: ${namespace}`,
      'current-context: test',
      '',
    ].join('\n');
  }

  // ---- test hooks -------------------------------------------------------

  /**
   * Forget the watch history up to and including now: a watch from any
   * resourceVersion handed out so far gets 410 (as after an etcd compaction
   * past it); a list then gives a version that works.
   */
  compact(): void {
    this.#compactedBelow = this.#rv + 1;
    this.#history.length = 0;
  }

  /** Close every open watch connection, as an API server restart would. */
  dropWatches(): void {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
  }

  /**
   * The server goes away until restore(): '503' answers every request
   * 503 ServiceUnavailable (an overloaded or half-started API server), and
   * 'refuse' stops listening (connection refused, as while it restarts).
   * Both cut the open watches.
   */
  async outage(mode: '503' | 'refuse'): Promise<void> {
    this.#down = mode;
    if (mode === '503') {
      this.dropWatches();
      return;
    }
    await this.stop();
  }

  /** Back after outage(): the same URL, the same objects and history. */
  async restore(): Promise<void> {
    const mode = this.#down;
    this.#down = 'no';
    if (mode === 'refuse') await this.start();
  }

  get down(): boolean {
    return this.#down !== 'no';
  }

  /**
   * The next n writes to a /status subresource each find the object just
   * changed by another writer (an annotation), so their resourceVersion
   * precondition fails: a storm of real 409 Conflicts.
   */
  conflictStorm(n: number): void {
    this.#storm = n;
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  /** The next n watch requests fail with this HTTP status (an overloaded or restarting server). */
  failWatches(n: number, code = 503): void {
    this.#failWatches = { n, code };
  }

  /** Runs fn once, just before the next write (PUT/PATCH) is applied; queued hooks run one per write. */
  beforeWrite(fn: Hook): void {
    this.#hooks.push(fn);
  }

  /** Direct access for tests: the stored object, or undefined. */
  object(collection: string, name: string): KObject | undefined {
    const o = this.#store.get(collection)?.get(name);
    return o ? clone(o) : undefined;
  }

  objects(collection: string): KObject[] {
    return [...(this.#store.get(collection)?.values() ?? [])].map(clone);
  }

  /** Every Lease's holderIdentity now: "namespace/name" -> holder ("" when released). */
  leaseHolders(): Record<string, string> {
    const holders: Record<string, string> = {};
    for (const [collection, objects] of this.#store) {
      if (!collection.endsWith('/leases')) continue;
      for (const lease of objects.values()) {
        holders[`${lease.metadata.namespace}/${lease.metadata.name}`] =
          lease.spec?.holderIdentity ?? '';
      }
    }
    return holders;
  }

  /** Writes as another client would (bumps resourceVersion, notifies watchers). */
  put(collection: string, obj: KObject): KObject {
    const name = obj.metadata.name as string;
    const existing = this.#store.get(collection)?.get(name);
    const next = clone(obj);
    next.metadata.uid ??= existing?.metadata.uid ?? randomUUID();
    next.metadata.creationTimestamp ??=
      existing?.metadata.creationTimestamp ?? new Date().toISOString();
    next.metadata.generation ??= existing?.metadata.generation ?? 1;
    if (existing && JSON.stringify(existing.spec) !== JSON.stringify(next.spec)) {
      next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    }
    return this.#commit(collection, next, existing ? 'MODIFIED' : 'ADDED');
  }

  // ---- HTTP ---------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#url);
    const leaseHolders = this.leaseHolders();
    const record = (status: number) =>
      this.requests.push({
        method: req.method ?? '',
        path: url.pathname + url.search,
        contentType: req.headers['content-type'],
        status,
        at: Date.now(),
        leaseHolders,
      });
    try {
      if (this.#down === '503') {
        this.unavailableSent++;
        throw new HttpError(
          503,
          'ServiceUnavailable',
          'the server is currently unable to handle the request',
        );
      }
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        throw new HttpError(401, 'Unauthorized', 'Unauthorized');
      }
      const body = await readBody(req);
      const { status, payload, watch } = this.#route(req, url, body, res);
      record(status);
      if (!watch) this.#send(res, status, payload);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      record(err.code);
      this.#send(res, err.code, statusBody(err.code, err.reason, err.message));
    }
  }

  #send(res: ServerResponse, status: number, payload: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(payload));
  }

  #route(
    req: IncomingMessage,
    url: URL,
    body: KObject | null,
    res: ServerResponse,
  ): { status: number; payload?: unknown; watch?: boolean } {
    // /api/v1/namespaces/ns/plural[/name[/sub]] or /apis/g/v/namespaces/ns/plural[/name[/sub]]
    const parts = url.pathname.split('/').filter(Boolean);
    const nsAt = parts.indexOf('namespaces');
    const prefixOk = (parts[0] === 'api' && nsAt === 2) || (parts[0] === 'apis' && nsAt === 3);
    if (!prefixOk || parts.length < nsAt + 3 || parts.length > nsAt + 5) {
      throw new HttpError(404, 'NotFound', `the server could not find ${url.pathname}`);
    }
    const collection = `/${parts.slice(0, nsAt + 3).join('/')}`;
    const apiVersion = parts[0] === 'api' ? parts[1]! : `${parts[1]}/${parts[2]}`;
    const name = parts[nsAt + 3];
    const sub = parts[nsAt + 4];
    if (sub !== undefined && sub !== 'status') {
      throw new HttpError(404, 'NotFound', `no subresource ${sub}`);
    }
    const method = req.method ?? 'GET';
    if (name === undefined) {
      if (method === 'GET' && ['true', '1'].includes(url.searchParams.get('watch') ?? '')) {
        if (this.#failWatches.n > 0) {
          this.#failWatches.n--;
          const { code } = this.#failWatches;
          throw new HttpError(code, 'ServiceUnavailable', 'the watch cache is not ready');
        }
        this.#watch(collection, url, res);
        return { status: 200, watch: true };
      }
      if (method === 'GET') return { status: 200, payload: this.#list(collection, apiVersion) };
      if (method === 'POST')
        return { status: 201, payload: this.#create(collection, apiVersion, body) };
      throw new HttpError(405, 'MethodNotAllowed', `${method} on a collection`);
    }
    switch (method) {
      case 'GET':
        return { status: 200, payload: this.#get(collection, name) };
      case 'PATCH': {
        const type = req.headers['content-type'] ?? '';
        if (!type.startsWith('application/merge-patch+json')) {
          throw new HttpError(
            415,
            'UnsupportedMediaType',
            `this server speaks merge patch only, not ${type}`,
          );
        }
        this.#runHooks(collection, name, sub);
        const current = this.#get(collection, name);
        const merged = mergePatch(current, body) as KObject;
        const precondition = body?.metadata?.resourceVersion;
        return { status: 200, payload: this.#write(collection, name, merged, sub, precondition) };
      }
      case 'PUT':
        if (!body) throw new HttpError(400, 'BadRequest', 'no body');
        this.#runHooks(collection, name, sub);
        this.#get(collection, name);
        return {
          status: 200,
          payload: this.#write(collection, name, body, sub, body.metadata?.resourceVersion),
        };
      case 'DELETE':
        return { status: 200, payload: this.#delete(collection, name) };
      default:
        throw new HttpError(405, 'MethodNotAllowed', method);
    }
  }

  #list(collection: string, apiVersion: string): KObject {
    const kind = collection.endsWith('/events') ? 'EventList' : 'List';
    return {
      apiVersion,
      kind,
      metadata: { resourceVersion: String(this.#rv) },
      items: this.objects(collection),
    };
  }

  #get(collection: string, name: string): KObject {
    const o = this.#store.get(collection)?.get(name);
    if (!o)
      throw new HttpError(404, 'NotFound', `${collection.split('/').pop()} "${name}" not found`);
    return clone(o);
  }

  #create(collection: string, apiVersion: string, body: KObject | null): KObject {
    const name = body?.metadata?.name;
    if (!body || typeof name !== 'string' || name === '') {
      throw new HttpError(422, 'Invalid', 'metadata.name: Required value');
    }
    if (this.#store.get(collection)?.has(name)) {
      throw new HttpError(
        409,
        'AlreadyExists',
        `${collection.split('/').pop()} "${name}" already exists`,
      );
    }
    const obj = clone(body);
    obj.apiVersion ??= apiVersion;
    obj.metadata = {
      ...obj.metadata,
      namespace: collection.split('/').at(-2),
      uid: randomUUID(),
      generation: 1,
      creationTimestamp: new Date().toISOString(),
    };
    delete obj.metadata.resourceVersion;
    delete obj.metadata.deletionTimestamp;
    // Status is the controller's: not settable on create for resources with
    // a status subresource (all custom resources here).
    if (collection.startsWith('/apis/') && !collection.includes('coordination.k8s.io'))
      delete obj.status;
    return this.#commit(collection, obj, 'ADDED');
  }

  /** PUT or merged PATCH: the new whole object, for the resource or /status. */
  #runHooks(collection: string, name: string, sub: string | undefined): void {
    // One hook per write: several queued hooks make several writes conflict.
    this.#hooks.shift()?.(this);
    const current = this.#store.get(collection)?.get(name);
    if (sub === 'status' && current && this.#storm > 0) {
      this.#storm--;
      this.conflictsSent++;
      const touched = clone(current);
      touched.metadata.annotations = {
        ...(touched.metadata.annotations ?? {}),
        'test.pairshift.io/storm': String(this.conflictsSent),
      };
      this.#commit(collection, touched, 'MODIFIED');
    }
  }

  #write(
    collection: string,
    name: string,
    incoming: KObject,
    sub: string | undefined,
    precondition: string | undefined,
  ): KObject {
    const current = this.#get(collection, name);
    if (precondition !== undefined && precondition !== current.metadata.resourceVersion) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${collection.split('/').pop()} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const hasStatusSubresource =
      collection.startsWith('/apis/') && !collection.includes('coordination.k8s.io');
    const next = clone(current);
    if (sub === 'status') {
      // Only the status moves through /status; spec and metadata stay.
      next.status = clone(incoming.status);
    } else {
      next.spec = clone(incoming.spec);
      if (!hasStatusSubresource) {
        for (const [k, v] of Object.entries(incoming)) {
          if (k !== 'metadata' && k !== 'spec') next[k] = clone(v);
        }
      }
      const meta = incoming.metadata ?? {};
      for (const k of ['labels', 'annotations', 'finalizers', 'ownerReferences'] as const) {
        if (meta[k] === undefined) delete next.metadata[k];
        else next.metadata[k] = clone(meta[k]);
      }
      if (JSON.stringify(current.spec) !== JSON.stringify(next.spec)) {
        next.metadata.generation = (current.metadata.generation ?? 1) + 1;
      }
    }
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      return this.#remove(collection, next);
    }
    if (JSON.stringify(next) === JSON.stringify(current)) return current;
    return this.#commit(collection, next, 'MODIFIED');
  }

  #delete(collection: string, name: string): KObject {
    const current = this.#get(collection, name);
    if ((current.metadata.finalizers ?? []).length === 0) return this.#remove(collection, current);
    if (current.metadata.deletionTimestamp) return current;
    current.metadata.deletionTimestamp = new Date().toISOString();
    return this.#commit(collection, current, 'MODIFIED');
  }

  #remove(collection: string, obj: KObject): KObject {
    this.#store.get(collection)?.delete(obj.metadata.name);
    const gone = clone(obj);
    gone.metadata.resourceVersion = String(++this.#rv);
    this.#emit({ rv: this.#rv, collection, type: 'DELETED', object: gone });
    return gone;
  }

  #commit(collection: string, obj: KObject, type: 'ADDED' | 'MODIFIED'): KObject {
    obj.metadata.resourceVersion = String(++this.#rv);
    const objects = this.#store.get(collection) ?? new Map<string, KObject>();
    this.#store.set(collection, objects);
    objects.set(obj.metadata.name, clone(obj));
    this.#emit({ rv: this.#rv, collection, type, object: clone(obj) });
    return clone(obj);
  }

  #emit(event: WatchEvent): void {
    this.#history.push(event);
    for (const w of this.#watchers) {
      if (w.collection === event.collection) writeEvent(w.res, event.type, event.object);
    }
  }

  #watch(collection: string, url: URL, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // A real API server answers a watch at once, before any event.
    res.flushHeaders();
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from !== 0 && from < this.#compactedBelow) {
      // What a real API server does: 200, one ERROR event, end of stream.
      this.goneSent++;
      writeEvent(
        res,
        'ERROR',
        statusBody(410, 'Expired', `too old resource version: ${from} (${this.#compactedBelow})`),
      );
      res.end();
      return;
    }
    if (from === 0) {
      for (const o of this.objects(collection)) writeEvent(res, 'ADDED', o);
    } else {
      for (const e of this.#history) {
        if (e.collection === collection && e.rv > from) writeEvent(res, e.type, e.object);
      }
    }
    const watcher: Watcher = { collection, res };
    this.#watchers.add(watcher);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : null;
    res.on('close', () => {
      if (timer) clearTimeout(timer);
      this.#watchers.delete(watcher);
    });
  }
}

function writeEvent(res: ServerResponse, type: string, object: KObject): void {
  res.write(`${JSON.stringify({ type, object })}\n`);
}

async function readBody(req: IncomingMessage): Promise<KObject | null> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (chunks.length === 0) return null;
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as KObject;
  } catch {
    throw new HttpError(400, 'BadRequest', 'the body is not JSON');
  }
}

export async function startKubeApiServer(): Promise<KubeApiServer> {
  const s = new KubeApiServer();
  await s.start();
  return s;
}
