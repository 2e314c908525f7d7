// How a watch of UpgradeRequests ended, decided from what its done callback
// got (pure, so every case is tested without a server). client-node 2.x
// aborts a watch that received nothing for 30 s with a TimeoutError
// (its inactivity timeout); a quiet namespace does that all the time, so it
// is an ordinary end, resumed at once from the last resourceVersion, like
// the server's own timeoutSeconds. A half-open connection ends the same way,
// and the resumed watch then fails honestly if the server is gone.

export interface WatchEnd {
  /** The watch went wrong (an error, an ERROR event, 410): count it and back off. */
  readonly failed: boolean;
  /** It ended cleanly after a while: failures are reset and it is resumed at once. */
  readonly healthy: boolean;
}

export interface WatchEndFacts {
  /** What the done callback got (null or undefined: a clean end). */
  readonly err: unknown;
  /** The watch must be replaced by a list (410 Gone). */
  readonly relist: boolean;
  /** The server sent an ERROR event. */
  readonly errorEvent: boolean;
  /** Events received. */
  readonly events: number;
  /** How long the watch lived. */
  readonly livedMs: number;
}

export function watchEnd(f: WatchEndFacts): WatchEnd {
  const failed =
    f.relist ||
    f.errorEvent ||
    (f.err !== null && f.err !== undefined && !isAbort(f.err) && !isIdleTimeout(f.err));
  // One that ends at once (no events, under a second) backs off as a failure would.
  const healthy = !failed && (f.events > 0 || f.livedMs > 1000);
  return { failed, healthy };
}

/** We aborted it ourselves (stop, a newer watch). */
export function isAbort(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'AbortError';
}

/** client-node's inactivity timeout: nothing received for a while. */
export function isIdleTimeout(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'TimeoutError';
}
