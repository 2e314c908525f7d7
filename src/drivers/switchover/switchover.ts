// The controlled switchover (task list 2.6.3, design step VIP_SWITCH): move
// the database primary AND the VIP to `to` together, losing no acknowledged
// write, and leave the old primary streaming from the new one without
// pg_rewind. This file is the choreography only: the database operations are
// the database driver's (database/roles.ts), the VIP move is the keepalived
// driver's; here is the order they run in and what is undone when one fails.
// Steps (planned from observation by plan.ts, so a re-run finishes the job):
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
import { type DriverClock, realClock } from '../clock.js';
import { formatLsn, type Lsn } from '../database/lsn.js';
import type { DbContext } from '../database/observe.js';
import { type SwitchoverDatabase, switchoverDatabase } from '../database/roles.js';
import type { ControlData } from '../database/server-files.js';
import { DriverError } from '../errors.js';
import type { KeepalivedDriver } from '../keepalived/driver.js';
import type { VipObservation } from '../keepalived/vip-plan.js';
import {
  planSwitchover,
  type SwitchoverObservation,
  SwitchoverRefused,
  type SwitchoverStep,
} from './plan.js';

/** What the choreography asks of the keepalived driver (KeepalivedDriver implements it). */
export type SwitchoverVip = Pick<KeepalivedDriver, 'observe' | 'outsideHolder' | 'ensureVipOn'>;

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

/** The two drivers the choreography moves, and its clock and log. */
export interface SwitchoverParts {
  readonly db: SwitchoverDatabase;
  readonly vip: SwitchoverVip;
  /** The pair's nodes and their addresses (the old primary must follow `to`'s). */
  readonly nodes: readonly { readonly name: string; readonly address: string }[];
  readonly clock?: DriverClock;
  readonly log?: (line: string) => void;
}

/** The switchover on real nodes: the database driver over ctx, and the keepalived driver given. */
export function switchover(
  ctx: DbContext,
  keepalived: SwitchoverVip,
  to: string,
  opts: SwitchoverOptions = {},
): Promise<SwitchoverResult> {
  return runSwitchover(
    {
      db: switchoverDatabase(ctx),
      vip: keepalived,
      nodes: ctx.pair.spec.nodes,
      log: ctx.log,
      ...(ctx.clock ? { clock: ctx.clock } : {}),
    },
    to,
    opts,
  );
}

export async function observeSwitchover(
  parts: SwitchoverParts,
  to: string,
): Promise<SwitchoverObservation> {
  const toNode = parts.nodes.find((n) => n.name === to);
  const fromNode = parts.nodes.find((n) => n.name !== to);
  if (!toNode || !fromNode)
    throw new DriverError(`no node "${to}" in the pair`, { kind: 'terminal' });
  const [from, target, vip] = await Promise.all([
    parts.db.observe(fromNode.name),
    parts.db.observe(to),
    parts.vip.outsideHolder(),
  ]);
  return {
    from,
    to: target,
    vipHolder: vip.kind === 'node' ? vip.node : null,
    toAddress: toNode.address,
  };
}

/** Observe, plan what is left, run it. */
export async function runSwitchover(
  parts: SwitchoverParts,
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
  const observed = await observeSwitchover(parts, to).catch(fail);
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
  parts.log?.(`switchover ${from} -> ${to}: ${steps.join(', ')}`);
  try {
    return await new Choreography(parts, observed, opts).run(steps);
  } catch (err) {
    return fail(err);
  }
}

/** One run of the planned steps; holds what one step learns for a later one. */
class Choreography {
  readonly timings: Partial<Record<SwitchoverStep, number>> = {};
  readonly from: string;
  readonly to: string;
  readonly #db: SwitchoverDatabase;
  readonly #vip: SwitchoverVip;
  readonly #clock: DriverClock;
  readonly #log: (line: string) => void;
  #stopIssuedAt: number | null = null;
  #vipSwitchMs: number | null = null;
  #outageEndAt: number | null = null;
  /** pg_control of the old primary, read in the same command that stopped it. */
  #finalControl: ControlData | null = null;
  /** keepalived as observed before the database was stopped (off the outage path). */
  #vipObserved: VipObservation | undefined;
  /** What the standby had received when its receiver stopped streaming (watched during the stop). */
  #receivedAtEnd: Promise<Lsn | null> | null = null;
  /** The target's conninfo before promotion: the template for the old primary's. */
  readonly #conninfoTemplate: string;

  constructor(
    parts: SwitchoverParts,
    readonly observed: SwitchoverObservation,
    readonly opts: SwitchoverOptions,
  ) {
    this.#db = parts.db;
    this.#vip = parts.vip;
    this.#clock = parts.clock ?? realClock;
    this.#log = parts.log ?? (() => {});
    this.from = observed.from.node;
    this.to = observed.to.node;
    this.#conninfoTemplate = observed.to.running ? observed.to.primaryConninfo : '';
  }

