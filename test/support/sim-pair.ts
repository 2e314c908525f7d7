// A simulated HA pair for model-based tests of the planner: the same
// observable facts a real pair has, changed by the planner's steps, with
// faults injected on purpose. Deliberately simple and strict: a step that
// would be unsafe on a real pair (stopping the node that carries the VIP)
// is carried out all the same, so the properties can see it.
import type { Step } from '../../src/core/actions.js';
import type { StepOutcome } from '../../src/core/journal.js';
import type { NodeObservation, PairObservation } from '../../src/core/observed.js';

export interface SimNode {
  name: string;
  installedVersion: string;
  servicesRunning: boolean;
  dbRole: 'primary' | 'standby';
  /** The database stopped by itself (its role is what it was: a standby comes back as one). */
  dbDown: boolean;
  keepalivedRunning: boolean;
  holdsVip: boolean;
  lagBytes: number;
  rsyncPaused: boolean;
  configLocked: boolean;
  /** Rounds left during which the operator cannot reach the node. */
  unreachableRounds: number;
  /** Rounds left during which the node answers but some probes time out (the 'unread' fault). */
  unreadRounds?: number;
  unreadProbes?: readonly UnreadProbe[];
}

export type Fault =
  | { kind: 'transient' }
  | { kind: 'terminal' }
  | { kind: 'unreachable'; node: 0 | 1; rounds: number }
  | { kind: 'health-flap' }
  | { kind: 'lag'; node: 0 | 1 }
  /** For some rounds every step answers "not yet" (a standby that will not catch up). */
  | { kind: 'stall'; rounds: number }
  /** A node's services die by themselves (the operator did not stop them). */
  | { kind: 'crash'; node: 0 | 1 }
  /**
   * A node's database stops by itself; `sticky`: every start fails (a disk
   * that is full, a data directory gone), so the bring-back bound is spent.
   */
  | { kind: 'database-down'; node: 0 | 1; sticky?: boolean }
  /** keepalived dies on a node (its VIP, if it held it, moves to the other by VRRP). */
  | { kind: 'keepalived-down'; node: 0 | 1; sticky?: boolean }
  /** For some rounds both nodes claim the VIP (VRRP lost between them); the holder before keeps it after. */
  | { kind: 'split-brain'; rounds: number }
  /** From now on this step answers ok but changes nothing on the pair. */
  | { kind: 'no-effect'; step: Step }
  /**
   * From now on a node's /health fails while every component the operator
   * could bring back runs (a bug only a person can find): nothing to repair.
   */
  | { kind: 'sick'; node: 0 | 1 }
  /**
   * For some rounds the node answers over SSH but its installed-version,
   * services and VIP probes time out (a loaded machine: the observer's 2 s
   * deadlines): those fields read as stand-ins (unknown version, stopped,
   * not holding the VIP) and each is listed in problems, as observe.ts does.
   */
  | {
      kind: 'unread';
      node: 0 | 1;
      rounds: number;
      /** The probes that fail (default all three). */
      probes?: readonly UnreadProbe[];
    };

export type UnreadProbe = 'installed version' | 'services' | 'vip';

export class SimPair {
  readonly nodes: [SimNode, SimNode];
  migrationsApplied = false;
  /** Backup sets taken per node (a real backup is a side effect too). */
  backupsTaken: Record<string, number> = {};
  stallRounds = 0;
  /** Components whose start fails (sticky faults): "db@node-a", "ka@node-b". */
  readonly stuck = new Set<string>();
  /** Rounds left during which both nodes claim the VIP. */
  splitRounds = 0;
  /** Steps that answer ok without their effect. */
  readonly noEffect = new Set<Step>();
  /** Nodes whose /health fails with every component running (the 'sick' fault). */
  readonly sick = new Set<string>();
  configConsistent: boolean | null = null;

  constructor(
    readonly fromVersion: string,
    readonly brokenVersions: ReadonlySet<string> = new Set(),
  ) {
    const base = {
      installedVersion: fromVersion,
      servicesRunning: true,
      dbDown: false,
      keepalivedRunning: true,
      lagBytes: 0,
      rsyncPaused: false,
      configLocked: false,
      unreachableRounds: 0,
    };
    this.nodes = [
      { ...base, name: 'node-a', dbRole: 'primary', holdsVip: true },
      { ...base, name: 'node-b', dbRole: 'standby', holdsVip: false },
    ];
  }

