// The controlled switchover (task list 2.6.3, design step VIP_SWITCH): move
// the database primary AND the VIP to `to` together, losing no acknowledged
// write, and leave the old primary streaming from the new one without
// pg_rewind. Steps (planned from observation by switchover-plan.ts, so a
// re-run finishes the job):
//
//  1. check-standby-caught-up: the standby replays the primary's current LSN
//     within a timeout, and keepalived on `to` can take the VIP. A lagging
//     standby or a stopped keepalived refuses the switchover here, before
//     anything changed.
//  2. clear-synchronous-standby-names on `to` (if set): after promotion its
//     commits would otherwise wait for a synchronous standby that is the
//     stopped old primary.
//  3. checkpoint on the old primary, so that the shutdown checkpoint in the
//     next step has little to write and the stop is short.
//  4. stop-old-primary (fast, clean): every session is ended, every WAL
//     record, the shutdown checkpoint last, is sent to the connected standby.
//     From here clients' writes fail: the outage starts.
//  5. check-final-lsn-received: pg_controldata of the old primary names its
//     last record (the shutdown checkpoint); the standby must have received
//     past it. If not, the old primary is started again (it is still the
//     primary, the VIP never moved) and the switchover is refused: promoting
//     would lose acknowledged writes.
//  6. promote `to` (polled on the server every 10 ms), then 7. move-vip to
//     `to` by a FAULT handoff (keepalived driver), only once `to` accepts
//     writes. The outage ends here.
//  8. rejoin-old-primary: standby.signal and primary_conninfo pointing at
//     `to`, then start. Its last record is before the new timeline's
//     branch point (checked from the timeline history), so no pg_rewind.
//  9. verify-streaming: the old primary's WAL receiver streams from `to`.
import { DriverError } from '../errors.js';
import type { KeepalivedDriver } from '../keepalived/driver.js';
import type { VipObservation } from '../keepalived/vip-plan.js';
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
import {
  planSwitchover,
  type SwitchoverObservation,
  SwitchoverRefused,
  type SwitchoverStep,
} from './switchover-plan.js';

export interface SwitchoverOptions {
  readonly dryRun?: boolean;
  /** Written into the vip_switch_record rows. */
  readonly upgradeId?: string;
  /** How long the standby may take to replay the primary's LSN before we refuse (default 30 s). */
  readonly catchUpTimeoutMs?: number;
  /** How long the standby may take to receive the old primary's last record (default 5 s). */
  readonly finalLsnTimeoutMs?: number;
  /** VIP budget per attempt and retries (defaults 30 s, 2: the settings of task list 1.2). */
  readonly vipTimeoutMs?: number;
  readonly vipRetries?: number;
  /** How long the rejoined old primary may take to stream again (default 30 s). */
  readonly streamingTimeoutMs?: number;
}

export interface SwitchoverResult {
  readonly outcome: 'unchanged' | 'changed';
  readonly from: string;
  readonly to: string;
  readonly steps: readonly SwitchoverStep[];
  /** ms each step took. */
  readonly timings: Partial<Record<SwitchoverStep, number>>;
  /** From issuing the stop of the old primary until `to` was promoted and the VIP answered from it. */
  readonly writeOutageMs: number | null;
  /** The VIP move alone, as the keepalived driver measured it. */
  readonly vipSwitchMs: number | null;
}

const CONTROL_MARKER = '@@pairshift-controldata@@';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function observeSwitchover(
  ctx: DbContext,
  keepalived: KeepalivedDriver,
  to: string,
): Promise<SwitchoverObservation> {
  const toNode = ctx.pair.spec.nodes.find((n) => n.name === to);
  const fromNode = ctx.pair.spec.nodes.find((n) => n.name !== to);
  if (!toNode || !fromNode)
    throw new DriverError(`no node "${to}" in pair ${ctx.pair.metadata.name}`, {
      kind: 'terminal',
    });
  const [from, target, vip] = await Promise.all([
    observeDb(ctx, fromNode.name),
    observeDb(ctx, to),
    keepalived.outsideHolder(),
  ]);
  return {
    from,
    to: target,
    vipHolder: vip.kind === 'node' ? vip.node : null,
    toAddress: toNode.address,
  };
}

