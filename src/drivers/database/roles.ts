// The database operations a switchover is made of (task list 2.6.3): each
// one acts on ONE node's database and knows nothing of the VIP or of the
// order they run in. The choreography that orders them with the VIP move is
// src/drivers/switchover/switchover.ts; it reaches these through the
// SwitchoverDatabase interface, so it can be tested with a fake.
import { type DriverClock, realClock } from '../clock.js';
import { DriverError } from '../errors.js';
import { formatLsn, type Lsn, parseLsn, parseLsnOrNull } from './lsn.js';
import {
  controlData,
  type DbContext,
  type DbState,
  describeLag,
  observeDb,
  waitForReplay,
} from './observe.js';
import { asOsUser, querySql } from './psql.js';
import {
  type ControlData,
  confValue,
  followConninfo,
  parseControlData,
  parseTimelineHistory,
  setConfValue,
} from './server-files.js';

/** What the switchover choreography asks of the database driver. */
export interface SwitchoverDatabase {
  observe(node: string): Promise<DbState>;
  /** The primary's current WAL position. */
  currentLsn(node: string): Promise<Lsn>;
  /** Until the standby replayed lsn; terminal at the deadline. */
  waitForReplay(node: string, lsn: Lsn, timeoutMs: number): Promise<void>;
  clearSynchronousStandbyNames(node: string): Promise<void>;
  checkpoint(node: string): Promise<void>;
  /**
   * Starts watching the standby's WAL receiver; resolves with what it had
   * received when it stopped streaming (null: unknown). Null when the flavour
   * cannot watch.
   */
  watchReceiverEnd(node: string): Promise<Lsn | null> | null;
  /** The declared clean stop, then pg_controldata, in one command. */
  stopCleanly(node: string): Promise<ControlData>;
  controlData(node: string): Promise<ControlData>;
  /** Null once `node` has received past lsn within the timeout; else what is missing. */
  waitReceivedPast(node: string, lsn: Lsn, timeoutMs: number): Promise<string | null>;
  /** The declared start. */
  start(node: string): Promise<void>;
  /** Promote a standby (waits on the server for the promotion). */
  promote(node: string): Promise<void>;
  /** Make a stopped (or mis-following) old primary a standby of `primary` without pg_rewind. */
  rejoinAsStandby(node: string, primary: string, conninfoTemplate: string): Promise<void>;
  /** Until `node` streams WAL from `primary` (at primaryAddress); terminal at the deadline. */
  waitStreaming(
    node: string,
    primary: string,
    primaryAddress: string,
    timeoutMs: number,
  ): Promise<void>;
}

const CONTROL_MARKER = '@@pairshift-controldata@@';

/** The database driver's side of a switchover, on real nodes. */
export function switchoverDatabase(ctx: DbContext): SwitchoverDatabase {
  const clock = ctx.clock ?? realClock;
  const sql = (node: string, text: string) =>
    querySql(ctx.shell, ctx.pair, ctx.flavour, node, text);
  const db = ctx.pair.spec.database;
  return {
    observe: (node) => observeDb(ctx, node),
    async currentLsn(node) {
      const [row] = await sql(node, `SELECT ${ctx.flavour.sql.currentLsn}::text`);
      return parseLsnCell(row?.[0]);
    },
    async waitForReplay(node, lsn, timeoutMs) {
      await waitForReplay(ctx, node, lsn, timeoutMs);
    },
    async clearSynchronousStandbyNames(node) {
      await sql(node, "ALTER SYSTEM SET synchronous_standby_names = ''");
      await sql(node, 'SELECT pg_reload_conf()');
    },
    async checkpoint(node) {
      await sql(node, 'CHECKPOINT');
    },
    watchReceiverEnd(node) {
      const watchSql = ctx.flavour.receiverEndSql(30);
      if (!watchSql) return null;
      return sql(node, watchSql).then(
        (rows) => {
          try {
            return parseLsnOrNull(rows.at(-1)?.[0] ?? null);
          } catch {
            return null; // the slow path decides
          }
        },
        () => null,
      );
    },
    stopCleanly: (node) => stopCleanly(ctx, node),
    controlData: (node) => controlData(ctx, node),
    waitReceivedPast: (node, lsn, timeoutMs) => waitReceivedPast(ctx, clock, node, lsn, timeoutMs),
    async start(node) {
      await ctx.shell.exec(node, ['sh', '-c', db.start], { timeoutMs: 90_000 });
    },
    promote: (node) => promote(ctx, node),
    rejoinAsStandby: (node, primary, template) => rejoinAsStandby(ctx, node, primary, template),
    waitStreaming: (node, primary, address, timeoutMs) =>
      waitStreaming(ctx, clock, node, primary, address, timeoutMs),
  };
}

