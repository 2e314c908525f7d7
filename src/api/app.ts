// createApiApp: the express 5 application of the REST compatibility API.
// The order of the layers is the security policy: every request is timed
// and recorded; the allowlist is checked before anything else is done for
// the client, then the rate limit, then the bearer token; a body is read
// only for an authenticated operator, only as JSON, and only up to the
// limit. Every error leaves as problem+json (problems.ts).
import { randomUUID } from 'node:crypto';
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import type { Observable } from 'rxjs';
import { protectedPaths } from '../inventory/hapair.js';
import type { Logger } from '../log/logger.js';
import { secrets } from '../log/redact.js';
import type { TrustedKey } from '../packages/signing.js';
import type { ResourceSource } from '../reconciler/source.js';
import type { SqlClient } from '../store/sql-client.js';
import { buildOpenApi } from './openapi.js';
import {
  ApiProblem,
  codeForStatus,
  PROBLEM_MEDIA_TYPE,
  PROBLEMS,
  type ProblemCode,
  toProblem,
} from './problems.js';
import {
  DEFAULT_PROGRESS_MAX_AGE_MS,
  DEFAULT_PROGRESS_MAX_ENTRIES,
  ProgressView,
} from './progress-view.js';
import { maskClientText, RequestLog } from './request-log.js';
import type { ProgressResponse } from './schemas.js';
import {
  AddressAllowlist,
  type ApiToken,
  type Caller,
  type RateLimit,
  RateLimiter,
  TokenAuthenticator,
} from './security.js';
import { parseUpgradeId, STATUS_PATH, UpgradeApi } from './upgrades.js';
import { PackageRejected, receivePackage } from './upload.js';
import type { ReplicaSelf } from './upload-replicas.js';

export interface ApiLimits {
  /** Largest JSON body accepted (bytes); default 64 KiB. */
  readonly bodyBytes?: number;
  /** Per client address; default 20 requests/s with bursts of 40. */
  readonly rateLimit?: RateLimit;
}

export interface OperatorState {
  readonly sourceStarted: boolean;
  readonly reconcilerRunning: boolean;
}

/** Package upload on trigger (multipart/form-data, src/api/upload.ts); off when absent. */
export interface UploadSettings {
  /**
   * Upload folders are made inside it; an accepted package stays there until
   * its upgrade ends or its UpgradeRequest is gone (upload-janitor.ts removes it).
   */
  readonly workDir: string;
  readonly trustedKeys: TrustedKey[];
  /** Largest upload accepted, in bytes. */
  readonly maxBytes: number;
  /** This replica, recorded in each upload folder (upload-replicas.ts). */
  readonly owner?: ReplicaSelf;
  /**
   * Why an upload received here could not reach the replica that runs
   * upgrades (ReplicaPresence.leaderProblem), or null; asked before the body
   * is read, so the client learns it at once rather than in PREPARE.
   */
  readonly leaderProblem?: () => Promise<string | null>;
}

export interface ApiDeps {
  readonly source: ResourceSource;
  readonly db: SqlClient;
  readonly logger: Logger;
  readonly auth: { readonly tokens: readonly ApiToken[] };
  /** CIDRs allowed to connect; an empty list allows nobody. */
  readonly allow: readonly string[];
  readonly limits?: ApiLimits;
  readonly now?: () => Date;
  /** What /health reports about the rest of the operator. */
  readonly operatorState?: () => OperatorState;
  /** The operator's autoRollback default, recorded on new tasks. */
  readonly autoRollbackDefault?: boolean;
  readonly upload?: UploadSettings;
  /**
   * Names of upgrades whose progress changed, from writers the source does
   * not announce (the reconciler in this process, after each action).
   */
  readonly progressChanges$?: Observable<string>;
  /** Longest a progress answer is served from memory; default 500 ms. */
  readonly progressMaxAgeMs?: number;
}

export type ApiApp = express.Express & {
  /** Waits until api_request_log holds every request answered so far. */
  flushRequestLog(): Promise<void>;
  /** Stops following the change feeds and writes what the request log holds. */
  close(): Promise<void>;
};

export const DEFAULT_BODY_BYTES = 64 * 1024;
export const DEFAULT_RATE_LIMIT: RateLimit = { ratePerSecond: 20, burst: 40 };

interface Locals {
  requestId: string;
  startedAt: number;
  caller?: Caller;
  upgradeId?: string;
  responseBody?: unknown;
  /** 100 Continue was sent (askForBody). */
  continued?: boolean;
}