export async function switchover(
  ctx: DbContext,
  keepalived: KeepalivedDriver,
  to: string,
  opts: SwitchoverOptions = {},
): Promise<SwitchoverResult> {
  const doing = `switching the database primary and the VIP over to ${to}`;
  const fail = (err: unknown): never => {
    if (err instanceof DriverError) throw err.within(doing);
    if (err instanceof SwitchoverRefused)
      throw new DriverError(err.message, { kind: 'terminal', node: to }, [doing]);
    throw err;
  };
  const observed = await observeSwitchover(ctx, keepalived, to).catch(fail);
  const from = observed.from.node;
  let steps: SwitchoverStep[];
  try {
    steps = planSwitchover(observed);
  } catch (err) {
    return fail(err);
  }
  const base = { from, to, steps, timings: {}, writeOutageMs: null, vipSwitchMs: null };
  if (steps.length === 0) return { ...base, outcome: 'unchanged' };
  if (opts.dryRun) return { ...base, outcome: 'changed' };
  ctx.log(`switchover ${from} -> ${to}: ${steps.join(', ')}`);
  try {
    return await new Run(ctx, keepalived, observed, opts).execute(steps);
  } catch (err) {
    return fail(err);
  }
}

class Run {
  readonly timings: Partial<Record<SwitchoverStep, number>> = {};
  readonly from: string;
  readonly to: string;
  #stopIssuedAt: number | null = null;
  #vipSwitchMs: number | null = null;
  #outageEndAt: number | null = null;
  /** pg_control of the old primary, read in the same command that stopped it. */
  #finalControl: ControlData | null = null;
  /** keepalived as observed before the database was stopped (off the outage path). */
  #vipObserved: VipObservation | undefined;
  /** What the standby had received when its receiver stopped streaming (watched during the stop). */
  #receivedAtEnd: Promise<Lsn | null> | undefined;
  /** The target's conninfo before promotion: the template for the old primary's. */
  readonly #conninfoTemplate: string;

  constructor(
    readonly ctx: DbContext,
    readonly keepalived: KeepalivedDriver,
    readonly observed: SwitchoverObservation,
    readonly opts: SwitchoverOptions,
  ) {
    this.from = observed.from.node;
    this.to = observed.to.node;
    this.#conninfoTemplate = observed.to.running ? observed.to.primaryConninfo : '';
  }

  sql(node: string, sql: string) {
    return querySql(this.ctx.shell, this.ctx.pair, this.ctx.flavour, node, sql);
  }

