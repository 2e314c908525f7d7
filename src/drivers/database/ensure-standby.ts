// Bringing a stopped standby back (issue 12.3): ensure-style. A database
// that stopped by itself while it was a standby (its data directory still
// holds standby.signal) starts again as a standby of the running primary and
// is checked to be in recovery. Anything else is refused with a terminal
// error: a stopped primary is not started by this driver, since starting it
// while the other node may have been promoted could make two primaries.
import { realClock } from '../clock.js';
import { DriverError } from '../errors.js';
import { type DbContext, observeDb } from './observe.js';

export interface StandbyStartResult {
  readonly node: string;
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  /** ms from the start command to the server answering in recovery; 0 when nothing was done. */
  readonly waitedMs: number;
}

export async function ensureStandbyRunning(
  ctx: DbContext,
  node: string,
  opts: { readonly dryRun?: boolean; readonly timeoutMs?: number } = {},
): Promise<StandbyStartResult> {
  const clock = ctx.clock ?? realClock;
  const dryRun = opts.dryRun ?? false;
  const before = await observeDb(ctx, node);
  if (before.running) {
    if (!before.inRecovery)
      throw new DriverError('runs as a primary; it is not a standby to bring back', {
        kind: 'terminal',
        node,
      });
    return { node, state: 'unchanged', dryRun, waitedMs: 0 };
  }
  if (!before.standbySignal)
    throw new DriverError(
      `is stopped (${before.control.state}) without standby.signal: it was not a standby, so it is not started as one`,
      { kind: 'terminal', node },
    );
  if (dryRun) return { node, state: 'changed', dryRun, waitedMs: 0 };
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const started = clock.now();
  await ctx.shell.exec(node, ['sh', '-c', ctx.pair.spec.database.start], { timeoutMs });
  // The start command may return before the server accepts connections.
  for (;;) {
    const after = await observeDb(ctx, node).catch(() => null);
    if (after?.running && after.inRecovery)
      return { node, state: 'changed', dryRun, waitedMs: Math.round(clock.now() - started) };
    if (after?.running && !after.inRecovery)
      throw new DriverError('came up as a primary after the start; standby.signal was ignored', {
        kind: 'terminal',
        node,
      });
    if (clock.now() - started > timeoutMs)
      throw new DriverError(`the database did not come up in recovery within ${timeoutMs} ms`, {
        kind: 'waiting',
        node,
      });
    await clock.sleep(250);
  }
}
