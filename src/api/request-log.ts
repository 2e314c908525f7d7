// api_request_log (task list 1.1.9, 5.2.3): every request and its response,
// with secrets redacted and summaries bounded. Writing is off the request's
// path: records are queued and written in batches (one multi-row INSERT per
// batch), because a row per request written as it finishes made the store
// the API's bottleneck under polling load. A failed write is reported in the
// server log and never fails or delays the request it describes; a batch
// that fails is retried row by row so one bad row loses only itself.
import type { Logger } from '../log/logger.js';
import { redact, secrets } from '../log/redact.js';
import type { SqlExecutor } from '../store/sql-client.js';
import { UPGRADE_ID_PATTERN } from './schemas.js';

/** An HTTP method token (RFC 9110 tchar), as the table's CHECK constraint accepts it. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const SUMMARY_MAX = 4096;
const COLUMNS = 11;

export interface RequestLogOptions {
  /** Rows per INSERT; default 200. */
  readonly batchSize?: number;
  /** Longest a record waits for its batch; default 100 ms. */
  readonly flushAfterMs?: number;
  /**
   * Records held while the store is slow or down; beyond it new records are
   * dropped and counted in the server log. Default 20000 (a few MB).
   */
  readonly maxQueued?: number;
}

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

/** Decodes %XX escapes that decode; leaves the rest as it was (a bad escape is kept). */
function percentDecoded(text: string): string {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/(%[0-9A-Fa-f]{2})+/g, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run;
      }
    });
  }
}

/**
 * A client's text with every secret masked, raw and percent-decoded: a token
 * sent as %6F%70... is a token too. When decoding reveals a secret, the
 * decoded, masked form is kept (the raw form would still carry the secret).
 */
export function maskClientText(text: string): string {
  const raw = secrets.maskText(text);
  const decoded = percentDecoded(raw);
  if (decoded === raw) return raw;
  const masked = secrets.maskText(decoded);
  return masked === decoded ? raw : masked;
}

