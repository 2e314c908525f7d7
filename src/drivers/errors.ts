// Errors from driver actions are values with enough context to act on: which
// node, which command, its exit code, the tail of its stderr, and what the
// driver was doing at each layer ("while pausing rsync: while running ...").
// The kind (src/core/errors.ts) decides what happens next, in one place.
import type { ErrorKind } from '../core/errors.js';

export interface DriverErrorDetails {
  readonly kind: ErrorKind;
  readonly node?: string | undefined;
  readonly command?: string | undefined;
  readonly exitCode?: number | null | undefined;
  readonly stderrTail?: string | undefined;
  /** A deadline ran out (not a refusal): decided by the code that set the deadline, never by reading the message. */
  readonly timedOut?: boolean | undefined;
  readonly cause?: unknown;
}

const TAIL_CHARS = 800;

export function tail(text: string, chars = TAIL_CHARS): string {
  const t = text.trimEnd();
  return t.length <= chars ? t : `…${t.slice(-chars)}`;
}

export class DriverError extends Error {
  override readonly name = 'DriverError';
  readonly kind: ErrorKind;
  readonly node: string | undefined;
  readonly command: string | undefined;
  readonly exitCode: number | null | undefined;
  readonly stderrTail: string | undefined;
  readonly timedOut: boolean;
  /** Outermost first: what each layer was doing. */
  readonly doing: readonly string[];
  readonly problem: string;

  constructor(problem: string, details: DriverErrorDetails, doing: readonly string[] = []) {
    super(DriverError.compose(problem, details, doing), { cause: details.cause });
    this.problem = problem;
    this.kind = details.kind;
    this.node = details.node;
    this.command = details.command;
    this.exitCode = details.exitCode;
    this.stderrTail = details.stderrTail;
    this.timedOut = details.timedOut === true;
    this.doing = doing;
  }

  private static compose(problem: string, d: DriverErrorDetails, doing: readonly string[]): string {
    const where = d.node ? `${d.node}: ` : '';
    const whiles = doing.map((w) => `while ${w}: `).join('');
    const exit = d.exitCode !== undefined && d.exitCode !== null ? ` (exit ${d.exitCode})` : '';
    const stderr = d.stderrTail ? `: ${d.stderrTail.split('\n').slice(-3).join(' | ')}` : '';
    return `${where}${whiles}${problem}${exit}${stderr}`;
  }

  /** The same error with one more layer of "while ..." in front. */
  within(doing: string): DriverError {
    return new DriverError(
      this.problem,
      {
        kind: this.kind,
        node: this.node,
        command: this.command,
        exitCode: this.exitCode,
        stderrTail: this.stderrTail,
        timedOut: this.timedOut,
        cause: this.cause,
      },
      [doing, ...this.doing],
    );
  }
}

/** Runs fn; any failure comes out as a DriverError with `doing` added. */
export async function whileDoing<T>(
  doing: string,
  fn: () => Promise<T>,
  fallback: { kind: ErrorKind; node?: string } = { kind: 'transient' },
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DriverError) throw err.within(doing);
    const message = err instanceof Error ? err.message : String(err);
    throw new DriverError(message, { ...fallback, cause: err }, [doing]);
  }
}

/** True when err, or an error it wraps (cause), is a DriverError that timed out. */
export function isTimeout(err: unknown): boolean {
  for (let e = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DriverError && e.timedOut) return true;
  }
  return false;
}
