// One delivery attempt: POST the event (or its Slack body) to a receiver,
// with its bearer token and HMAC signature when it has them, within a time
// limit. The secrets and the URL are read from their files at each attempt
// (a rotated Secret is picked up), registered with the log redactor, and
// never put into a result: results carry a status code or an error code.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ReceiverConfig } from '../config/receivers.js';
import type { CloudEvent } from '../core/notification.js';
import { secrets } from '../log/redact.js';
import { slackBody } from './slack.js';

export const SIGNATURE_HEADER = 'X-Pairshift-Signature';

export interface AttemptResult {
  readonly ok: boolean;
  /** The HTTP status, when the receiver answered. */
  readonly status: number | null;
  /** Why it failed, without secrets: "HTTP 503", "ECONNREFUSED", "timed out after 10 s". */
  readonly error: string | null;
  /** False when trying again cannot help (a 4xx other than 408 and 429). */
  readonly retryable: boolean;
}

/** The request body and its content type for a receiver's format. */
export function bodyFor(
  format: ReceiverConfig['format'],
  event: CloudEvent,
): { body: string; contentType: string } {
  return format === 'slack'
    ? { body: JSON.stringify(slackBody(event)), contentType: 'application/json' }
    : { body: JSON.stringify(event), contentType: 'application/cloudevents+json' };
}

/** sha256=<hex HMAC-SHA256 of the body with the secret>. */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

class FileProblem extends Error {}

async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new FileProblem(
      `cannot read ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  if (text === '') throw new FileProblem(`${what} ${path} is empty`);
  secrets.add(text);
  return text;
}

/** A fetch failure as a code: the cause's errno (ECONNREFUSED) or its name. */
function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') {
    return `timed out after ${timeoutMs} ms`;
  }
  if (e?.name === 'AbortError') return 'aborted (operator stopping)';
  return e?.cause?.code ?? e?.cause?.name ?? e?.name ?? 'request failed';
}

export async function sendOnce(
  receiver: ReceiverConfig,
  event: CloudEvent,
  opts: { timeoutMs: number; signal?: AbortSignal },
): Promise<AttemptResult> {
  let url: string;
  const headers: Record<string, string> = { 'user-agent': 'pairshift-notifier' };
  try {
    url = receiver.urlFile ? await readSecretFile(receiver.urlFile, 'urlFile') : receiver.url!;
    const { body, contentType } = bodyFor(receiver.format, event);
    headers['content-type'] = contentType;
    if (receiver.bearerTokenFile) {
      const token = await readSecretFile(receiver.bearerTokenFile, 'bearerTokenFile');
      headers.authorization = `Bearer ${token}`;
    }
    if (receiver.hmacSecretFile) {
      const secret = await readSecretFile(receiver.hmacSecretFile, 'hmacSecretFile');
      headers[SIGNATURE_HEADER.toLowerCase()] = signature(secret, body);
    }
    const signals = [AbortSignal.timeout(opts.timeoutMs), ...(opts.signal ? [opts.signal] : [])];
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.any(signals),
    });
    // The answer's body is not read into anything: drained and dropped.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) {
      return { ok: true, status: res.status, error: null, retryable: false };
    }
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    return { ok: false, status: res.status, error: `HTTP ${res.status}`, retryable };
  } catch (err) {
    if (err instanceof FileProblem) {
      // A Secret being re-mounted may be missing for a moment: tried again.
      return { ok: false, status: null, error: err.message, retryable: true };
    }
    return {
      ok: false,
      status: null,
      error: describeFetchError(err, opts.timeoutMs),
      retryable: true,
    };
  }
}