const locals = (res: Response) => res.locals as Locals;

function sendJson(res: Response, status: number, body: unknown, type = 'application/json'): void {
  locals(res).responseBody = body;
  res.status(status).type(type).send(JSON.stringify(body));
}

function sendProblem(req: Request, res: Response, p: ApiProblem): void {
  for (const [k, v] of Object.entries(p.extra.headers ?? {})) res.setHeader(k, v);
  // Refused before its body was read (403, 413, 415, 429 on an upload...).
  if (hasUnreadBody(req)) {
    if (req.headers.expect?.toLowerCase() === '100-continue' && !locals(res).continued) {
      // It waits for 100 Continue and sends nothing more: end the connection.
      res.setHeader('Connection', 'close');
      res.shouldKeepAlive = false;
    } else {
      // Its body is on the way. Closing now would reset the connection
      // with the client's bytes unread, and a reset can destroy this answer
      // before the client reads it (EPIPE/ECONNRESET instead of a 403): read
      // the rest and drop it, within bounds, then the connection goes on.
      discardBody(req);
    }
  }
  // A problem may quote what the client sent (an unknown field's name): no token in it.
  const problem = JSON.parse(secrets.maskText(JSON.stringify(toProblem(p, pathOf(req)))));
  sendJson(res, p.status, problem, PROBLEM_MEDIA_TYPE);
}

/** A refused body is read and dropped up to this much, for at most this long; past either the connection is cut. */
const DISCARD_MAX_BYTES = 64 * 1024 * 1024;
const DISCARD_MAX_MS = 15_000;

function discardBody(req: Request): void {
  let seen = 0;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, DISCARD_MAX_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_MAX_BYTES) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.unpipe();
  req.resume();
}

function hasUnreadBody(req: Request): boolean {
  const declared =
    req.headers['transfer-encoding'] !== undefined ||
    Number(req.headers['content-length'] ?? 0) > 0;
  return declared && !req.complete;
}

/** The request path without the query, never empty; a token in it is masked (problems echo it). */
function pathOf(req: Request): string {
  const url = req.originalUrl || req.url || '/';
  const q = url.indexOf('?');
  const p = q >= 0 ? url.slice(0, q) : url;
  return maskClientText(p.startsWith('/') ? p : `/${p}`);
}

/** Body-parser's error types, mapped to our codes. */
function bodyErrorCode(err: { type?: unknown; status?: unknown }): ProblemCode | null {
  switch (err.type) {
    case 'entity.too.large':
      return 'PS-1601';
    case 'entity.parse.failed':
      return 'PS-1002';
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return 'PS-1602';
    case 'request.aborted':
    case 'request.size.invalid':
      return 'PS-1001';
    default:
      return null;
  }
}

const wrap =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

/** What the layers and routes share: built once per app. */
interface ApiContext {
  readonly deps: ApiDeps;
  readonly now: () => Date;
  readonly requestLog: RequestLog;
  readonly api: UpgradeApi;
  readonly progress: ProgressView<ProgressResponse>;
  /** Drops a cached progress answer; called after every write to an upgrade. */
  readonly invalidate: (id: string) => void;
  readonly feeds: { unsubscribe(): void }[];
}

export function createApiApp(deps: ApiDeps): ApiApp {
  const ctx = apiContext(deps);
  const app = bareApp(ctx);
  // The order of these lines is the security policy (see the top of the file).
  app.use(recordEveryRequest(ctx));
  app.use(allowlistGate(deps.allow));
  app.use(rateLimitGate(deps.limits?.rateLimit ?? DEFAULT_RATE_LIMIT, ctx.now));
  publicRoutes(app, ctx);
  app.use(tokenGate(deps.auth.tokens));
  // Role, then body, are per route: see upgradeRoutes.
  upgradeRoutes(app, ctx);
  app.use(noSuchEndpoint);
  app.use(problemResponder(deps.logger));
  return app;
}

function apiContext(deps: ApiDeps): ApiContext {
  const now = deps.now ?? (() => new Date());
  const api = new UpgradeApi({
    source: deps.source,
    db: deps.db,
    now,
    autoRollbackDefault: deps.autoRollbackDefault ?? true,
  });
  // Progress is polled; it is served from memory and dropped on any change.
  const progress = new ProgressView<ProgressResponse>({
    compute: (id) => api.progress(id),
    maxAgeMs: deps.progressMaxAgeMs ?? DEFAULT_PROGRESS_MAX_AGE_MS,
    maxEntries: DEFAULT_PROGRESS_MAX_ENTRIES,
  });
  const invalidate = (id: string) => progress.invalidate(id);
  const feeds = [deps.source.changes$.subscribe(invalidate)];
  if (deps.progressChanges$) feeds.push(deps.progressChanges$.subscribe(invalidate));
  const requestLog = new RequestLog(deps.db, deps.logger);
  return { deps, now, requestLog, api, progress, invalidate, feeds };
}

