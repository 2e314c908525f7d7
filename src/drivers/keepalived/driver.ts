// The keepalived driver (task list 2.4): read each node's keepalived.conf over
// SSH, change a priority (write if changed, reload at most once), and move the
// VIP to a node, verified from outside both nodes. Ensure-style: observe,
// compare, act only if different, observe again; each action reports
// unchanged | changed and honours dryRun. The planning is pure (vip-plan.ts).
import type { HAPair } from '../../inventory/hapair.js';
import { clockFrom, type DriverClock } from '../clock.js';
import { DriverError, whileDoing } from '../errors.js';
import type { RecordSink, VipSwitchResult } from '../records.js';
import type { NodeShell } from '../ssh/pool.js';
import { KeepalivedConfigError, readInstance, setPriority } from './config.js';
import { type OutsideAnswer, type VipNodeKey, whoAnswersOnVip } from './vip-observer.js';
import {
  describeStep,
  type KeepalivedNodeState,
  planVipMove,
  type VipMoveMethod,
  type VipObservation,
  VipPlanError,
  type VipStep,
} from './vip-plan.js';

export type Outcome = 'unchanged' | 'changed';

export interface KeepalivedDriverDeps {
  readonly shell: NodeShell;
  readonly pair: HAPair;
  readonly records?: RecordSink;
  /** Port the VIP is checked on from outside (sshd; its host key names the node). */
  readonly vipCheckPort?: number;
  readonly log?: (line: string) => void;
  /**
   * Date.now-like ms for deadlines and timings; it dates the records too
   * (default: real time, drivers/clock.ts).
   */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** One look at who answers on the VIP from outside (default: the SSH host-key look). */
  readonly lookOutside?: (timeoutMs: number) => Promise<OutsideAnswer>;
}

/** One attempt of a VIP move, as the vip_switch_record row tells it. */
interface AttemptRecord {
  readonly upgradeId: string | undefined;
  readonly from: string;
  readonly to: string;
  readonly method: VipMoveMethod;
  readonly attempt: number;
  readonly startedAt: Date;
  /** clock.now() at the start, for the duration. */
  readonly startedMs: number;
  readonly result: VipSwitchResult;
  /** The measured switch; null: the attempt's whole duration is recorded. */
  readonly switchMs: number | null;
  readonly detail: string | null;
}

export interface PriorityResult {
  readonly outcome: Outcome;
  readonly node: string;
  readonly before: number;
  readonly after: number;
}

export interface VipMoveOptions {
  readonly dryRun?: boolean;
  /** For the vip_switch_record rows (required by the store when a move happens). */
  readonly upgradeId?: string;
  /** Budget of one attempt (default 30 s, the vipSwitchTimeout setting). */
  readonly timeoutMs?: number;
  /** Further attempts after the first (default 2, the vipSwitchRetries setting). */
  readonly retries?: number;
  /** Default: 'fault' when the HAPair declares a fault file, else 'stop'. */
  readonly method?: VipMoveMethod;
  /**
   * An observation taken moments before by the caller, used instead of
   * observing again for the first attempt: the database switchover observes
   * keepalived before it stops the old primary, so that this observation is
   * not on the clients' outage path. Verification after the move still
   * observes afresh.
   */
  readonly observed?: VipObservation;
}

export interface VipMoveResult {
  readonly outcome: Outcome;
  readonly target: string;
  readonly from: string | null;
  readonly method: VipMoveMethod;
  readonly plan: readonly VipStep[];
  /** From the releasing action to the VIP answering from the target, seen from outside. */
  readonly switchMs: number | null;
  /** The whole ensure, observation and verification included. */
  readonly totalMs: number;
  readonly attempts: number;
}

const METHOD_RECORD: Record<VipMoveMethod, string> = {
  fault: 'keepalived_fault',
  stop: 'keepalived_stop',
  priority: 'keepalived_priority',
};