  async run(steps: readonly SwitchoverStep[]): Promise<SwitchoverResult> {
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

  async #timed<T>(step: SwitchoverStep, fn: () => Promise<T>): Promise<T> {
    const t = this.#clock.now();
    this.#log(`switchover: ${step}`);
    try {
      return await fn();
    } catch (err) {
      if (err instanceof DriverError) throw err.within(step.replace(/-/g, ' '));
      throw err;
    } finally {
      this.timings[step] = Math.round(this.#clock.now() - t);
    }
  }

  #step(step: SwitchoverStep): Promise<void> {
    switch (step) {
      case 'check-standby-caught-up':
        return this.#checkCaughtUp();
      case 'clear-synchronous-standby-names':
        return this.#db.clearSynchronousStandbyNames(this.to);
      case 'checkpoint':
        return this.#db.checkpoint(this.from);
      case 'stop-old-primary':
        return this.#stopOldPrimary();
      case 'check-final-lsn-received':
        return this.#checkFinalLsn();
      case 'promote':
        return this.#promoteChecked();
      case 'move-vip':
        return this.#moveVip();
      case 'rejoin-old-primary':
        return this.#db.rejoinAsStandby(this.from, this.to, this.#conninfoTemplate);
      case 'verify-streaming':
        return this.#db.waitStreaming(
          this.from,
          this.to,
          this.observed.toAddress,
          this.opts.streamingTimeoutMs ?? 30_000,
        );
    }
  }

  async #checkCaughtUp(): Promise<void> {
    // keepalived on `to` must be able to take the VIP: the dry run refuses otherwise.
    this.#vipObserved = await this.#vip.observe();
    await this.#vip.ensureVipOn(this.to, { dryRun: true, observed: this.#vipObserved });
    const lsn = await this.#db.currentLsn(this.from);
    await this.#db.waitForReplay(this.to, lsn, this.opts.catchUpTimeoutMs ?? 30_000);
  }

  /**
   * The standby's receiver is watched while the primary stops, so the final
   * LSN check costs no round trip after the stop.
   */
  async #stopOldPrimary(): Promise<void> {
    this.#receivedAtEnd = this.#db.watchReceiverEnd(this.to);
    this.#stopIssuedAt = this.#clock.now();
    this.#finalControl = await this.#db.stopCleanly(this.from);
  }

  async #checkFinalLsn(): Promise<void> {
    const control = this.#finalControl ?? (await this.#db.controlData(this.from));
    if (control.state !== 'shut down') {
      throw new DriverError(
        `the old primary is "${control.state}", not cleanly shut down; not promoting`,
        { kind: 'terminal', node: this.from },
      );
    }
    const atEnd = await this.#receivedAtEnd;
    if (atEnd !== null && atEnd !== undefined && atEnd > control.checkpointLsn) return;
    const timeoutMs = this.opts.finalLsnTimeoutMs ?? 5000;
    const missing = await this.#db.waitReceivedPast(this.to, control.checkpointLsn, timeoutMs);
    if (missing === null) return;
    // Leave the pair serving: the old primary is still the primary; start it again.
    this.#log(`switchover: ${this.to} lacks the final WAL; restarting ${this.from} as primary`);
    await this.#db.start(this.from);
    throw new DriverError(
      `${this.to} did not receive the old primary's final record (shutdown checkpoint at ${formatLsn(control.checkpointLsn)}) within ${timeoutMs / 1000} s: ${missing}. ${this.from} was started again as the primary and the VIP stays on it; nothing was promoted`,
      { kind: 'terminal', node: this.to },
    );
  }

  async #promoteChecked(): Promise<void> {
    await this.#db.promote(this.to);
    await this.#checkPromoted();
  }

  async #checkPromoted(): Promise<void> {
    const s = await this.#db.observe(this.to);
    if (!s.running || s.inRecovery)
      throw new DriverError('still in recovery after promotion', {
        kind: 'terminal',
        node: this.to,
      });
  }

  async #moveVip(): Promise<void> {
    const r = await this.#vip.ensureVipOn(this.to, {
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
    const t = this.#clock.now();
    try {
      await this.#timed('promote', () => this.#db.promote(this.to));
    } catch (err) {
      const s = await this.#db.observe(this.to).catch(() => undefined);
      if (s?.running && s.inRecovery) {
        this.#log(`switchover: promotion failed; starting ${this.from} again as the primary`);
        await this.#db.start(this.from);
        throw err instanceof DriverError
          ? err.within(`${this.from} was started again as the primary and keeps the VIP`)
          : err;
      }
      throw err;
    }
    const promotedAt = this.#clock.now();
    let vipAt = promotedAt;
    await this.#timed('move-vip', async () => {
      const vipStart = this.#clock.now();
      try {
        await this.#moveVip();
      } catch (err) {
        throw err instanceof DriverError
          ? err.within(`${this.to} is the new primary but the VIP did not move to it`)
          : err;
      }
      // The VIP answered from `to` at vipStart + switchMs; the rest was verification.
      vipAt = vipStart + (this.#vipSwitchMs ?? this.#clock.now() - vipStart);
    });
    this.#outageEndAt = Math.max(promotedAt, vipAt);
    await this.#checkPromoted();
    this.#log(`switchover: promoted and VIP moved in ${Math.round(this.#clock.now() - t)} ms`);
  }
}