/** Express with its defaults tightened, and the app's own flush and close. */
function bareApp(ctx: ApiContext): ApiApp {
  const app = express() as ApiApp;
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.flushRequestLog = () => ctx.requestLog.flush();
  app.close = async () => {
    for (const f of ctx.feeds) f.unsubscribe();
    await ctx.requestLog.flush();
  };
  return app;
}

/** 1. Every request is timed and recorded, whatever happens to it. */
function recordEveryRequest({ requestLog, now, deps }: ApiContext): RequestHandler {
  return (req, res, next) => {
    const l = locals(res);
    l.requestId = randomUUID();
    l.startedAt = performance.now();
    res.setHeader('X-Request-Id', l.requestId);
    // Read now: by the time 'close' fires node may have detached the socket.
    const clientIp = req.socket?.remoteAddress;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      // An exception here would be thrown from an event emitter and take the
      // operator down; recording is best effort by design.
      try {
        requestLog.record({
          at: now(),
          requestId: l.requestId,
          method: req.method,
          path: pathOf(req),
          status: res.statusCode,
          durationMs: performance.now() - l.startedAt,
          clientIp,
          upgradeId: l.upgradeId,
          tokenName: l.caller?.name,
          query: req.query,
          body: req.body,
          response: l.responseBody,
        });
      } catch (e) {
        deps.logger.warn('api_request_log: could not record a request', {
          error: e instanceof Error ? e.message : String(e),
        });
      }
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };
}

/** 2. Allowlist on the socket's own address (no proxy headers are trusted). */
function allowlistGate(allow: readonly string[]): RequestHandler {
  const allowlist = new AddressAllowlist(allow);
  return (req, _res, next) => {
    if (allowlist.allows(req.socket?.remoteAddress)) return next();
    next(
      new ApiProblem(
        'PS-1202',
        `address ${req.socket?.remoteAddress ?? '(unknown)'} is not on the API allowlist`,
      ),
    );
  };
}

/** 3. Rate limit per client address. */
function rateLimitGate(rate: RateLimit, now: () => Date): RequestHandler {
  const limiter = new RateLimiter(rate, () => now().getTime());
  return (req, _res, next) => {
    const r = limiter.take(req.socket?.remoteAddress ?? 'unknown');
    if (r.ok) return next();
    next(
      new ApiProblem(
        'PS-1701',
        `too many requests from this address; retry in ${r.retryAfterSeconds} s`,
        {
          headers: { 'Retry-After': String(r.retryAfterSeconds) },
        },
      ),
    );
  };
}

/** Public: the operator's health and the API description. */
function publicRoutes(app: express.Express, { deps, now }: ApiContext): void {
  const openapi = JSON.stringify(buildOpenApi());
  route(app, '/health', {
    GET: [
      wrap(async (_req, res) => {
        const h = await health(deps, now);
        sendJson(res, h.status === 'UP' ? 200 : 503, h);
      }),
    ],
  });
  route(app, '/api/v1/openapi.json', {
    GET: [
      (_req, res) => {
        locals(res).responseBody = { openapi: '3.1.0' };
        res.status(200).type('application/json').send(openapi);
      },
    ],
  });
}

/** 4. Everything after it needs a bearer token. */
function tokenGate(tokens: readonly ApiToken[]): RequestHandler {
  const authenticator = new TokenAuthenticator(tokens);
  return (req, res, next) => {
    const b = TokenAuthenticator.bearer(req.headers.authorization);
    if ('missing' in b) {
      return next(
        new ApiProblem('PS-1101', 'send a bearer token: Authorization: Bearer <token>', {
          headers: { 'WWW-Authenticate': 'Bearer realm="pairshift"' },
        }),
      );
    }
    const caller = 'token' in b ? authenticator.authenticate(b.token) : null;
    if (!caller) {
      return next(
        new ApiProblem('PS-1102', 'the bearer token is not valid', {
          headers: {
            'WWW-Authenticate': 'Bearer realm="pairshift", error="invalid_token"',
          },
        }),
      );
    }
    locals(res).caller = caller;
    // A client that sent Expect: 100-continue hears "go on" only when its
    // body is about to be read (askForBody), not here: a refusal decided
    // from the headers (403, 413, 415) then reaches it before it sends a
    // byte, rather than racing its upload into a closing socket.
    next();
  };
}

