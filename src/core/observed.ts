// What the reconciler saw on the nodes this time round. Nothing here is
// remembered from an earlier reconcile: it is read from the nodes every
// time, so an operator restarted at any moment plans from the truth.

export type DbRole = 'primary' | 'standby' | 'down' | 'unknown';

export interface NodeObservation {
  readonly name: string;
  /** SSH answered this round. When false every other field is unknown. */
  readonly reachable: boolean;
  /** The version the Java service reports (/version), null when it does not answer. */
  readonly appVersion: string | null;
  /** The version of the jar installed on disk (what a start would run). */
  readonly installedVersion: string | null;
  /** Every declared service is running. */
  readonly servicesRunning: boolean;
  /** The node's /health is UP (database, ports, keepalived). */
  readonly healthy: boolean;
  readonly dbRole: DbRole;
  /**
   * When dbRole is 'down': the stopped data directory holds standby.signal,
   * so a start brings it back as a standby (never as a second primary).
   * Absent when not read.
   */
  readonly dbStandbySignal?: boolean;
  /** keepalived's status command says running; absent when not read this round. */
  readonly keepalivedRunning?: boolean;
  readonly holdsVip: boolean;
  /**
   * A running standby's WAL receiver is streaming from its primary; absent
   * for a primary, a stopped database, or when not read.
   */
  readonly streaming?: boolean;
  /** A standby's replay distance behind its primary in bytes; null for a primary or unknown. */
  readonly replayLagBytes: number | null;
  readonly rsyncPaused: boolean;
  readonly configLocked: boolean;
}

export interface PairObservation {
  readonly nodes: readonly [NodeObservation, NodeObservation];
  /** Config checksums equal on both nodes; null when not compared this round. */
  readonly configConsistent: boolean | null;
  /** The package's migrations are all recorded as applied in the app database. */
  readonly migrationsApplied: boolean;
  /**
   * What this round could not read or found wrong, one line each ("b:
   * rsync: timed out after 2000 ms"); the status shows it, since it is
   * often why the upgrade waits. Absent or empty when nothing was wrong.
   */
  readonly problems?: readonly string[];
}

/** A node is serving when clients reaching it get answers. */
export function serving(n: NodeObservation): boolean {
  return n.reachable && n.servicesRunning && n.healthy;
}

export function node(obs: PairObservation, name: string): NodeObservation {
  const n = obs.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no observation of node ${name}`);
  return n;
}

export function vipHolders(obs: PairObservation): NodeObservation[] {
  return obs.nodes.filter((n) => n.reachable && n.holdsVip);
}

/**
 * The probes whose stand-ins (unknown version, stopped, not holding the VIP)
 * the planner would act on: a node-changing step chosen from them can hit
 * the node serving the clients.
 */
const DECIDING_PROBES = ['installed version', 'services', 'vip'] as const;

/**
 * One of the node's deciding probes failed this round (observe.ts lists it
 * in problems as "<node>: <probe>: <error>"): its fields are not a reading.
 */
export function notReadInWhole(observed: PairObservation, name: string): boolean {
  return (observed.problems ?? []).some((p) =>
    DECIDING_PROBES.some((what) => p.startsWith(`${name}: ${what}: `)),
  );
}
