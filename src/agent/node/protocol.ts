// The agent's wire formats (pure): the /health report, and the JSON command
// protocol spoken over SSH (one request on stdin, one response on stdout).
export type CheckStatus = 'UP' | 'DOWN';
export type VrrpRole = 'MASTER' | 'BACKUP' | 'FAULT' | 'UNKNOWN';

export interface CheckResult {
  /** "database", "service:<name>", "service:<name>:health", "keepalived" */
  readonly name: string;
  readonly status: CheckStatus;
  readonly responseTimeMs: number;
  readonly detail: string;
  /** machine-readable facts (database role, VRRP state, advert counts) */
  readonly data?: Record<string, unknown>;
}

export interface HealthReport {
  readonly status: CheckStatus;
  readonly timestamp: string;
  readonly node: string;
  readonly role: VrrpRole;
  readonly responseTimeMs: number;
  readonly checks: readonly CheckResult[];
}

/** UP only when there is at least one check and every check is UP. */
export function aggregate(
  node: string,
  role: VrrpRole,
  checks: readonly CheckResult[],
  startedAt: number,
  now: number,
): HealthReport {
  return {
    status: checks.length > 0 && checks.every((c) => c.status === 'UP') ? 'UP' : 'DOWN',
    timestamp: new Date(now).toISOString(),
    node,
    role,
    responseTimeMs: round(now - startedAt),
    checks,
  };
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export const MAX_REQUEST_BYTES = 64 * 1024;

export type ErrorCode =
  | 'bad_request'
  | 'too_large'
  | 'unknown_command'
  | 'missing_argument'
  | 'forbidden'
  | 'timeout'
  | 'failed';

export interface CommandRequest {
  readonly command: string;
  readonly args: Record<string, unknown>;
  readonly timeoutMs: number | undefined;
}

export type CommandResponse =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } };

export class ProtocolError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function errorResponse(code: ErrorCode, message: string): CommandResponse {
  return { ok: false, error: { code, message } };
}

/** Parses one request; throws ProtocolError with a message a person can act on. */
export function parseRequest(input: string | Buffer): CommandRequest {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (bytes > MAX_REQUEST_BYTES) {
    throw new ProtocolError(
      'too_large',
      `request is ${bytes} bytes; the limit is ${MAX_REQUEST_BYTES}`,
    );
  }
  const text = input.toString().trim();
  if (text === '')
    throw new ProtocolError('bad_request', 'empty request: expected one JSON object on stdin');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError('bad_request', `request is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(
      'bad_request',
      'request must be a JSON object like {"command": "health"}',
    );
  }
  const o = value as Record<string, unknown>;
  if (typeof o.command !== 'string' || o.command === '') {
    throw new ProtocolError('bad_request', 'request needs "command" (a non-empty string)');
  }
  const args = o.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    throw new ProtocolError('bad_request', '"args" must be a JSON object');
  }
  let timeoutMs: number | undefined;
  if (o.timeoutMs !== undefined) {
    if (typeof o.timeoutMs !== 'number' || !Number.isFinite(o.timeoutMs) || o.timeoutMs <= 0) {
      throw new ProtocolError('bad_request', '"timeoutMs" must be a positive number');
    }
    timeoutMs = o.timeoutMs;
  }
  return { command: o.command, args: args as Record<string, unknown>, timeoutMs };
}

/** A required string argument, or a missing_argument error naming it. */
export function stringArg(req: CommandRequest, name: string): string {
  const v = req.args[name];
  if (v === undefined) {
    throw new ProtocolError('missing_argument', `command "${req.command}" needs args.${name}`);
  }
  if (typeof v !== 'string' || v === '') {
    throw new ProtocolError('bad_request', `args.${name} must be a non-empty string`);
  }
  return v;
}

/** Resolves with fn's value, or rejects with a timeout error after ms. */
export function withTimeout<T>(
  ms: number,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      ac.abort();
      reject(new ProtocolError('timeout', `${what} timed out after ${ms} ms`));
    }, ms);
    fn(ac.signal).then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