/** 5. A write needs the operator role. */
const operatorOnly: RequestHandler = (req, res, next) => {
  const c = locals(res).caller!;
  if (c.role === 'operator') return next();
  next(
    new ApiProblem(
      'PS-1201',
      `token ${c.name} has the viewer role; ${req.method} needs the operator role`,
    ),
  );
};

/** 6. A JSON body, if any, up to the limit: anything else is 415 before a byte is read. */
function jsonBodyReader(bodyBytes: number): RequestHandler {
  const jsonParser = express.json({
    limit: bodyBytes,
    strict: true,
    inflate: false,
    type: () => true,
  });
  return (req, res, next) => {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    if (!hasBody) return next();
    if (!req.is('application/json')) {
      return next(
        new ApiProblem(
          'PS-1602',
          `send the body as application/json (got ${JSON.stringify(String(req.headers['content-type'] ?? 'none').slice(0, 100))})`,
        ),
      );
    }
    const declared = Number(req.headers['content-length']);
    if (declared > bodyBytes) {
      return next(
        new ApiProblem('PS-1601', `the body is ${declared} bytes; the limit is ${bodyBytes}`),
      );
    }
    askForBody(req, res);
    jsonParser(req, res, next);
  };
}

/**
 * Sends 100 Continue to a client that asked for it (Expect: 100-continue),
 * once, right before its body is read: everything decided from the headers
 * has been decided by then.
 */
export function askForBody(req: Request, res: Response): void {
  if (req.headers.expect?.toLowerCase() !== '100-continue') return;
  if (res.headersSent || locals(res).continued) return;
  locals(res).continued = true;
  res.writeContinue();
}

/**
 * 6 on trigger: a JSON reference to a package on the operator host, or (when
 * uploads are configured) the package itself as multipart/form-data, which
 * the trigger handler streams itself.
 */
function triggerBodyReader(upload: UploadSettings | undefined, jsonBody: RequestHandler) {
  const reader: RequestHandler = (req, res, next) => {
    if (!req.is('multipart/form-data')) return jsonBody(req, res, next);
    if (!upload) {
      return next(
        new ApiProblem(
          'PS-1602',
          'package uploads are not enabled on this operator; send JSON with package.path on the operator host',
        ),
      );
    }
    next();
  };
  return reader;
}

/** Names the upgrade in the request log before anything can fail. */
const withId: RequestHandler = (req, res, next) => {
  const id = req.params.upgrade_id;
  if (typeof id === 'string' && id.length <= 253) locals(res).upgradeId = id;
  next();
};

/** The compatibility endpoints; each write lists its role and body layers in order. */
function upgradeRoutes(app: express.Express, ctx: ApiContext): void {
  const { api, progress, invalidate } = ctx;
  const jsonBody = jsonBodyReader(ctx.deps.limits?.bodyBytes ?? DEFAULT_BODY_BYTES);
  route(app, '/api/v1/upgrade/trigger', {
    POST: [
      operatorOnly,
      triggerBodyReader(ctx.deps.upload, jsonBody),
      wrap((req, res) => trigger(ctx, req, res)),
    ],
  });
  route(app, '/api/v1/upgrade/progress/:upgrade_id', {
    GET: [
      withId,
      wrap(async (req, res) =>
        sendJson(res, 200, await progress.get(parseUpgradeId(req.params.upgrade_id))),
      ),
    ],
  });
  // A write on one upgrade: named, operator only, JSON body; its cached progress is dropped.
  const actOnUpgrade = (
    act: (rawId: unknown, body: unknown, caller: Caller) => Promise<{ upgrade_id: string }>,
  ): RequestHandler[] => [
    withId,
    operatorOnly,
    jsonBody,
    wrap(async (req, res) => {
      const out = await act(req.params.upgrade_id, req.body, locals(res).caller!);
      invalidate(out.upgrade_id);
      sendJson(res, 200, out);
    }),
  ];
  route(app, '/api/v1/upgrade/rollback/:upgrade_id', {
    POST: actOnUpgrade((id, body, caller) => api.rollback(id, body, caller)),
  });
  route(app, '/api/v1/upgrade/cancel/:upgrade_id', {
    POST: actOnUpgrade((id, body, caller) => api.cancel(id, body, caller)),
  });
  route(app, '/api/v1/upgrade/history', {
    GET: [wrap(async (req, res) => sendJson(res, 200, await api.history(req.query)))],
  });
  route(app, '/api/v1/upgrade/logs/:upgrade_id', {
    GET: [
      withId,
      wrap(async (req, res) =>
        sendJson(res, 200, await api.logs(req.params.upgrade_id, req.query)),
      ),
    ],
  });
}