/** Keys and values of anything a client sent, masked (then redact() for secret-named fields). */
function maskDeep(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskClientText(value);
  if (value === null || typeof value !== 'object' || depth > 8 || Buffer.isBuffer(value))
    return value;
  if (Array.isArray(value)) return value.map((v) => maskDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[maskClientText(k)] = maskDeep(v, depth + 1);
  return out;
}

/** The upgrade id column holds an id only: text that parses as one and carries no secret. */
function storedUpgradeId(raw: string | undefined): string | null {
  if (raw === undefined || raw.length > 253 || !UPGRADE_ID_PATTERN.test(raw)) return null;
  return secrets.maskText(raw) === raw ? raw : null;
}

/** A bounded, redacted JSON text of anything. */
export function summarize(value: unknown): string | null {
  if (value === undefined) return null;
  let text: string;
  try {
    text = JSON.stringify(redact(maskDeep(value))) ?? 'null';
  } catch {
    text = '"[unserializable]"';
  }
  if (text.length <= SUMMARY_MAX) return text;
  const cut = `… [${text.length} characters, truncated]`;
  return text.slice(0, SUMMARY_MAX - cut.length) + cut;
}

interface Row {
  readonly values: unknown[];
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export class RequestLog {
  /** Records not yet written (a batch being written is no longer here). */
  #queue: Row[] = [];
  #timer: NodeJS.Timeout | null = null;
  #writer: Promise<void> | null = null;
  #dropped = 0;
  readonly #batchSize: number;
  readonly #flushAfterMs: number;
  readonly #maxQueued: number;

  constructor(
    private readonly db: SqlExecutor,
    private readonly logger: Logger,
    opts: RequestLogOptions = {},
  ) {
    this.#batchSize = opts.batchSize ?? 200;
    this.#flushAfterMs = opts.flushAfterMs ?? 100;
    this.#maxQueued = opts.maxQueued ?? 20_000;
  }

  /** Queues a record; never throws for a record's content, never waits. */
  record(r: RequestRecord): void {
    if (this.#queue.length >= this.#maxQueued) {
      this.#dropped++;
      return;
    }
    this.#queue.push(toRow(r));
    this.#schedule();
  }

  /** Writes everything queued so far and waits for it (tests; shutdown). */
  async flush(): Promise<void> {
    while (this.#queue.length > 0 || this.#writer) {
      this.#startWriter();
      await this.#writer;
    }
  }

  #schedule(): void {
    if (this.#writer) return; // the running writer takes the queue in its next batch
    if (this.#queue.length >= this.#batchSize) this.#startWriter();
    else if (!this.#timer) {
      // A short wait gathers the requests of a busy moment into one INSERT.
      this.#timer = setTimeout(() => this.#startWriter(), this.#flushAfterMs);
      this.#timer.unref();
    }
  }

  /** One writer at a time, batch after batch until the queue is empty. */
  #startWriter(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#writer) return;
    this.#writer = (async () => {
      while (this.#queue.length > 0) {
        await this.#writeBatch(this.#queue.splice(0, this.#batchSize));
      }
    })().finally(() => {
      this.#writer = null;
      // Records can arrive between the loop's last check and here.
      if (this.#queue.length > 0) this.#schedule();
    });
  }

  async #writeBatch(batch: Row[]): Promise<void> {
    if (this.#dropped > 0) {
      this.logger.warn('api_request_log: requests not recorded, the store did not keep up', {
        dropped: this.#dropped,
      });
      this.#dropped = 0;
    }
    try {
      await this.#insert(batch);
      return;
    } catch {
      // Which row failed is unknown: each alone, so the others are kept.
    }
    const failed: { row: Row; error: string }[] = [];
    for (const row of batch) {
      try {
        await this.#insert([row]);
      } catch (e) {
        failed.push({ row, error: e instanceof Error ? e.message : String(e) });
      }
    }
    if (failed.length === 0) return;
    // One line per batch: a store that is down must not flood the log.
    const first = failed[0]!;
    this.logger.warn('api_request_log: could not record a request', {
      failed: failed.length,
      of: batch.length,
      method: first.row.method,
      path: first.row.path.slice(0, 200),
      status: first.row.status,
      error: first.error,
    });
  }

  async #insert(rows: readonly Row[]): Promise<void> {
    const tuples = rows.map((_, i) => {
      const p = (k: number) => `$${i * COLUMNS + k}`;
      return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}::inet, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)})`;
    });
    await this.db.query(
      `INSERT INTO api_request_log (at, request_id, method, path, status, duration_ms, client_ip,
         upgrade_id, token_name, request_summary, response_summary)
       VALUES ${tuples.join(', ')}`,
      rows.flatMap((r) => r.values),
    );
  }
}

/** A record as the table takes it: redacted, bounded, constraints met. */
function toRow(r: RequestRecord): Row {
  // node's parser only lets method tokens through; the fallback keeps a row
  // (and the constraint) should that ever change.
  const method = METHOD_TOKEN.test(r.method) ? r.method : 'UNKNOWN';
  const rawPath = r.path.startsWith('/') ? r.path : `/${r.path}`;
  const path = maskClientText(rawPath.slice(0, 2048));
  const status = r.status >= 100 && r.status <= 599 ? r.status : 500;
  const request = summarize({
    ...(r.query && Object.keys(r.query as object).length > 0 ? { query: r.query } : {}),
    ...(r.body !== undefined ? { body: r.body } : {}),
  });
  return {
    method,
    path,
    status,
    values: [
      r.at,
      r.requestId,
      method,
      path,
      status,
      Math.max(0, Math.round(r.durationMs)),
      r.clientIp ?? null,
      storedUpgradeId(r.upgradeId),
      r.tokenName?.slice(0, 200) ?? null,
      request === '{}' ? null : request,
      summarize(r.response),
    ],
  };
}
