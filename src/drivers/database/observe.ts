// Observing a node's database over SSH: is it running, primary or standby,
// its WAL positions, its WAL receiver; and for a stopped server, how it
// stopped and its last checkpoint (pg_controldata). Nothing here changes
// anything. Every decision of the driver starts from these observations.
import type { HAPair } from '../../inventory/hapair.js';
import { type DriverClock, realClock } from '../clock.js';
import { DriverError, whileDoing } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';
import { type DatabaseFlavour, flavourFor } from './flavour.js';
import { formatBytes, formatLsn, type Lsn, lagBytes, parseLsnOrNull } from './lsn.js';
import { asOsUser, parseBool, querySql, type Row } from './psql.js';
import { type ControlData, parseControlData } from './server-files.js';

export interface DbContext {
  readonly shell: NodeShell;
  readonly pair: HAPair;
  readonly flavour: DatabaseFlavour;
  readonly log: (line: string) => void;
  /** Deadlines and polling (default: real time). */
  readonly clock?: DriverClock;
}

export function dbContext(
  shell: NodeShell,
  pair: HAPair,
  log: (line: string) => void = () => {},
  clock?: DriverClock,
): DbContext {
  return {
    shell,
    pair,
    flavour: flavourFor(pair.spec.database.engine),
    log,
    ...(clock ? { clock } : {}),
  };
}

export interface RunningDb {
  readonly node: string;
  readonly running: true;
  readonly inRecovery: boolean;
  /** Primary only. */
  readonly currentLsn: Lsn | null;
  /** Standby only (null on a primary that never was one). */
  readonly receiveLsn: Lsn | null;
  readonly replayLsn: Lsn | null;
  readonly receiverStatus: string | null;
  readonly senderHost: string | null;
  readonly syncStandbyNames: string;
  readonly primaryConninfo: string;
  /** Primary only: timeline of the WAL it writes now. */
  readonly timeline: number | null;
}

export interface StoppedDb {
  readonly node: string;
  readonly running: false;
  readonly control: ControlData;
  readonly standbySignal: boolean;
}

export type DbState = RunningDb | StoppedDb;

/** The one query that describes a running server (flavour-specific function names). */
export function stateQuery(f: DatabaseFlavour): string {
  return [
    'SELECT pg_is_in_recovery(),',
    `  CASE WHEN pg_is_in_recovery() THEN NULL ELSE ${f.sql.currentLsn}::text END,`,
    `  ${f.sql.receiveLsn}::text, ${f.sql.replayLsn}::text,`,
    `  (SELECT w.s FROM (${f.sql.walReceiver}) AS w(s, h) LIMIT 1),`,
    `  (SELECT w.h FROM (${f.sql.walReceiver}) AS w(s, h) LIMIT 1),`,
    "  current_setting('synchronous_standby_names'),",
    `  current_setting('${f.conninfoParameter}'),`,
    `  CASE WHEN pg_is_in_recovery() THEN NULL ELSE ('x' || substr(pg_walfile_name(${f.sql.currentLsn}), 1, 8))::bit(32)::int END`,
  ].join('\n');
}

/** Pure: the state query's single row. */
export function parseStateRow(node: string, rows: readonly Row[]): RunningDb {
  const r = rows[0];
  if (!r || r.length < 9)
    throw new Error(`unexpected answer to the state query: ${JSON.stringify(rows)}`);
  return {
    node,
    running: true,
    inRecovery: parseBool(r[0]!) === true,
    currentLsn: parseLsnOrNull(r[1]),
    receiveLsn: parseLsnOrNull(r[2]),
    replayLsn: parseLsnOrNull(r[3]),
    receiverStatus: r[4] ?? null,
    senderHost: r[5] ?? null,
    syncStandbyNames: r[6] ?? '',
    primaryConninfo: r[7] ?? '',
    timeline: r[8] === null || r[8] === undefined ? null : Number(r[8]),
  };
}