type TriggerAnswer = Awaited<ReturnType<UpgradeApi['trigger']>>;

/** POST trigger: an uploaded package or a JSON reference becomes an UpgradeRequest. */
async function trigger(ctx: ApiContext, req: Request, res: Response): Promise<void> {
  const upload = ctx.deps.upload;
  const out =
    upload && req.is('multipart/form-data')
      ? await triggerWithUpload(ctx, upload, req, res)
      : await triggerWithJson(ctx, req, res);
  locals(res).upgradeId = out.upgrade_id;
  ctx.invalidate(out.upgrade_id);
  res.setHeader('Location', out.status_url);
  sendJson(res, 201, out);
}

async function triggerWithUpload(
  { api, deps }: ApiContext,
  upload: UploadSettings,
  req: Request,
  res: Response,
): Promise<TriggerAnswer> {
  const unreachable = await upload.leaderProblem?.();
  if (unreachable) throw new ApiProblem('PS-1903', unreachable, { reason: 'upload-not-shared' });
  const received = await receivePackage(req, {
    ...(upload.owner ? { owner: upload.owner } : {}),
    beforeBody: () => askForBody(req, res),
    workDir: upload.workDir,
    trustedKeys: upload.trustedKeys,
    maxBytes: upload.maxBytes,
    installedVersion: (pair) => installedVersion(deps.source, pair),
    protection: async (name) => {
      const pair = await deps.source.getHAPair(name);
      return pair && { configDir: pair.spec.paths.configDir, paths: protectedPaths(pair) };
    },
  });
  try {
    return await api.trigger(
      {
        pair: received.pair,
        package: {
          path: received.packagePath,
          version: received.version,
          signature_path: received.sigPath,
        },
        ...(received.reason ? { reason: received.reason } : {}),
        ...(received.options !== undefined ? { options: received.options } : {}),
      },
      locals(res).caller!,
    );
  } catch (e) {
    // No UpgradeRequest refers to a refused trigger's upload: the janitor
    // would keep it for a day as a possible upload in progress.
    await received.cleanup();
    throw e;
  }
}

async function triggerWithJson(
  { api }: ApiContext,
  req: Request,
  res: Response,
): Promise<TriggerAnswer> {
  if (req.body === undefined) {
    throw new ApiProblem(
      'PS-1001',
      'send a JSON body: {"pair": "...", "package": {"path": "/...", "version": "X.Y.Z"}}',
    );
  }
  return api.trigger(req.body, locals(res).caller!);
}

const noSuchEndpoint: RequestHandler = (req, _res, next) => {
  next(
    new ApiProblem(
      'PS-1301',
      `there is no endpoint ${req.method} ${pathOf(req).slice(0, 200)}; see /api/v1/openapi.json`,
    ),
  );
};

/** Every error leaves as problem+json; one already half sent cuts the connection. */
function problemResponder(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) {
      req.socket?.destroy();
      return;
    }
    sendProblem(req, res, asProblem(err, req, res, logger));
  };
}