/**
 * The declared stop, then pg_controldata, in ONE command: every round trip
 * between the stop and the promotion lengthens the clients' outage.
 */
async function stopCleanly(ctx: DbContext, node: string): Promise<ControlData> {
  const db = ctx.pair.spec.database;
  const r = await ctx.shell.exec(
    node,
    [
      'sh',
      '-c',
      `${db.stop}\necho ${CONTROL_MARKER}\nexec "$@"`,
      'sh',
      ...asOsUser(ctx.pair),
      `${db.binDir}/${ctx.flavour.controldata}`,
      '-D',
      db.dataDir,
    ],
    { timeoutMs: 90_000 },
  );
  const at = r.stdout.indexOf(CONTROL_MARKER);
  try {
    return parseControlData(r.stdout.slice(at + CONTROL_MARKER.length));
  } catch (err) {
    throw new DriverError(`reading pg_controldata after the stop: ${(err as Error).message}`, {
      kind: 'terminal',
      node,
    });
  }
}

/**
 * The walreceiver may still be writing the last record it got: the check
 * waits on the standby itself (one round trip), or polls from here.
 */
async function waitReceivedPast(
  ctx: DbContext,
  clock: DriverClock,
  node: string,
  lsn: Lsn,
  timeoutMs: number,
): Promise<string | null> {
  const waitSql = ctx.flavour.receivedPastSql(formatLsn(lsn), timeoutMs / 1000);
  if (waitSql) {
    try {
      await querySql(ctx.shell, ctx.pair, ctx.flavour, node, waitSql);
      return null;
    } catch (err) {
      if (!(err instanceof DriverError)) throw err;
      return err.message;
    }
  }
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    const last = await observeDb(ctx, node);
    if (last.running && last.receiveLsn !== null && last.receiveLsn > lsn) return null;
    if (clock.now() >= deadline) return last.running ? describeLag(last, lsn) : 'it is not running';
    await clock.sleep(20);
  }
}

async function promote(ctx: DbContext, node: string): Promise<void> {
  const db = ctx.pair.spec.database;
  const f = ctx.flavour;
  if (f.promoteSql) {
    await querySql(ctx.shell, ctx.pair, f, node, f.promoteSql, { timeoutMs: 70_000 });
  } else {
    await ctx.shell.exec(
      node,
      [...asOsUser(ctx.pair), `${db.binDir}/${f.ctl}`, ...f.promoteArgs(db.dataDir, 60)],
      { timeoutMs: 70_000 },
    );
  }
}

