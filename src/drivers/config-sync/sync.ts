// The rsync config sync job (task list 2.5.1-2.5.3, 4.1.1, 4.5.1): status,
// pause and resume through the commands the HAPair declares, each
// ensure-style (pausing a paused job changes nothing), each change written
// to rsync_status_record. The job runs on both nodes (only the VIP holder
// pushes, and the VIP moves during an upgrade), so the pair-level calls act
// on both.
//
// Locking /etc/app is in config-sync-lock.ts, the cross-node checksum
// comparison in config-sync-compare.ts.
import type { HAPair } from '../../inventory/hapair.js';
import { DriverError, whileDoing } from '../errors.js';
import type { RecordSink } from '../records.js';
import type { NodeShell } from '../ssh/pool.js';
import { parseRsyncStatus, type RsyncJobStatus } from './parse.js';

export type { RsyncJobStatus } from './parse.js';

export interface ConfigSyncContext {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  readonly records: RecordSink;
}

export interface RsyncChange {
  readonly node: string;
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly before: RsyncJobStatus;
  /** Observed after acting (equal to before when nothing was done). */
  readonly after: RsyncJobStatus;
}

export async function rsyncStatus(ctx: ConfigSyncContext, node: string): Promise<RsyncJobStatus> {
  return whileDoing(
    'reading the rsync job status',
    async () => {
      const r = await ctx.shell.exec(node, ['sh', '-c', ctx.pair.spec.rsync.status]);
      try {
        return parseRsyncStatus(r.stdout);
      } catch (err) {
        throw new DriverError((err as Error).message, {
          kind: 'terminal',
          node,
          command: ctx.pair.spec.rsync.status,
        });
      }
    },
    { kind: 'transient', node },
  );
}

async function ensure(
  ctx: ConfigSyncContext,
  node: string,
  want: 'paused' | 'resumed',
  opts: { upgradeId?: string | null; dryRun?: boolean },
): Promise<RsyncChange> {
  const dryRun = opts.dryRun ?? false;
  const command = want === 'paused' ? ctx.pair.spec.rsync.pause : ctx.pair.spec.rsync.resume;
  const verb = want === 'paused' ? 'pausing' : 'resuming';
  return whileDoing(
    `${verb} the rsync job`,
    async () => {
      const before = await rsyncStatus(ctx, node);
      if (before.paused === (want === 'paused'))
        return { node, state: 'unchanged' as const, dryRun, before, after: before };
      if (dryRun) return { node, state: 'changed' as const, dryRun, before, after: before };
      await ctx.shell.exec(node, ['sh', '-c', command]);
      const after = await rsyncStatus(ctx, node);
      if (after.paused !== (want === 'paused')) {
        throw new DriverError(`the job still reports paused=${after.paused} after \`${command}\``, {
          kind: 'conflict',
          node,
          command,
        });
      }
      await ctx.records.rsyncStatus({
        upgradeId: opts.upgradeId ?? null,
        node,
        state: after.state,
        detail: `${want} (was ${before.state}; last run ${before.lastRun ?? 'never'}: ${before.lastResult ?? 'none'})`,
      });
      return { node, state: 'changed' as const, dryRun, before, after };
    },
    { kind: 'transient', node },
  );
}

/** Pauses the job on one node; once this returns, that node pushes nothing. */
export function ensureRsyncPaused(
  ctx: ConfigSyncContext,
  node: string,
  opts: { upgradeId?: string | null; dryRun?: boolean } = {},
): Promise<RsyncChange> {
  return ensure(ctx, node, 'paused', opts);
}

export function ensureRsyncResumed(
  ctx: ConfigSyncContext,
  node: string,
  opts: { upgradeId?: string | null; dryRun?: boolean } = {},
): Promise<RsyncChange> {
  return ensure(ctx, node, 'resumed', opts);
}

export interface PairRsyncChange {
  readonly state: 'unchanged' | 'changed';
  readonly nodes: readonly RsyncChange[];
}

function onPair(
  ctx: ConfigSyncContext,
  fn: (node: string) => Promise<RsyncChange>,
): Promise<PairRsyncChange> {
  return (async () => {
    const nodes: RsyncChange[] = [];
    // one node after the other: the order of records is the order of acts
    for (const n of ctx.pair.spec.nodes) nodes.push(await fn(n.name));
    return { state: nodes.some((n) => n.state === 'changed') ? 'changed' : 'unchanged', nodes };
  })();
}

/** Pauses the job on both nodes (the VIP, and with it the push direction, may move). */
export function ensureRsyncPausedOnPair(
  ctx: ConfigSyncContext,
  opts: { upgradeId?: string | null; dryRun?: boolean } = {},
): Promise<PairRsyncChange> {
  return onPair(ctx, (n) => ensureRsyncPaused(ctx, n, opts));
}

export function ensureRsyncResumedOnPair(
  ctx: ConfigSyncContext,
  opts: { upgradeId?: string | null; dryRun?: boolean } = {},
): Promise<PairRsyncChange> {
  return onPair(ctx, (n) => ensureRsyncResumed(ctx, n, opts));
}

/**
 * One round of rsync monitoring (task list 2.5.6): reads the job on both
 * nodes and writes an rsync_status_record for each node whose state differs
 * from `previous` (the last round's answer; empty on the first round, so the
 * first round records every node). A node that cannot be read is `unknown`,
 * with the error as detail, rather than stopping the round. Call it on a
 * timer; pass back what it returns.
 */
export async function monitorRsyncRound(
  ctx: ConfigSyncContext,
  previous: ReadonlyMap<string, RsyncJobStatus['state'] | 'unknown'>,
  opts: { upgradeId?: string | null } = {},
): Promise<Map<string, RsyncJobStatus['state'] | 'unknown'>> {
  const next = new Map<string, RsyncJobStatus['state'] | 'unknown'>();
  for (const { name } of ctx.pair.spec.nodes) {
    let state: RsyncJobStatus['state'] | 'unknown';
    let detail: string;
    try {
      const s = await rsyncStatus(ctx, name);
      state = s.state;
      detail = `last run ${s.lastRun ?? 'never'}: ${s.lastResult ?? 'none'}${s.lastError ? ` (${s.lastError})` : ''}`;
    } catch (err) {
      state = 'unknown';
      detail = (err as Error).message;
    }
    next.set(name, state);
    if (previous.get(name) !== state) {
      await ctx.records.rsyncStatus({
        upgradeId: opts.upgradeId ?? null,
        node: name,
        state,
        detail,
      });
    }
  }
  return next;
}