/** Any error as an ApiProblem; unexpected ones are logged with their stack here and only here. */
function asProblem(err: unknown, req: Request, res: Response, logger: Logger): ApiProblem {
  if (err instanceof ApiProblem) return err;
  if (err instanceof PackageRejected) {
    const code: ProblemCode =
      err.status === 413
        ? 'PS-1601'
        : err.status === 415
          ? 'PS-1602'
          : err.status === 422
            ? 'PS-1801'
            : 'PS-1005';
    return new ApiProblem(code, `${err.message}; ${err.suggestion}`, { reason: err.code });
  }
  const e = (err ?? {}) as {
    status?: unknown;
    statusCode?: unknown;
    code?: unknown;
    detail?: unknown;
    message?: unknown;
    type?: unknown;
  };
  const status =
    typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code =
      bodyErrorCode(e) ??
      (typeof e.code === 'string' &&
      e.code in PROBLEMS &&
      PROBLEMS[e.code as ProblemCode].status === status
        ? (e.code as ProblemCode)
        : codeForStatus(status));
    const detail =
      typeof e.detail === 'string'
        ? e.detail
        : code === 'PS-1601'
          ? 'the request body is larger than the limit'
          : code === 'PS-1002'
            ? 'the request body is not valid JSON'
            : typeof e.message === 'string' && e.message.length < 300
              ? e.message
              : PROBLEMS[code].title;
    return new ApiProblem(code, detail);
  }
  const requestId = locals(res).requestId;
  logger.error('api: internal error', {
    requestId,
    method: req.method,
    path: pathOf(req).slice(0, 200),
    error: err instanceof Error ? err.message : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return new ApiProblem(
    'PS-1901',
    `the operator could not complete the request; the server log has the details under request id ${requestId}`,
  );
}

type Method = 'GET' | 'POST';

/** A path with its methods; other methods get 405 with Allow, OPTIONS gets 204 with Allow. */
function route(
  app: express.Express,
  path: string,
  handlers: Partial<Record<Method, RequestHandler[]>>,
): void {
  const r = app.route(path);
  const methods: string[] = [];
  if (handlers.GET) {
    r.get(...handlers.GET);
    methods.push('GET', 'HEAD');
  }
  if (handlers.POST) {
    r.post(...handlers.POST);
    methods.push('POST');
  }
  const allow = [...methods, 'OPTIONS'].join(', ');
  r.options((_req, res) => {
    res.setHeader('Allow', allow);
    res.status(204).end();
  });
  r.all((req, _res, next) => {
    next(
      new ApiProblem(
        'PS-1401',
        `${req.method.slice(0, 20)} is not allowed on ${path}; use ${methods.join(' or ')}`,
        {
          headers: { Allow: allow },
        },
      ),
    );
  });
}

/** The version a pair runs as far as the operator knows: its last completed upgrade's. */
async function installedVersion(source: ResourceSource, pair: string): Promise<string | null> {
  const done = (await source.listUpgradeRequests())
    .filter((r) => r.spec.pairRef.name === pair && r.status?.phase === 'COMPLETE')
    .sort((a, b) => (a.status?.finishedAt ?? '').localeCompare(b.status?.finishedAt ?? ''));
  return done.at(-1)?.spec.package.version ?? null;
}

/** Text for /health: absolute paths and URLs replaced, so an anonymous caller learns no layout. */
function withoutPaths(text: string): string {
  return text
    .replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '(url)')
    .replace(/(^|[\s('"=:])\/[^\s'")]*/g, '$1(path)');
}

async function health(deps: ApiDeps, now: () => Date) {
  const checks: {
    name: 'store' | 'source' | 'reconciler';
    status: 'UP' | 'DOWN';
    message?: string;
    duration_ms: number;
  }[] = [];
  const t0 = performance.now();
  try {
    await withTimeout(deps.db.query('SELECT 1'), 2000);
    checks.push({ name: 'store', status: 'UP', duration_ms: Math.round(performance.now() - t0) });
  } catch (e) {
    checks.push({
      name: 'store',
      status: 'DOWN',
      message: `store not reachable: ${withoutPaths(e instanceof Error ? e.message.slice(0, 200) : String(e))}`,
      duration_ms: Math.round(performance.now() - t0),
    });
  }
  // The source and the loop are read from memory; what is timed is that read.
  const t1 = performance.now();
  const s = deps.operatorState?.() ?? { sourceStarted: true, reconcilerRunning: true };
  const source = deps.source.state();
  const readMs = Math.round(performance.now() - t1);
  const sourceUp = s.sourceStarted && source.running && source.problem === undefined;
  checks.push({
    name: 'source',
    status: sourceUp ? 'UP' : 'DOWN',
    // /health answers without a token: it says why, never where (no folders, no URLs).
    message: sourceUp
      ? 'following resources'
      : `not following resources: ${withoutPaths(source.problem ?? 'not running')}`,
    duration_ms: readMs,
  });
  checks.push({
    name: 'reconciler',
    status: s.reconcilerRunning ? 'UP' : 'DOWN',
    ...(s.reconcilerRunning ? {} : { message: 'the reconcile loop is not running' }),
    duration_ms: readMs,
  });
  return {
    status: checks.every((c) => c.status === 'UP') ? ('UP' as const) : ('DOWN' as const),
    timestamp: now().toISOString(),
    checks,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export { STATUS_PATH };