  node(name: string): SimNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  /** /health covers the database and keepalived too, as the lab agent's does. */
  healthy(n: SimNode): boolean {
    return (
      n.servicesRunning &&
      !this.sick.has(n.name) &&
      !n.dbDown &&
      n.keepalivedRunning &&
      !this.brokenVersions.has(n.installedVersion)
    );
  }

  /** Clients get answers through the VIP. */
  clientsServed(): boolean {
    const holder = this.nodes.find((n) => n.holdsVip);
    return holder !== undefined && this.healthy(holder) && holder.dbRole === 'primary';
  }

  observe(): PairObservation {
    const obs = (n: SimNode): NodeObservation =>
      n.unreachableRounds > 0
        ? {
            name: n.name,
            reachable: false,
            appVersion: null,
            installedVersion: null,
            servicesRunning: false,
            healthy: false,
            dbRole: 'unknown',
            holdsVip: false,
            replayLagBytes: null,
            rsyncPaused: false,
            configLocked: false,
          }
        : {
            name: n.name,
            reachable: true,
            appVersion: n.servicesRunning ? n.installedVersion : null,
            installedVersion: n.installedVersion,
            servicesRunning: n.servicesRunning,
            healthy: this.healthy(n),
            dbRole: n.dbDown ? 'down' : n.dbRole,
            ...(n.dbDown ? { dbStandbySignal: n.dbRole === 'standby' } : {}),
            keepalivedRunning: n.keepalivedRunning,
            holdsVip: n.holdsVip || this.splitRounds > 0,
            replayLagBytes: n.dbRole === 'standby' && !n.dbDown ? n.lagBytes : null,
            rsyncPaused: n.rsyncPaused,
            configLocked: n.configLocked,
          };
    const failing = (n: SimNode, what: UnreadProbe) =>
      n.unreachableRounds === 0 &&
      (n.unreadRounds ?? 0) > 0 &&
      (n.unreadProbes ?? ['installed version', 'services', 'vip']).includes(what);
    const unread = (o: NodeObservation, n: SimNode): NodeObservation => ({
      ...o,
      ...(failing(n, 'installed version') ? { installedVersion: null } : {}),
      ...(failing(n, 'services')
        ? { servicesRunning: false, appVersion: null, healthy: false }
        : {}),
      ...(failing(n, 'vip') ? { holdsVip: false } : {}),
    });
    const problems = this.nodes.flatMap((n) =>
      (['installed version', 'services', 'vip'] as const)
        .filter((what) => failing(n, what))
        .map((what) => `${n.name}: ${what}: timed out after 2000 ms`),
    );
    return {
      nodes: [unread(obs(this.nodes[0]), this.nodes[0]), unread(obs(this.nodes[1]), this.nodes[1])],
      configConsistent: this.configConsistent,
      migrationsApplied: this.migrationsApplied,
      ...(problems.length > 0 ? { problems } : {}),
    };
  }

  /** One round passes: unreachable nodes come back eventually. */
  tick(): void {
    for (const n of this.nodes) if (n.unreachableRounds > 0) n.unreachableRounds--;
    for (const n of this.nodes) if ((n.unreadRounds ?? 0) > 0) n.unreadRounds = n.unreadRounds! - 1;
    if (this.stallRounds > 0) this.stallRounds--;
    if (this.splitRounds > 0) this.splitRounds--;
  }

