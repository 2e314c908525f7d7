// api_request_log (task list 1.1.9, 5.2.3): every request and its response,
// with secrets redacted and summaries bounded. Writing is off the request's
// path: a failed write is reported in the server log and never fails or
// delays the request it describes.
import type { Logger } from '../log/logger.js';
import { redact } from '../log/redact.js';
import type { SqlExecutor } from '../store/sql-client.js';

/** The methods the table's CHECK constraint accepts. */
const LOGGABLE_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const SUMMARY_MAX = 4096;

export interface RequestRecord {
  readonly at: Date;
  readonly requestId: string;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly clientIp: string | undefined;
  readonly upgradeId: string | undefined;
  /** Name of the token used (never the token itself), if any. */
  readonly tokenName: string | undefined;
  readonly query: unknown;
  readonly body: unknown;
  readonly response: unknown;
}

/** A bounded, redacted JSON text of anything. */
export function summarize(value: unknown): string | null {
  if (value === undefined) return null;
  let text: string;
  try {
    text = JSON.stringify(redact(value)) ?? 'null';
  } catch {
    text = '"[unserializable]"';
  }
  if (text.length <= SUMMARY_MAX) return text;
  const cut = `… [${text.length} characters, truncated]`;
  return text.slice(0, SUMMARY_MAX - cut.length) + cut;
}

export class RequestLog {
  readonly #pending = new Set<Promise<void>>();

  constructor(
    private readonly db: SqlExecutor,
    private readonly logger: Logger,
  ) {}

  record(r: RequestRecord): void {
    const p = this.#write(r)
      .catch((e: unknown) => {
        this.logger.warn('api_request_log: could not record a request', {
          method: r.method.slice(0, 32),
          path: r.path.slice(0, 200),
          status: r.status,
          error: e instanceof Error ? e.message : String(e),
        });
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** Waits for the writes started so far (tests; shutdown). */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  async #write(r: RequestRecord): Promise<void> {
    const method = r.method.toUpperCase();
    if (!LOGGABLE_METHODS.has(method)) {
      // The table only takes standard methods; such requests were answered 405/404.
      this.logger.info('api request with a non-standard method (not recorded in api_request_log)', {
        method: method.slice(0, 32),
        status: r.status,
        tokenName: r.tokenName,
      });
      return;
    }
    const path = r.path.startsWith('/') ? r.path : `/${r.path}`;
    const request = summarize({
      ...(r.tokenName ? { caller: r.tokenName } : {}),
      ...(r.query && Object.keys(r.query as object).length > 0 ? { query: r.query } : {}),
      ...(r.body !== undefined ? { body: r.body } : {}),
    });
    await this.db.query(
      `INSERT INTO api_request_log (at, request_id, method, path, status, duration_ms, client_ip,
         upgrade_id, request_summary, response_summary)
       VALUES ($1, $2, $3, $4, $5, $6, $7::inet, $8, $9, $10)`,
      [
        r.at,
        r.requestId,
        method,
        redact(path.slice(0, 2048)) as string,
        r.status,
        Math.max(0, Math.round(r.durationMs)),
        r.clientIp ?? null,
        r.upgradeId ?? null,
        request,
        summarize(r.response),
      ],
    );
  }
}