export async function isRunning(ctx: DbContext, node: string): Promise<boolean> {
  // pg_ctl status / systemctl is-active: 0 running, anything else not.
  const r = await ctx.shell.exec(node, ['sh', '-c', ctx.pair.spec.database.status], {
    okExitCodes: Array.from({ length: 255 }, (_, i) => i + 1),
  });
  return r.exitCode === 0;
}

export async function controlData(ctx: DbContext, node: string): Promise<ControlData> {
  const db = ctx.pair.spec.database;
  const r = await ctx.shell.exec(node, [
    ...asOsUser(ctx.pair),
    `${db.binDir}/${ctx.flavour.controldata}`,
    '-D',
    db.dataDir,
  ]);
  try {
    return parseControlData(r.stdout);
  } catch (err) {
    throw new DriverError((err as Error).message, { kind: 'terminal', node });
  }
}

export async function observeDb(ctx: DbContext, node: string): Promise<DbState> {
  return whileDoing(
    `observing the database on ${node}`,
    async () => {
      if (await isRunning(ctx, node)) {
        const rows = await querySql(
          ctx.shell,
          ctx.pair,
          ctx.flavour,
          node,
          stateQuery(ctx.flavour),
        );
        try {
          return parseStateRow(node, rows);
        } catch (err) {
          throw new DriverError((err as Error).message, { kind: 'terminal', node });
        }
      }
      const db = ctx.pair.spec.database;
      const [control, signal] = await Promise.all([
        controlData(ctx, node),
        ctx.shell.exec(node, ['test', '-e', `${db.dataDir}/standby.signal`], { okExitCodes: [1] }),
      ]);
      return { node, running: false, control, standbySignal: signal.exitCode === 0 } as StoppedDb;
    },
    { kind: 'transient', node },
  );
}

/** Throws a 'waiting' DriverError while the standby has not replayed `lsn`. */
export async function checkReplayed(ctx: DbContext, standby: string, lsn: Lsn): Promise<RunningDb> {
  const s = await observeDb(ctx, standby);
  if (!s.running)
    throw new DriverError('the standby is not running', { kind: 'terminal', node: standby });
  if (!s.inRecovery)
    throw new DriverError('is not a standby (not in recovery)', {
      kind: 'terminal',
      node: standby,
    });
  if (s.replayLsn !== null && s.replayLsn >= lsn) return s;
  throw new DriverError(describeLag(s, lsn), { kind: 'waiting', node: standby });
}

export function describeLag(s: RunningDb, lsn: Lsn): string {
  const replayed = s.replayLsn === null ? 'nothing' : formatLsn(s.replayLsn);
  const lag = s.replayLsn === null ? '' : `, ${formatBytes(lagBytes(lsn, s.replayLsn))} behind`;
  const received = s.receiveLsn === null ? 'nothing' : formatLsn(s.receiveLsn);
  return `replayed ${replayed} of ${formatLsn(lsn)}${lag} (received ${received}; WAL receiver ${s.receiverStatus ?? 'not running'})`;
}

/**
 * Waits until the standby has replayed `lsn`: 'waiting' while behind, then a
 * terminal error at the deadline naming how far behind it still was.
 */
export async function waitForReplay(
  ctx: DbContext,
  standby: string,
  lsn: Lsn,
  timeoutMs: number,
  pollMs = 100,
): Promise<RunningDb> {
  const clock = ctx.clock ?? realClock;
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    try {
      return await checkReplayed(ctx, standby, lsn);
    } catch (err) {
      if (!(err instanceof DriverError) || err.kind !== 'waiting') throw err;
      if (clock.now() >= deadline) {
        throw new DriverError(
          `the standby did not replay ${formatLsn(lsn)} within ${timeoutMs} ms: ${err.problem}`,
          { kind: 'terminal', node: standby, cause: err },
        );
      }
      await clock.sleep(pollMs);
    }
  }
}