  inject(f: Fault): void {
    if (f.kind === 'unreachable') this.nodes[f.node].unreachableRounds = f.rounds;
    if (f.kind === 'unread') {
      this.nodes[f.node].unreadRounds = f.rounds;
      this.nodes[f.node].unreadProbes = f.probes ?? ['installed version', 'services', 'vip'];
    }
    if (f.kind === 'lag' && this.nodes[f.node].dbRole === 'standby')
      this.nodes[f.node].lagBytes = 4096;
    if (f.kind === 'stall') this.stallRounds = f.rounds;
    if (f.kind === 'crash') this.nodes[f.node].servicesRunning = false;
    if (f.kind === 'database-down') {
      const n = this.nodes[f.node];
      n.dbDown = true;
      if (f.sticky) this.stuck.add(`db@${n.name}`);
    }
    if (f.kind === 'keepalived-down') {
      const n = this.nodes[f.node];
      const other = this.nodes[f.node === 0 ? 1 : 0];
      n.keepalivedRunning = false;
      // VRRP: the other node's keepalived stops hearing adverts and takes the VIP.
      if (n.holdsVip && other.keepalivedRunning) {
        n.holdsVip = false;
        other.holdsVip = true;
      }
      if (f.sticky) this.stuck.add(`ka@${n.name}`);
    }
    if (f.kind === 'split-brain') this.splitRounds = f.rounds;
    if (f.kind === 'no-effect') this.noEffect.add(f.step);
    if (f.kind === 'sick') this.sick.add(this.nodes[f.node].name);
  }

  apply(
    step: Step,
    nodeName: string | null,
    targetVersion: string,
    fault: Fault | null,
  ): StepOutcome {
    const target = nodeName ? this.node(nodeName) : null;
    if (target && target.unreachableRounds > 0)
      return { ok: false, kind: 'transient', message: 'connection refused' };
    if (this.stallRounds > 0 && step === 'WAIT_REPLAY') {
      return { ok: false, kind: 'waiting', message: 'not caught up yet' };
    }
    if (fault?.kind === 'transient')
      return { ok: false, kind: 'transient', message: 'injected transient fault' };
    if (fault?.kind === 'terminal')
      return { ok: false, kind: 'terminal', message: 'injected terminal fault' };
    if (this.noEffect.has(step)) return { ok: true };
    switch (step) {
      case 'PAUSE_RSYNC':
        for (const n of this.nodes) n.rsyncPaused = true;
        break;
      case 'RESUME_RSYNC':
        for (const n of this.nodes) if (n.unreachableRounds === 0) n.rsyncPaused = false;
        break;
      case 'LOCK_CONFIG':
        target!.configLocked = true;
        break;
      case 'UNLOCK_CONFIG':
        target!.configLocked = false;
        break;
      case 'BACKUP':
        this.backupsTaken[target!.name] = (this.backupsTaken[target!.name] ?? 0) + 1;
        break;
      case 'RUN_MIGRATIONS':
        this.migrationsApplied = true;
        break;
      case 'WAIT_REPLAY':
        target!.lagBytes = 0;
        break;
      case 'STOP_SERVICES':
        target!.servicesRunning = false;
        break;
      case 'START_SERVICES':
      case 'BRING_BACK_SERVICES':
        target!.servicesRunning = true;
        break;
      case 'START_DATABASE':
        // the real driver starts only a standby (standby.signal)
        if (target!.dbRole !== 'standby')
          return { ok: false, kind: 'terminal', message: 'not a standby; refusing to start it' };
        if (this.stuck.has(`db@${target!.name}`))
          return { ok: false, kind: 'terminal', message: 'pg_ctl: could not start server' };
        target!.dbDown = false;
        break;
      case 'START_KEEPALIVED':
        if (this.stuck.has(`ka@${target!.name}`))
          return {
            ok: false,
            kind: 'waiting',
            message: 'keepalived is not running after its start',
          };
        target!.keepalivedRunning = true;
        break;
      case 'INSTALL_PACKAGE':
        target!.installedVersion = targetVersion;
        break;
      case 'RESTORE':
        target!.installedVersion = this.fromVersion;
        break;
      case 'CHECK_HEALTH':
        if (fault?.kind === 'health-flap' || !this.healthy(target!)) {
          return { ok: false, kind: 'waiting', message: `${target!.name} /health is DOWN` };
        }
        break;
      case 'SWITCHOVER': {
        const other = this.nodes.find((n) => n !== target)!;
        // the real choreography needs both databases running
        if (target!.dbDown || other.dbDown)
          return { ok: false, kind: 'transient', message: 'a database is not running' };
        target!.dbRole = 'primary';
        target!.holdsVip = true;
        target!.lagBytes = 0;
        other.dbRole = 'standby';
        other.holdsVip = false;
        break;
      }
      case 'CHECK_CONFIG':
        this.configConsistent = true;
        break;
      default:
        break;
    }
    return { ok: true };
  }
}
