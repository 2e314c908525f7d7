// A real API server for the tests: PGlite store (migrated), the standalone
// source with a few HAPairs, and the app listening on 127.0.0.1. call()
// checks every response against the OpenAPI document the server serves.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Subject } from 'rxjs';
import { type ApiDeps, createApiApp } from '../../src/api/app.js';
import { buildOpenApi } from '../../src/api/openapi.js';
import { PROBLEM_MEDIA_TYPE } from '../../src/api/problems.js';
import { type RunningApi, startApiServer } from '../../src/api/server.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { hapairYaml } from '../support/manifests.js';

export { hapairYaml };

export const OPERATOR_TOKEN = 'op-secret-token-0123456789abcdef';
export const VIEWER_TOKEN = 'viewer-secret-token-0123456789ab';

export interface Harness {
  db: SqlClient;
  source: StandaloneSource;
  api: RunningApi;
  logs: string[];
  logger: Logger;
  /** Plays the reconciler's part: names an upgrade whose progress was just written. */
  progressChanged: Subject<string>;
  close(): Promise<void>;
}

/** Captures what the server logs, to check that stacks and tokens stay where they belong. */
function captureLogger(lines: string[]): Logger {
  const logger = createLogger({ level: 'debug', format: 'json' });
  for (const t of logger.transports) t.silent = true;
  logger.on('data', (info: unknown) => lines.push(JSON.stringify(info)));
  return logger;
}

export async function startHarness(
  over: Partial<ApiDeps> & {
    pairs?: string[];
    wrapSource?: (s: StandaloneSource) => ApiDeps['source'];
  } = {},
): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-api-'));
  const db = await openPglite(join(dir, 'data'));
  await migrate(db);
  const source = new StandaloneSource({ db, resyncMs: 3_600_000 });
  await source.start();
  for (const p of over.pairs ?? ['lab', 'lab2', 'lab3']) {
    await source.putHAPair(parseHAPair(hapairYaml(p), `test ${p}`));
  }
  const logs: string[] = [];
  const logger = captureLogger(logs);
  const progressChanged = new Subject<string>();
  const api = await startApiServer('127.0.0.1:0', {
    progressChanges$: progressChanged,
    source: over.wrapSource ? over.wrapSource(source) : source,
    db,
    logger,
    auth: {
      tokens: [
        { token: OPERATOR_TOKEN, role: 'operator', name: 'ci-operator' },
        { token: VIEWER_TOKEN, role: 'viewer', name: 'dashboard' },
      ],
    },
    allow: ['127.0.0.0/8', '::1/128'],
    limits: { rateLimit: { ratePerSecond: 100_000, burst: 100_000 } },
    ...over,
  });
  return {
    db,
    source,
    api,
    logs,
    logger,
    progressChanged,
    async close() {
      await api.stop();
      await source.stop();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export { createApiApp };

// ---- OpenAPI checking -------------------------------------------------------

type Doc = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>
  >;
  components: { schemas: Record<string, object> };
};

export class OpenApiChecker {
  readonly doc: Doc;
  readonly #ajv: Ajv2020;
  readonly #templates: { re: RegExp; template: string }[];
  readonly #compiled = new Map<string, ReturnType<Ajv2020['compile']>>();
  checked = 0;

  constructor(doc: object = buildOpenApi()) {
    this.doc = doc as Doc;
    this.#ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    this.#ajv.addSchema({ $id: 'api', components: this.doc.components }, 'api');
    this.#templates = Object.keys(this.doc.paths).map((t) => ({
      template: t,
      re: new RegExp(`^${t.replace(/\{[a-z_]+\}/g, '[^/]+').replaceAll('.', '\\.')}/?$`, 'i'),
    }));
  }

  #validator(schema: object) {
    const key = JSON.stringify(schema);
    let v = this.#compiled.get(key);
    if (!v) {
      // References point at #/components/...: resolve them inside the 'api' document.
      const rewritten = JSON.parse(key.replaceAll('"#/components/', '"api#/components/'));
      v = this.#ajv.compile(rewritten);
      this.#compiled.set(key, v);
    }
    return v;
  }

  /**
   * Throws unless the response is one the document describes: a documented
   * status for the operation, of the documented media type and schema; any
   * problem (documented path or not) must match the Problem schema.
   */
  check(
    method: string,
    path: string,
    status: number,
    contentType: string | null,
    body: unknown,
  ): void {
    const pathOnly = path.split('?')[0]!;
    const t = this.#templates.find((x) => x.re.test(pathOnly));
    const op = t
      ? this.doc.paths[t.template]![method.toLowerCase() === 'head' ? 'get' : method.toLowerCase()]
      : undefined;
    const media = (contentType ?? '').split(';')[0]!.trim();
    // An error status documented with its own body (GET /health's 503) is
    // checked like a success; every other error must be a problem.
    const documentedError =
      status >= 400 &&
      media !== PROBLEM_MEDIA_TYPE &&
      op?.responses[String(status)]?.content?.[media];
    if (status >= 400 && !documentedError) {
      if (method.toUpperCase() === 'HEAD') return;
      if (media !== PROBLEM_MEDIA_TYPE)
        throw new Error(`${method} ${path} -> ${status}: media type ${media}, not problem+json`);
      this.#assert(
        this.#validator({ $ref: '#/components/schemas/Problem' }),
        body,
        `${method} ${path} -> ${status}`,
      );
      if ((body as { status?: number }).status !== status)
        throw new Error(
          `${method} ${path}: problem.status ${(body as { status?: number }).status} != ${status}`,
        );
      if (op && !op.responses[String(status)] && ![404, 405, 413, 415, 431].includes(status)) {
        throw new Error(`${method} ${path} -> ${status}: status not documented for ${t!.template}`);
      }
      this.checked++;
      return;
    }
    if (!op)
      throw new Error(`${method} ${path} -> ${status}: no operation in the OpenAPI document`);
    const resp = op.responses[String(status)];
    if (!resp) throw new Error(`${method} ${path} -> ${status}: status not documented`);
    if (method.toUpperCase() === 'HEAD' || status === 204) return;
    const schema = resp.content?.[media]?.schema;
    if (!resp.content?.[media])
      throw new Error(`${method} ${path} -> ${status}: media type ${media} not documented`);
    if (schema) this.#assert(this.#validator(schema), body, `${method} ${path} -> ${status}`);
    this.checked++;
  }

  #assert(v: ReturnType<Ajv2020['compile']>, body: unknown, what: string): void {
    if (!v(body)) {
      throw new Error(
        `${what}: response does not match the OpenAPI document: ${this.#ajv.errorsText(v.errors)}\n${JSON.stringify(body).slice(0, 500)}`,
      );
    }
  }
}

export interface Reply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read JSON replies field by field
  body: any;
  text: string;
}

export function client(baseUrl: string, checker: OpenApiChecker) {
  return async function call(
    method: string,
    path: string,
    opts: {
      token?: string | null;
      body?: unknown;
      raw?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const token = opts.token === undefined ? OPERATOR_TOKEN : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    checker.check(method, path, res.status, res.headers.get('content-type'), parsed);
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}