/** A new outside look this often while waiting for the VIP. */
const POLL_MS = 15;
const LOOK_TIMEOUT_MS = 400;
const MAX_LOOKS_IN_FLIGHT = 8;

export class KeepalivedDriver {
  readonly #shell: NodeShell;
  readonly #pair: HAPair;
  readonly #records: RecordSink | undefined;
  readonly #port: number;
  readonly #log: (line: string) => void;
  readonly #clock: DriverClock;
  readonly #lookOutside: ((timeoutMs: number) => Promise<OutsideAnswer>) | undefined;

  constructor(deps: KeepalivedDriverDeps) {
    this.#shell = deps.shell;
    this.#pair = deps.pair;
    this.#records = deps.records;
    this.#port = deps.vipCheckPort ?? 22;
    this.#log = deps.log ?? (() => {});
    this.#clock = clockFrom(deps);
    this.#lookOutside = deps.lookOutside;
  }

  get #k() {
    return this.#pair.spec.keepalived;
  }

  #nodeNames(): [string, string] {
    const [a, b] = this.#pair.spec.nodes;
    return [a!.name, b!.name];
  }

  #assertNode(node: string): void {
    if (!this.#nodeNames().includes(node))
      throw new DriverError(`no node "${node}" in pair ${this.#pair.metadata.name}`, {
        kind: 'terminal',
      });
  }

  // ---- observation -------------------------------------------------------

  async readConfig(node: string): Promise<string> {
    const r = await this.#shell.exec(node, ['cat', this.#k.configPath]);
    return r.stdout;
  }

  async #priority(node: string, conf: string): Promise<number> {
    try {
      return readInstance(conf, this.#k.instance).priority;
    } catch (err) {
      if (err instanceof KeepalivedConfigError)
        throw new DriverError(`${this.#k.configPath}: ${err.message}`, { kind: 'terminal', node });
      throw err;
    }
  }

  async #running(node: string, via: NodeShell = this.#shell): Promise<boolean> {
    const r = await via.exec(node, ['sh', '-c', this.#k.status], {
      okExitCodes: range(1, 255),
    });
    return r.exitCode === 0;
  }

  /** keepalived's status command says running; `via` as for holdsVip. */
  running(node: string, via: NodeShell = this.#shell): Promise<boolean> {
    return this.#running(node, via);
  }

  /**
   * Start keepalived on a node where it died (issue 12.3), ensure-style:
   * nothing when it runs; else the declared start, then its status until it
   * says running. It comes back with the configuration the driver left, so
   * the node with the lower priority comes back as BACKUP and the VIP stays
   * where it is; the planner's next observation checks who holds it.
   */
  async ensureRunning(
    node: string,
    opts: { readonly dryRun?: boolean; readonly timeoutMs?: number } = {},
  ): Promise<Outcome> {
    this.#assertNode(node);
    return whileDoing(
      `starting keepalived on ${node}`,
      async () => {
        if (await this.#running(node)) return 'unchanged';
        if (opts.dryRun) return 'changed';
        const timeoutMs = opts.timeoutMs ?? 10_000;
        const started = this.#clock.now();
        await this.#shell.exec(node, ['sh', '-c', this.#k.start], { timeoutMs });
        while (!(await this.#running(node))) {
          if (this.#clock.now() - started > timeoutMs)
            throw new DriverError(`keepalived is not running ${timeoutMs} ms after its start`, {
              kind: 'waiting',
              node,
            });
          await this.#clock.sleep(200);
        }
        this.#log(`${node}: keepalived started again`);
        return 'changed';
      },
      { kind: 'transient', node },
    );
  }

  async #faulted(node: string): Promise<boolean | null> {
    const file = this.#k.faultFile;
    if (!file) return null;
    // A missing file reads as "0": keepalived's init_file default.
    const r = await this.#shell.exec(node, [
      'sh',
      '-c',
      'cat "$1" 2>/dev/null || echo 0',
      'sh',
      file,
    ]);
    const v = Number.parseInt(r.stdout.trim() || '0', 10);
    return Number.isFinite(v) && v !== 0;
  }

  /**
   * Does the node's own interface carry the VIP (`ip -o addr show`)? `via`:
   * the shell to read through, for a caller that caps its commands (the
   * observer's deadline and per-node session limit).
   */
  async holdsVip(node: string, via: NodeShell = this.#shell): Promise<boolean> {
    const r = await via.exec(node, ['ip', '-o', '-4', 'addr', 'show']);
    return interfacesHold(r.stdout, this.#pair.spec.vip.address);
  }

  async #nodeState(node: string): Promise<KeepalivedNodeState> {
    return whileDoing(
      `observing keepalived on ${node}`,
      async () => {
        const [conf, running, faulted, holdsVip] = await Promise.all([
          this.readConfig(node),
          this.#running(node),
          this.#faulted(node),
          this.holdsVip(node),
        ]);
        return { node, running, holdsVip, priority: await this.#priority(node, conf), faulted };
      },
      { kind: 'transient', node },
    );
  }

  #vipKeys(): VipNodeKey[] {
    return this.#pair.spec.nodes.map((n) => ({
      node: n.name,
      fingerprints: [n.ssh.hostKey.fingerprint],
    }));
  }

  /** Who answers on the VIP from outside both nodes (one look). */
  async outsideHolder(timeoutMs = 1000): Promise<OutsideAnswer> {
    if (this.#lookOutside) return this.#lookOutside(timeoutMs);
    return whoAnswersOnVip(this.#pair.spec.vip.address, this.#port, this.#vipKeys(), timeoutMs);
  }

  async observe(): Promise<VipObservation> {
    const [a, b] = this.#nodeNames();
    const [sa, sb, outside] = await Promise.all([
      this.#nodeState(a),
      this.#nodeState(b),
      this.outsideHolder(),
    ]);
    if (outside.kind === 'foreign') {
      throw new DriverError(
        `the VIP ${this.#pair.spec.vip.address} answers with host key ${outside.fingerprint}, which belongs to neither node`,
        { kind: 'terminal' },
      );
    }
    return { nodes: [sa, sb], outsideHolder: outside.kind === 'node' ? outside.node : null };
  }

  // ---- priority ----------------------------------------------------------

  /** Set the instance's priority on a node: write if changed, reload once, read back. */
  async ensurePriority(
    node: string,
    priority: number,
    opts: { dryRun?: boolean } = {},
  ): Promise<PriorityResult> {
    this.#assertNode(node);
    return whileDoing(
      `setting keepalived priority ${priority} on ${node}`,
      async () => {
        const conf = await this.readConfig(node);
        const before = await this.#priority(node, conf);
        let next: string;
        try {
          next = setPriority(conf, this.#k.instance, priority);
        } catch (err) {
          throw new DriverError((err as Error).message, { kind: 'terminal', node });
        }
        if (next === conf) return { outcome: 'unchanged', node, before, after: before };
        if (opts.dryRun) return { outcome: 'changed', node, before, after: priority };
        await this.#writeFile(node, this.#k.configPath, next);
        // A stopped keepalived reads the file when it starts; only a running one is reloaded.
        if (await this.#running(node)) await this.#shell.exec(node, ['sh', '-c', this.#k.reload]);
        const after = await this.#priority(node, await this.readConfig(node));
        if (after !== priority) {
          throw new DriverError(`read back priority ${after}, expected ${priority}`, {
            kind: 'conflict',
            node,
          });
        }
        this.#log(`${node}: keepalived priority ${before} -> ${after}, reloaded`);
        return { outcome: 'changed', node, before, after };
      },
      { kind: 'transient', node },
    );
  }

  /** Atomic replace keeping the file's mode and owner (temp file beside it, then rename). */
  async #writeFile(node: string, path: string, content: string): Promise<void> {
    await this.#shell.exec(
      node,
      [
        'sh',
        '-c',
        'set -e; t="$1.pairshift-tmp"; cat > "$t"; chmod --reference="$1" "$t"; chown --reference="$1" "$t"; mv -f "$t" "$1"',
        'sh',
        path,
      ],
      { stdin: content },
    );
  }

  async #setFault(node: string, on: boolean): Promise<void> {
    const file = this.#k.faultFile!;
    await this.#shell.exec(node, [
      'sh',
      '-c',
      'printf "%s\\n" "$1" > "$2"',
      'sh',
      on ? '1' : '0',
      file,
    ]);
  }

  // ---- the VIP -----------------------------------------------------------

  /**
   * Make `target` hold the VIP and keep it. Observes first; does nothing when
   * the VIP already answers from target with target preferred and no node in
   * FAULT or stopped. Each attempt that moves the VIP writes a vip_switch_record.
   */
  async ensureVipOn(target: string, opts: VipMoveOptions = {}): Promise<VipMoveResult> {
    this.#assertNode(target);
    const started = this.#clock.now();
    const method: VipMoveMethod = opts.method ?? (this.#k.faultFile ? 'fault' : 'stop');
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const retries = opts.retries ?? 2;
    const doing = `moving the VIP ${this.#pair.spec.vip.address} to ${target}`;
    let attempts = 0;
    let lastError: DriverError | undefined;
    let firstPlan: VipStep[] | undefined;
    let from: string | null = null;
    while (attempts <= retries) {
      const given = attempts === 0 ? opts.observed : undefined;
      const observed =
        given ??
        (await this.observe().catch((e) => {
          throw e instanceof DriverError ? e.within(doing) : e;
        }));
      let plan: VipStep[];
      try {
        plan = planVipMove(observed, target, method);
      } catch (err) {
        if (err instanceof VipPlanError)
          throw new DriverError(err.message, { kind: err.kind, node: target }, [doing]);
        throw err;
      }
      firstPlan ??= plan;
      if (plan.length === 0) {
        return {
          outcome: attempts === 0 ? 'unchanged' : 'changed',
          target,
          from,
          method,
          plan: firstPlan,
          switchMs: null,
          totalMs: this.#clock.now() - started,
          attempts,
        };
      }
      if (opts.dryRun) {
        return {
          outcome: 'changed',
          target,
          from: holderOf(observed),
          method,
          plan,
          switchMs: null,
          totalMs: this.#clock.now() - started,
          attempts: 0,
        };
      }
      attempts++;
      const holder = holderOf(observed);
      const moving = holder !== target;
      if (moving) from = holder ?? otherName(observed, target);
      const startedAt = this.#clock.date();
      const startedMs = this.#clock.now();
      try {
        const switchMs = await this.#runPlan(plan, timeoutMs);
        await this.#verifyStays(target);
        if (moving)
          await this.#record({
            upgradeId: opts.upgradeId,
            from: from!,
            to: target,
            method,
            attempt: attempts,
            startedAt,
            startedMs,
            result: 'SUCCESS',
            switchMs,
            detail: null,
          });
        this.#log(
          `VIP on ${target} (${method}${switchMs !== null ? `, answered after ${switchMs.toFixed(0)} ms` : ''})`,
        );
        return {
          outcome: 'changed',
          target,
          from,
          method,
          plan: firstPlan,
          switchMs,
          totalMs: this.#clock.now() - started,
          attempts,
        };
      } catch (err) {
        const e =
          err instanceof DriverError
            ? err
            : new DriverError((err as Error).message, { kind: 'transient', cause: err });
        lastError = e;
        const timedOut = e.timedOut;
        if (moving)
          await this.#record({
            upgradeId: opts.upgradeId,
            from: from!,
            to: target,
            method,
            attempt: attempts,
            startedAt,
            startedMs,
            result: timedOut ? 'TIMEOUT' : 'FAILED',
            switchMs: null,
            detail: e.message,
          });
        // Leave the pair serving: undo a release that did not lead to a takeover.
        await this.#restoreHolder(observed, target).catch(() => {});
        if (e.kind === 'terminal' && !timedOut) throw e.within(doing);
        this.#log(`attempt ${attempts} failed: ${e.message}`);
      }
    }
    throw new DriverError(
      `gave up after ${attempts} attempt(s): ${lastError?.message ?? 'unknown error'}`,
      { kind: 'terminal', node: target, cause: lastError },
      [doing],
    );
  }

  /**
   * Runs the steps; returns ms from the releasing action to the VIP answering
   * from target. The release (fault or stop) is not awaited before watching
   * the VIP: `svc stop` returns only once keepalived has exited, long after
   * it sent its priority-0 advert, and the move is what is being timed.
   */
  async #runPlan(plan: readonly VipStep[], timeoutMs: number): Promise<number | null> {
    let actionAt: number | null = null;
    let switchMs: number | null = null;
    let release: Promise<unknown> | undefined;
    for (const step of plan) {
      this.#log(describeStep(step));
      const run = (fn: () => Promise<unknown>) =>
        whileDoing(describeStep(step), fn, { kind: 'transient', node: step.node });
      switch (step.kind) {
        case 'set-fault':
          actionAt = this.#clock.now();
          release = run(() => this.#setFault(step.node, true));
          release.catch(() => {});
          break;
        case 'stop-keepalived':
          actionAt = this.#clock.now();
          release = run(() => this.#shell.exec(step.node, ['sh', '-c', this.#k.stop]));
          release.catch(() => {});
          break;
        case 'clear-fault':
          await run(() => this.#setFault(step.node, false));
          break;
        case 'start-keepalived':
          await run(() => this.#shell.exec(step.node, ['sh', '-c', this.#k.start]));
          break;
        case 'set-priority':
          actionAt ??= this.#clock.now();
          await run(() => this.ensurePriority(step.node, step.priority));
          break;
        case 'wait-vip': {
          const from = actionAt ?? this.#clock.now();
          const [at] = await Promise.all([
            run(() => this.#waitAnswering(step.node, from, timeoutMs)),
            release,
          ]);
          switchMs = (at as number) - from;
          break;
        }
      }
    }
    await release;
    return switchMs;
  }

  /**
   * Polls the VIP from outside until target answers; returns when the
   * successful look started (its SYN was answered by target, so target held
   * the VIP then). Looks overlap: one that started while no node held the VIP
   * waits for a SYN retransmit, so a new look starts every POLL_MS anyway.
   */
  async #waitAnswering(target: string, since: number, timeoutMs: number): Promise<number> {
    const deadline = since + timeoutMs;
    let last: OutsideAnswer | undefined;
    let found: number | undefined;
    let foreign: string | undefined;
    let inFlight = 0;
    while (found === undefined && foreign === undefined && this.#clock.now() < deadline) {
      if (inFlight < MAX_LOOKS_IN_FLIGHT) {
        const lookStarted = this.#clock.now();
        inFlight++;
        void this.outsideHolder(LOOK_TIMEOUT_MS).then((a) => {
          inFlight--;
          last = a;
          if (a.kind === 'node' && a.node === target)
            found = Math.min(found ?? Number.POSITIVE_INFINITY, lookStarted);
          if (a.kind === 'foreign') foreign = a.fingerprint;
        });
      }
      await this.#clock.sleep(POLL_MS);
    }
    while (inFlight > 0) await this.#clock.sleep(5);
    if (foreign)
      throw new DriverError(
        `the VIP answers with host key ${foreign}, which belongs to neither node`,
        { kind: 'terminal', node: target },
      );
    if (found !== undefined) return found;
    const seen =
      last?.kind === 'node'
        ? `${last.node} still answers`
        : last?.kind === 'none'
          ? last.reason
          : 'no answer';
    throw new DriverError(
      `the VIP did not answer from ${target} within ${timeoutMs} ms (${seen})`,
      {
        kind: 'transient',
        node: target,
        timedOut: true,
      },
    );
  }

  /** Observe again after acting: target holds it inside and outside, the peer does not, for a few adverts. */
  async #verifyStays(target: string): Promise<void> {
    const advertMs = (this.#k.advertIntervalSeconds ?? 1) * 1000;
    const settleMs = Math.min(3000, Math.max(300, 4 * advertMs));
    const until = this.#clock.now() + settleMs;
    do {
      const o = await this.observe();
      const t = o.nodes.find((n) => n.node === target)!;
      const other = o.nodes.find((n) => n.node !== target)!;
      if (other.holdsVip && t.holdsVip)
        throw new DriverError('split brain after the move: both nodes hold the VIP', {
          kind: 'conflict',
          node: target,
        });
      if (!t.holdsVip || o.outsideHolder !== target) {
        throw new DriverError(
          `the VIP left ${target} again after the move (inside: ${t.holdsVip ? 'held' : 'not held'}, outside: ${o.outsideHolder ?? 'no answer'})`,
          { kind: 'transient', node: target },
        );
      }
      if (t.priority <= other.priority || t.faulted || other.faulted || !other.running) {
        throw new DriverError(
          `after the move ${target} is not the preferred holder (priority ${t.priority} vs ${other.priority}, fault ${t.faulted}/${other.faulted}, peer keepalived ${other.running ? 'running' : 'stopped'})`,
          { kind: 'transient', node: target },
        );
      }
      await this.#clock.sleep(Math.max(50, advertMs));
    } while (this.#clock.now() < until);
  }

  /**
   * After a failed attempt that released the VIP but did not get it to the
   * target: clear the fault we set / start what we stopped, so the old holder
   * serves again. If the target already answers, nothing is undone (the old
   * holder, still preferred, would take the VIP back: after a database
   * switchover it may have no primary any more); the next attempt finishes.
   */
  async #restoreHolder(observed: VipObservation, target: string): Promise<void> {
    const now = await this.outsideHolder();
    if (now.kind === 'node' && now.node === target) return;
    const other = observed.nodes.find((n) => n.node !== target)!;
    if (this.#k.faultFile && (await this.#faulted(other.node)))
      await this.#setFault(other.node, false);
    if (!(await this.#running(other.node)))
      await this.#shell.exec(other.node, ['sh', '-c', this.#k.start]);
  }

  async #record(r: AttemptRecord): Promise<void> {
    if (!this.#records || !r.upgradeId) return;
    const finishedAt = this.#clock.date();
    await this.#records.vipSwitch({
      upgradeId: r.upgradeId,
      vip: this.#pair.spec.vip.address,
      fromNode: r.from,
      toNode: r.to,
      method: METHOD_RECORD[r.method],
      attempt: r.attempt,
      startedAt: r.startedAt,
      finishedAt,
      durationMs: r.switchMs ?? this.#clock.now() - r.startedMs,
      result: r.result,
      detail: r.detail,
    });
  }
}

/** Does `ip -o -4 addr show` output list this address on some interface? */
export function interfacesHold(ipAddrOutput: string, address: string): boolean {
  return ipAddrOutput
    .split('\n')
    .some((line) => line.split(/\s+/).some((w) => w.split('/')[0] === address && w.includes('/')));
}

function holderOf(o: VipObservation): string | null {
  if (o.outsideHolder) return o.outsideHolder;
  return o.nodes.find((n) => n.holdsVip)?.node ?? null;
}

function otherName(o: VipObservation, target: string): string {
  return o.nodes.find((n) => n.node !== target)!.node;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