async function rejoinAsStandby(
  ctx: DbContext,
  node: string,
  primaryNode: string,
  conninfoTemplate: string,
): Promise<void> {
  const { pair, flavour, shell } = ctx;
  const db = pair.spec.database;
  if (flavour.standbyMode !== 'standby.signal') {
    throw new DriverError(
      `rejoining the old primary is not implemented for ${flavour.engine} (it needs gs_ctl start -M standby and ${flavour.conninfoParameter}); see docs/drivers.md`,
      { kind: 'terminal', node },
    );
  }
  const before = await observeDb(ctx, node);
  if (before.running) {
    // A standby following the wrong primary, or a primary that must not be.
    if (!before.inRecovery)
      throw new DriverError('is running as a primary; refusing to demote it', {
        kind: 'terminal',
        node,
      });
    await shell.exec(node, ['sh', '-c', db.stop], { timeoutMs: 90_000 });
  }
  const control = await controlData(ctx, node);
  const primary = await observeDb(ctx, primaryNode);
  if (!primary.running || primary.inRecovery)
    throw new DriverError('is not a running primary to follow', {
      kind: 'terminal',
      node: primaryNode,
    });
  if (control.state === 'shut down') {
    // It was a primary: it may follow only if it wrote nothing past the branch point.
    const branch = await branchOf(ctx, primaryNode);
    if (
      !branch ||
      control.timeline !== branch.parent ||
      control.checkpointLsn >= branch.switchpoint
    ) {
      throw new DriverError(
        `cannot rejoin without pg_rewind: its last record ${formatLsn(control.checkpointLsn)} on timeline ${control.timeline} is not before ${primaryNode}'s branch point (${branch ? `${formatLsn(branch.switchpoint)} from timeline ${branch.parent}` : 'none: it never branched'})`,
        { kind: 'terminal', node },
      );
    }
  } else if (control.state !== 'shut down in recovery') {
    throw new DriverError(
      `is "${control.state}", not cleanly stopped; cannot rejoin without pg_rewind`,
      { kind: 'terminal', node },
    );
  }
  const toNode = pair.spec.nodes.find((n) => n.name === primaryNode)!;
  const fromNode = pair.spec.nodes.find((n) => n.name === node)!;
  const template =
    conninfoTemplate || primary.primaryConninfo || `user=${db.replicationUser} port=${db.port}`;
  const conninfo = followConninfo(template, toNode.address, fromNode.hostname ?? fromNode.name);
  const autoConf = `${db.dataDir}/postgresql.auto.conf`;
  const current = (
    await shell.exec(node, ['sh', '-c', 'cat "$1" 2>/dev/null || true', 'sh', autoConf])
  ).stdout;
  const next = setConfValue(current, flavour.conninfoParameter, conninfo);
  if (confValue(current, flavour.conninfoParameter) !== conninfo) {
    await shell.exec(
      node,
      [
        ...asOsUser(pair),
        'sh',
        '-c',
        'set -e; t="$1.pairshift-tmp"; umask 077; cat > "$t"; mv -f "$t" "$1"',
        'sh',
        autoConf,
      ],
      { stdin: next },
    );
  }
  await shell.exec(node, [...asOsUser(pair), 'touch', `${db.dataDir}/standby.signal`]);
  await shell.exec(node, ['sh', '-c', db.start], { timeoutMs: 90_000 });
}

/**
 * Where the primary's current timeline branched off: the newest timeline
 * history file in its pg_wal (null if it never branched). Newlines are
 * translated in SQL so the file comes back as one field.
 */
async function branchOf(ctx: DbContext, primary: string) {
  const [row] = await querySql(
    ctx.shell,
    ctx.pair,
    ctx.flavour,
    primary,
    "SELECT translate(pg_read_file('pg_wal/' || name), E'\\n', '|') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history$' ORDER BY name DESC LIMIT 1",
  );
  if (!row?.[0]) return null;
  return parseTimelineHistory(row[0].replace(/\|/g, '\n'));
}

async function waitStreaming(
  ctx: DbContext,
  clock: DriverClock,
  node: string,
  primary: string,
  primaryAddress: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = clock.now() + timeoutMs;
  let last: DbState | undefined;
  for (;;) {
    last = await observeDb(ctx, node).catch(() => undefined);
    if (
      last?.running &&
      last.inRecovery &&
      last.receiverStatus === 'streaming' &&
      last.senderHost === primaryAddress
    )
      return;
    if (clock.now() >= deadline) break;
    await clock.sleep(100);
  }
  const seen = !last
    ? 'could not be observed'
    : !last.running
      ? 'is not running'
      : `in recovery ${last.inRecovery}, WAL receiver ${last.receiverStatus ?? 'not running'} from ${last.senderHost ?? 'nobody'}`;
  throw new DriverError(`does not stream from ${primary} (${primaryAddress}): ${seen}`, {
    kind: 'terminal',
    node,
  });
}

function parseLsnCell(v: string | null | undefined): Lsn {
  try {
    return parseLsn(v ?? '');
  } catch (err) {
    throw new DriverError(`the primary reported no WAL position: ${(err as Error).message}`, {
      kind: 'terminal',
    });
  }
}