  async #timed<T>(step: SwitchoverStep, fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    this.ctx.log(`switchover: ${step}`);
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DriverError) throw err.within(step.replace(/-/g, ' '));
      throw err;
    } finally {
      this.timings[step] = Math.round(performance.now() - t);
    }
  }

  async execute(steps: readonly SwitchoverStep[]): Promise<SwitchoverResult> {
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step === 'promote' && steps[i + 1] === 'move-vip') {
        await this.#promoteAndMoveVip();
        i++;
        continue;
      }
      await this.#timed(step, () => this.#step(step));
    }
    return {
      outcome: 'changed',
      from: this.from,
      to: this.to,
      steps,
      timings: this.timings,
      writeOutageMs:
        this.#stopIssuedAt !== null && this.#outageEndAt !== null
          ? Math.round(this.#outageEndAt - this.#stopIssuedAt)
          : null,
      vipSwitchMs: this.#vipSwitchMs === null ? null : Math.round(this.#vipSwitchMs),
    };
  }

  async #step(step: SwitchoverStep): Promise<void> {
    switch (step) {
      case 'check-standby-caught-up': {
        // keepalived on `to` must be able to take the VIP: the dry run refuses otherwise.
        this.#vipObserved = await this.keepalived.observe();
        await this.keepalived.ensureVipOn(this.to, { dryRun: true, observed: this.#vipObserved });
        const [row] = await this.sql(this.from, `SELECT ${this.ctx.flavour.sql.currentLsn}::text`);
        const lsn = parseLsnCell(row?.[0]);
        await waitForReplay(this.ctx, this.to, lsn, this.opts.catchUpTimeoutMs ?? 30_000);
        return;
      }
      case 'clear-synchronous-standby-names':
        await this.sql(this.to, "ALTER SYSTEM SET synchronous_standby_names = ''");
        await this.sql(this.to, 'SELECT pg_reload_conf()');
        return;
      case 'checkpoint':
        await this.sql(this.from, 'CHECKPOINT');
        return;
      case 'stop-old-primary': {
        // Watch the standby's receiver while the primary stops, so the final
        // LSN check costs no round trip after the stop.
        const watchSql = this.ctx.flavour.receiverEndSql(30);
        if (watchSql) {
          const watching = this.sql(this.to, watchSql).then(
            (rows) => {
              try {
                return parseLsnOrNull(rows.at(-1)?.[0] ?? null);
              } catch {
                return null; // the slow path below decides
              }
            },
            () => null,
          );
          this.#receivedAtEnd = watching;
        }
        await this.#stopOldPrimary();
        return;
      }
      case 'check-final-lsn-received':
        await this.#checkFinalLsn();
        return;
      case 'promote':
        await this.#promote();
        await this.#checkPromoted();
        return;
      case 'move-vip':
        await this.#moveVip();
        return;
      case 'rejoin-old-primary':
        await this.#rejoin();
        return;
      case 'verify-streaming':
        await this.#verifyStreaming();
        return;
    }
  }

  /**
   * The declared stop, then pg_controldata, in ONE command: every round trip
   * between the stop and the promotion lengthens the clients' outage.
   */
  async #stopOldPrimary(): Promise<void> {
    const db = this.ctx.pair.spec.database;
    this.#stopIssuedAt = performance.now();
    const r = await this.ctx.shell.exec(
      this.from,
      [
        'sh',
        '-c',
        `${db.stop}\necho ${CONTROL_MARKER}\nexec "$@"`,
        'sh',
        ...asOsUser(this.ctx.pair),
        `${db.binDir}/${this.ctx.flavour.controldata}`,
        '-D',
        db.dataDir,
      ],
      { timeoutMs: 90_000 },
    );
    const at = r.stdout.indexOf(CONTROL_MARKER);
    try {
      this.#finalControl = parseControlData(r.stdout.slice(at + CONTROL_MARKER.length));
    } catch (err) {
      throw new DriverError(`reading pg_controldata after the stop: ${(err as Error).message}`, {
        kind: 'terminal',
        node: this.from,
      });
    }
  }

  async #checkFinalLsn(): Promise<void> {
    const control = this.#finalControl ?? (await controlData(this.ctx, this.from));
    if (control.state !== 'shut down') {
      throw new DriverError(
        `the old primary is "${control.state}", not cleanly shut down; not promoting`,
        { kind: 'terminal', node: this.from },
      );
    }
    const atEnd = await this.#receivedAtEnd;
    if (atEnd !== null && atEnd !== undefined && atEnd > control.checkpointLsn) return;
    const seconds = (this.opts.finalLsnTimeoutMs ?? 5000) / 1000;
    // The walreceiver may still be writing the last record it got: the check
    // waits on the standby itself (one round trip), or polls from here.
    const waitSql = this.ctx.flavour.receivedPastSql(formatLsn(control.checkpointLsn), seconds);
    let missing: string | null = null;
    if (waitSql) {
      try {
        await this.sql(this.to, waitSql);
      } catch (err) {
        if (!(err instanceof DriverError)) throw err;
        missing = err.message;
      }
    } else {
      const deadline = performance.now() + seconds * 1000;
      let last: DbState | undefined;
      for (;;) {
        last = await observeDb(this.ctx, this.to);
        if (last.running && last.receiveLsn !== null && last.receiveLsn > control.checkpointLsn)
          break;
        if (performance.now() >= deadline) {
          missing = last.running ? describeLag(last, control.checkpointLsn) : 'it is not running';
          break;
        }
        await sleep(20);
      }
    }
    if (missing === null) return;
    // Leave the pair serving: the old primary is still the primary; start it again.
    this.ctx.log(`switchover: ${this.to} lacks the final WAL; restarting ${this.from} as primary`);
    await this.ctx.shell.exec(this.from, ['sh', '-c', this.ctx.pair.spec.database.start], {
      timeoutMs: 90_000,
    });
    throw new DriverError(
      `${this.to} did not receive the old primary's final record (shutdown checkpoint at ${formatLsn(control.checkpointLsn)}) within ${seconds} s: ${missing}. ${this.from} was started again as the primary and the VIP stays on it; nothing was promoted`,
      { kind: 'terminal', node: this.to },
    );
  }

  async #promote(): Promise<void> {
    const db = this.ctx.pair.spec.database;
    const f = this.ctx.flavour;
    if (f.promoteSql) {
      await querySql(this.ctx.shell, this.ctx.pair, f, this.to, f.promoteSql, {
        timeoutMs: 70_000,
      });
    } else {
      await this.ctx.shell.exec(
        this.to,
        [...asOsUser(this.ctx.pair), `${db.binDir}/${f.ctl}`, ...f.promoteArgs(db.dataDir, 60)],
        { timeoutMs: 70_000 },
      );
    }
  }

  async #checkPromoted(): Promise<void> {
    const s = await observeDb(this.ctx, this.to);
    if (!s.running || s.inRecovery)
      throw new DriverError('still in recovery after promotion', {
        kind: 'terminal',
        node: this.to,
      });
  }

  async #moveVip(): Promise<void> {
    const r = await this.keepalived.ensureVipOn(this.to, {
      upgradeId: this.opts.upgradeId,
      timeoutMs: this.opts.vipTimeoutMs,
      retries: this.opts.vipRetries,
      observed: this.#vipObserved,
    });
    this.#vipSwitchMs = r.switchMs;
  }

  /**
   * Promotion, then the VIP move: both are on the clients' outage path. The
   * VIP moves only once `to` accepts writes: a client that reaches a standby
   * through the VIP may remember it as read-only (pgjdbc with
   * targetServerType=primary skips such a host for hostRecheckSeconds, 10 s
   * by default), which costs far more than the ~0.1 s saved by overlapping.
   * If promotion fails and `to` is still a standby, the old primary, stopped
   * cleanly and complete, is started again; the VIP never left it.
   */
  async #promoteAndMoveVip(): Promise<void> {
    const t = performance.now();
    try {
      await this.#timed('promote', () => this.#promote());
    } catch (err) {
      const s = await observeDb(this.ctx, this.to).catch(() => undefined);
      if (s?.running && s.inRecovery) {
        this.ctx.log(`switchover: promotion failed; starting ${this.from} again as the primary`);
        await this.ctx.shell.exec(this.from, ['sh', '-c', this.ctx.pair.spec.database.start], {
          timeoutMs: 90_000,
        });
        throw err instanceof DriverError
          ? err.within(`${this.from} was started again as the primary and keeps the VIP`)
          : err;
      }
      throw err;
    }
    const promotedAt = performance.now();
    let vipAt = promotedAt;
    await this.#timed('move-vip', async () => {
      const vipStart = performance.now();
      try {
        await this.#moveVip();
      } catch (err) {
        throw err instanceof DriverError
          ? err.within(`${this.to} is the new primary but the VIP did not move to it`)
          : err;
      }
      // The VIP answered from `to` at vipStart + switchMs; the rest was verification.
      vipAt = vipStart + (this.#vipSwitchMs ?? performance.now() - vipStart);
    });
    this.#outageEndAt = Math.max(promotedAt, vipAt);
    await this.#checkPromoted();
    this.ctx.log(`switchover: promoted and VIP moved in ${Math.round(performance.now() - t)} ms`);
  }

  async #rejoin(): Promise<void> {
    const { pair, flavour, shell } = this.ctx;
    const db = pair.spec.database;
    if (flavour.standbyMode !== 'standby.signal') {
      throw new DriverError(
        `rejoining the old primary is not implemented for ${flavour.engine} (it needs gs_ctl start -M standby and ${flavour.conninfoParameter}); see docs/drivers.md`,
        { kind: 'terminal', node: this.from },
      );
    }
    const before = await observeDb(this.ctx, this.from);
    if (before.running) {
      // A standby following the wrong primary, or a primary that must not be.
      if (!before.inRecovery)
        throw new DriverError('is running as a primary; refusing to demote it', {
          kind: 'terminal',
          node: this.from,
        });
      await shell.exec(this.from, ['sh', '-c', db.stop], { timeoutMs: 90_000 });
    }
    const control = await controlData(this.ctx, this.from);
    const primary = await observeDb(this.ctx, this.to);
    if (!primary.running || primary.inRecovery)
      throw new DriverError('is not a running primary to follow', {
        kind: 'terminal',
        node: this.to,
      });
    if (control.state === 'shut down') {
      // It was a primary: it may follow only if it wrote nothing past the branch point.
      const branch = await this.#branchOf();
      if (
        !branch ||
        control.timeline !== branch.parent ||
        control.checkpointLsn >= branch.switchpoint
      ) {
        throw new DriverError(
          `cannot rejoin without pg_rewind: its last record ${formatLsn(control.checkpointLsn)} on timeline ${control.timeline} is not before ${this.to}'s branch point (${branch ? `${formatLsn(branch.switchpoint)} from timeline ${branch.parent}` : 'none: it never branched'})`,
          { kind: 'terminal', node: this.from },
        );
      }
    } else if (control.state !== 'shut down in recovery') {
      throw new DriverError(
        `is "${control.state}", not cleanly stopped; cannot rejoin without pg_rewind`,
        {
          kind: 'terminal',
          node: this.from,
        },
      );
    }
    const toNode = pair.spec.nodes.find((n) => n.name === this.to)!;
    const fromNode = pair.spec.nodes.find((n) => n.name === this.from)!;
    const template =
      this.#conninfoTemplate ||
      primary.primaryConninfo ||
      `user=${db.replicationUser} port=${db.port}`;
    const conninfo = followConninfo(template, toNode.address, fromNode.hostname ?? fromNode.name);
    const autoConf = `${db.dataDir}/postgresql.auto.conf`;
    const current = (
      await shell.exec(this.from, ['sh', '-c', 'cat "$1" 2>/dev/null || true', 'sh', autoConf])
    ).stdout;
    const next = setConfValue(current, flavour.conninfoParameter, conninfo);
    if (confValue(current, flavour.conninfoParameter) !== conninfo) {
      await shell.exec(
        this.from,
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
    await shell.exec(this.from, [...asOsUser(pair), 'touch', `${db.dataDir}/standby.signal`]);
    await shell.exec(this.from, ['sh', '-c', db.start], { timeoutMs: 90_000 });
  }

  /** Where the new primary's timeline branched off (null on timeline 1: it never branched). */
  /**
   * Where the new primary's current timeline branched off: the newest
   * timeline history file in its pg_wal (null if it never branched).
   * Newlines are translated in SQL so the file comes back as one field.
   */
  async #branchOf() {
    const [row] = await this.sql(
      this.to,
      "SELECT translate(pg_read_file('pg_wal/' || name), E'\\n', '|') FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{8}[.]history$' ORDER BY name DESC LIMIT 1",
    );
    if (!row?.[0]) return null;
    return parseTimelineHistory(row[0].replace(/\|/g, '\n'));
  }

  async #verifyStreaming(): Promise<void> {
    const toAddress = this.observed.toAddress;
    const deadline = performance.now() + (this.opts.streamingTimeoutMs ?? 30_000);
    let last: DbState | undefined;
    for (;;) {
      last = await observeDb(this.ctx, this.from).catch(() => undefined);
      if (
        last?.running &&
        last.inRecovery &&
        last.receiverStatus === 'streaming' &&
        last.senderHost === toAddress
      )
        return;
      if (performance.now() >= deadline) break;
      await sleep(100);
    }
    const seen = !last
      ? 'could not be observed'
      : !last.running
        ? 'is not running'
        : `in recovery ${last.inRecovery}, WAL receiver ${last.receiverStatus ?? 'not running'} from ${last.senderHost ?? 'nobody'}`;
    throw new DriverError(`does not stream from ${this.to} (${toAddress}): ${seen}`, {
      kind: 'terminal',
      node: this.from,
    });
  }
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
