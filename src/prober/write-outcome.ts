// What one probe insert tells us about the row it tried to write. Pure.
//
// - acked:   the server answered the statement with success (CommandComplete
//            then ReadyForQuery). The row is committed; losing it later is
//            data loss.
// - failed:  we know the row was NOT written: the statement was never sent
//            (no connection, connect refused or timed out, no free slot), or
//            the server answered with an ERROR. In an autocommit statement an
//            ERROR rolls the implicit transaction back; errors after the
//            commit record is written are promoted to PANIC, never ERROR.
// - unknown: the statement was sent and we cannot tell whether it committed:
//            the connection died or our timeout fired before the answer, or
//            the server sent FATAL/PANIC (a backend terminated between its
//            commit and its reply reports FATAL although the row is in, e.g.
//            pg_terminate_backend during a synchronous-replication wait).
//            Verification later says which of these landed; they are never
//            counted as lost.

export type WriteOutcome = 'acked' | 'failed' | 'unknown';

export type WriteAttempt =
  | { sent: false; reason: string }
  | { sent: true; result: 'ack' }
  | { sent: true; result: 'server-error'; severity: string; code?: string }
  | { sent: true; result: 'connection-lost'; reason: string }
  | { sent: true; result: 'timeout' };

export function classifyWrite(attempt: WriteAttempt): WriteOutcome {
  if (!attempt.sent) return 'failed';
  switch (attempt.result) {
    case 'ack':
      return 'acked';
    case 'server-error':
      // Only a plain ERROR proves the rollback. WARNING/NOTICE never reject
      // a statement; anything else (FATAL, PANIC, unknown) is not proof.
      return attempt.severity.toUpperCase() === 'ERROR' ? 'failed' : 'unknown';
    case 'connection-lost':
    case 'timeout':
      return 'unknown';
  }
}

/** A short label for the report's reason counts. */
export function attemptReason(attempt: WriteAttempt): string {
  if (!attempt.sent) return attempt.reason;
  switch (attempt.result) {
    case 'ack':
      return 'ok';
    case 'server-error':
      return `${attempt.severity.toLowerCase()}${attempt.code ? ` ${attempt.code}` : ''}`;
    case 'connection-lost':
      return `lost after send: ${attempt.reason}`;
    case 'timeout':
      return 'timeout after send';
  }
}

/**
 * What a rejected insert tells us, given that it was handed to the client
 * on a connection believed alive. A server error carries its severity. pg
 * refuses, before writing anything, a query on a client it already knows is
 * broken or closing: that is "not sent". Anything else happened after the
 * statement was written to the socket.
 */
export function attemptFromQueryError(err: unknown): WriteAttempt {
  const severity = (err as { severity?: unknown } | null)?.severity;
  if (typeof severity === 'string') {
    const code = (err as { code?: unknown }).code;
    return {
      sent: true,
      result: 'server-error',
      severity,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  const text = errorText(err);
  if (/^Client (has encountered a connection error|was closed) and is not queryable$/.test(text)) {
    return { sent: false, reason: 'connection already broken' };
  }
  return { sent: true, result: 'connection-lost', reason: text };
}

export function errorText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const msg = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !msg.includes(code) ? `${code} ${msg}` : msg;
}
