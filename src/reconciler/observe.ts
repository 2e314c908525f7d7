// The observer: reads the pair's observable state from the nodes for the
// planner (observed.ts). Nothing is remembered between rounds. Each node is
// read in parallel, every probe on it in parallel and each under its own
// deadline, so one stuck node or command costs at most one deadline and never
// stalls the round; a probe that fails leaves its field at the value that
// makes the planner act (or wait) rather than assume: not running, not
// healthy, role unknown, not paused, not locked.
//
// Reads go through the drivers (rsync status, the config lock's dry run, the
// keepalived driver's inside view and status command, observeDb); the few reads no driver offers
// are here: the jar's Implementation-Version read on the node, the Java
// service's /version as an HTTP client sees it, and whether the package's
// migrations are recorded in the app database.

import type { DbRole, NodeObservation, PairObservation } from '../core/observed.js';
import { configChecksums } from '../drivers/config-sync/compare.js';
import { ensureConfigLocked, type LockMethod } from '../drivers/config-sync/lock.js';
import { compareListings } from '../drivers/config-sync/parse.js';
import { rsyncStatus } from '../drivers/config-sync/sync.js';
import { lagBytes } from '../drivers/database/lsn.js';
import { MIGRATIONS_TABLE } from '../drivers/database/migrations.js';
import { type DbState, dbContext, observeDb } from '../drivers/database/observe.js';
import { querySql } from '../drivers/database/psql.js';
import { DriverError } from '../drivers/errors.js';
import type { HealthProbe } from '../drivers/health/health.js';
import type { KeepalivedDriver } from '../drivers/keepalived/driver.js';
import type { OutsideAnswer } from '../drivers/keepalived/vip-observer.js';
import { serviceStatus } from '../drivers/services/services.js';
import type { NodeShell } from '../drivers/ssh/pool.js';
import type { HAPair } from '../inventory/hapair.js';

export interface ObserveDeps {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  /** The agent's /health (pairHealthProbe). */
  readonly healthProbe: HealthProbe;
  /** The staged package's migrations; none means there is nothing to apply. */
  readonly migrations?: readonly { readonly name: string; readonly checksum: string }[];
  /** The upgrade's one keepalived driver (the runtime builds it; the executor shares it). */
  readonly keepalived: KeepalivedDriver;
  /** GET <service>/version as a client sees it; default: HTTP to the node's address. */
  readonly appVersion?: (node: string, timeoutMs: number) => Promise<string | null>;
  /** Each probe's deadline (default 2 s); the config comparison gets 5x. */
  readonly probeTimeoutMs?: number;
  readonly lockMethod?: LockMethod | 'auto';
  /**
   * Commands run at once on one node (default 8). OpenSSH's MaxSessions
   * (default 10) caps the channels of one connection; the executor or a
   * health probe over SSH may share it.
   */
  readonly maxSessionsPerNode?: number;
  /** Who answers on the VIP from outside; default the keepalived driver's look (an SSH handshake). */
  readonly vipOutside?: (timeoutMs: number) => Promise<OutsideAnswer>;
}

export interface ObserveOptions {
  /** Compare the config checksums across the nodes this round (else configConsistent is null). */
  readonly compareConfig: boolean;
}

/** The planner's observation, plus what it cost and what went wrong, for logs and reports. */
export interface ObservationReport extends PairObservation {
  readonly durationMs: number;
  /** node -> probe -> ms (null when it failed or timed out). */
  readonly timings: Readonly<Record<string, Readonly<Record<string, number | null>>>>;
  /** One line per probe that failed: "b: rsync: timed out after 2000 ms". */
  readonly problems: readonly string[];
  /**
   * Who answers on the VIP seen from outside both nodes (the host key the
   * VIP's sshd presents), null when nobody answered in time. A cross-check
   * of the nodes' own view (holdsVip); a disagreement is listed in problems.
   */
  readonly vipFromOutside: string | null;
}

const INSTALLED_VERSION_SCRIPT = `jar=$1
[ -f "$jar" ] || { echo MISSING; exit 0; }
if command -v python3 >/dev/null 2>&1; then
  exec python3 -c '
import sys, zipfile
try:
    m = zipfile.ZipFile(sys.argv[1]).read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
except Exception:
    print("UNREADABLE"); sys.exit(0)
for line in m.replace("\\r\\n", "\\n").split("\\n"):
    if line.startswith("Implementation-Version:"):
        print(line.split(":", 1)[1].strip()); sys.exit(0)
print("NONE")' "$jar"
fi
v=$(unzip -p "$jar" META-INF/MANIFEST.MF 2>/dev/null | tr -d '\\r' | sed -n 's/^Implementation-Version: *//p')
echo "\${v:-NONE}"`;

/** Pure: the script's one line -> a version, or null when the jar has none. */
export function parseInstalledVersion(stdout: string): string | null {
  const v = stdout.trim().split('\n')[0]?.trim() ?? '';
  return v === '' || v === 'MISSING' || v === 'UNREADABLE' || v === 'NONE' ? null : v;
}

/** The service whose /version names the release: "java" if declared, else the first with a versionPath. */
export function versionService(pair: HAPair): HAPair['spec']['services'][number] | undefined {
  const withPath = pair.spec.services.filter((s) => s.versionPath);
  return withPath.find((s) => s.name === 'java') ?? withPath[0];
}

/** GET http://<node address>:<port><versionPath>; the JSON's "version" (503 answers carry it too). */
export function httpAppVersion(pair: HAPair) {
  return async (node: string, timeoutMs: number): Promise<string | null> => {
    const svc = versionService(pair);
    const n = pair.spec.nodes.find((x) => x.name === node);
    if (!svc || !n) return null;
    try {
      const r = await fetch(`http://${n.address}:${svc.port}${svc.versionPath}`, {
        signal: AbortSignal.timeout(timeoutMs),
        headers: { connection: 'close' },
      });
      const text = await r.text();
      return parseVersionAnswer(text);
    } catch {
      return null;
    }
  };
}

/** Pure: {"version":"2.0.0",...} or a bare version line -> the version. */
export function parseVersionAnswer(text: string): string | null {
  try {
    const v = (JSON.parse(text) as { version?: unknown }).version;
    return typeof v === 'string' && v !== '' ? v : null;
  } catch {
    const line = text.trim();
    return /^\d+\.\d+\.\d+\S*$/.test(line) ? line : null;
  }
}

/** Rejects with a transient DriverError once ms have passed; the probe itself is left to finish. */
export function withDeadline<T>(p: Promise<T>, ms: number, node: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DriverError(`${what}: timed out after ${ms} ms`, {
            kind: 'transient',
            timedOut: true,
            node,
          }),
        ),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A NodeShell whose commands end on the node soon after the probe deadline:
 * the drivers' reads use the SSH layer's 30 s default, and a command left
 * hanging would hold an SSH channel (and a slot of limitPerNode) long after
 * its probe gave up. Commands that ask for more (the config hashing) get 5x.
 */
export function capTimeouts(shell: NodeShell, ms: number): NodeShell {
  return {
    exec(node, argv, opts) {
      const asked = opts?.timeoutMs;
      const cap = asked !== undefined && asked > ms ? 5 * ms : ms;
      return shell.exec(node, argv, { ...opts, timeoutMs: Math.min(asked ?? cap, cap) });
    },
  };
}

/** A NodeShell that runs at most `max` commands at once per node; the rest queue. */
export function limitPerNode(shell: NodeShell, max: number): NodeShell {
  const running = new Map<string, number>();
  const waiting = new Map<string, (() => void)[]>();
  const acquire = (node: string) =>
    new Promise<void>((resolve) => {
      const n = running.get(node) ?? 0;
      if (n < max) {
        running.set(node, n + 1);
        resolve();
      } else {
        waiting.set(node, [...(waiting.get(node) ?? []), resolve]);
      }
    });
  const release = (node: string) => {
    const next = waiting.get(node)?.shift();
    if (next)
      next(); // the slot passes straight on
    else running.set(node, (running.get(node) ?? 1) - 1);
  };
  return {
    async exec(node, argv, opts) {
      await acquire(node);
      try {
        return await shell.exec(node, argv, opts);
      } finally {
        release(node);
      }
    },
  };
}

interface Probed<T> {
  readonly value: T | undefined;
  readonly ms: number | null;
  readonly error?: string;
}

async function probe<T>(
  node: string,
  what: string,
  ms: number,
  fn: () => Promise<T>,
): Promise<Probed<T>> {
  const t = performance.now();
  try {
    const value = await withDeadline(fn(), ms, node, what);
    return { value, ms: Math.round(performance.now() - t) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // a DriverError's message starts with its node already
    let bare = message.startsWith(`${node}: `) ? message.slice(node.length + 2) : message;
    if (bare.startsWith(`${what}: `)) bare = bare.slice(what.length + 2);
    return { value: undefined, ms: null, error: `${node}: ${what}: ${bare}` };
  }
}

interface RawNode {
  readonly name: string;
  readonly reachable: Probed<true>;
  readonly installed: Probed<string | null>;
  readonly appVersion: Probed<string | null>;
  readonly services: Probed<boolean>;
  readonly health: Probed<boolean>;
  readonly db: Probed<DbState>;
  readonly vip: Probed<boolean>;
  readonly keepalived: Probed<boolean>;
  readonly rsync: Probed<boolean>;
  readonly lock: Probed<boolean>;
  readonly migrations: Probed<Map<string, string>>;
  readonly config: Probed<Awaited<ReturnType<typeof configChecksums>>> | null;
}

export function roleOf(db: DbState | undefined): DbRole {
  if (!db) return 'unknown';
  if (!db.running) return 'down';
  return db.inRecovery ? 'standby' : 'primary';
}

async function appliedMigrations(deps: ObserveDeps, node: string): Promise<Map<string, string>> {
  const ctx = dbContext(deps.shell, deps.pair);
  const rows = await querySql(
    deps.shell,
    deps.pair,
    ctx.flavour,
    node,
    `SELECT name, checksum FROM ${MIGRATIONS_TABLE}`,
  ).catch(async (err) => {
    // The table does not exist before the first migration ran: nothing applied.
    if (err instanceof DriverError && /does not exist/.test(err.message)) return [];
    throw err;
  });
  return new Map(rows.map((r) => [r[0]!, r[1]!]));
}

async function readNode(
  deps: ObserveDeps,
  keepalived: KeepalivedDriver,
  node: string,
  opts: ObserveOptions,
): Promise<RawNode> {
  const ms = deps.probeTimeoutMs ?? 2000;
  const { pair, shell } = deps;
  const exec = (argv: string[]) => shell.exec(node, argv, { timeoutMs: ms });
  const wantMigrations = (deps.migrations?.length ?? 0) > 0;
  const reachableProbe = probe(node, 'ssh', ms, async () => {
    await exec(['true']);
    return true as const;
  });
  // Once the node is known not to answer, its other probes are not waited
  // for: every field of an unreachable node is unknown anyway, and a slow
  // one (the config hashing has a longer deadline) would hold the round.
  const lost = reachableProbe.then((r) =>
    r.value === true
      ? new Promise<never>(() => {})
      : Promise.reject(
          new DriverError('the node does not answer over SSH', { kind: 'transient', node }),
        ),
  );
  lost.catch(() => {}); // observed through the races below
  const guarded = <T>(what: string, deadline: number, fn: () => Promise<T>) =>
    probe(node, what, deadline, () => Promise.race([fn(), lost]));
  const [
    reachable,
    installed,
    appVersion,
    services,
    health,
    db,
    vip,
    keepalivedUp,
    rsync,
    lock,
    migrations,
    config,
  ] = await Promise.all([
    reachableProbe,
    guarded('installed version', ms, async () =>
      parseInstalledVersion(
        (await exec(['sh', '-c', INSTALLED_VERSION_SCRIPT, 'sh', pair.spec.paths.appJar])).stdout,
      ),
    ),
    guarded('app version', ms, () =>
      (deps.appVersion ?? httpAppVersion(pair))(node, Math.max(1, ms - 100)),
    ),
    guarded('services', ms, async () => {
      const states = await Promise.all(
        pair.spec.services.map((s) => serviceStatus({ pair, shell }, node, s.name)),
      );
      return states.every((s) => s === 'running');
    }),
    guarded('health', ms, async () => {
      const r = await deps.healthProbe(node, Math.max(1, ms - 100));
      return r.status === 'UP';
    }),
    guarded('database', ms, () => observeDb(dbContext(shell, pair), node)),
    guarded('vip', ms, () => keepalived.holdsVip(node, deps.shell)),
    // One status command: a keepalived that died leaves the pair without failover.
    guarded('keepalived', ms, () => keepalived.running(node, deps.shell)),
    guarded(
      'rsync',
      ms,
      async () => (await rsyncStatus({ pair, shell, records: NO_RECORDS }, node)).paused,
    ),
    guarded('config lock', ms, async () => {
      const r = await ensureConfigLocked(
        { shell },
        { node, dir: pair.spec.paths.configDir, method: deps.lockMethod ?? 'auto', dryRun: true },
      );
      return r.before === 'yes';
    }),
    wantMigrations
      ? guarded('migrations', ms, () => appliedMigrations(deps, node))
      : Promise.resolve({ value: new Map<string, string>(), ms: 0 }),
    opts.compareConfig
      ? guarded('config checksums', ms * 5, () =>
          configChecksums({ pair, shell, records: NO_RECORDS }, node),
        )
      : Promise.resolve(null),
  ]);
  return {
    name: node,
    reachable,
    installed,
    appVersion,
    services,
    health,
    db,
    vip,
    keepalived: keepalivedUp,
    rsync,
    lock,
    migrations,
    config,
  };
}

/** Reading must not write records: the steps record what they change. */
const NO_RECORDS = {
  backup: async () => 0,
  updateBackupState: async () => {},
  healthCheck: async () => {},
  vipSwitch: async () => {},
  rsyncStatus: async () => {},
  configSync: async () => {},
};

function toObservation(raw: RawNode, lag: number | null): NodeObservation {
  if (raw.reachable.value !== true) {
    return {
      name: raw.name,
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
    };
  }
  return {
    name: raw.name,
    reachable: true,
    appVersion: raw.appVersion.value ?? null,
    installedVersion: raw.installed.value ?? null,
    servicesRunning: raw.services.value ?? false,
    healthy: raw.health.value ?? false,
    dbRole: roleOf(raw.db.value),
    ...(raw.db.value && !raw.db.value.running
      ? { dbStandbySignal: raw.db.value.standbySignal }
      : {}),
    ...(raw.keepalived.value !== undefined ? { keepalivedRunning: raw.keepalived.value } : {}),
    holdsVip: raw.vip.value ?? false,
    ...(raw.db.value?.running && raw.db.value.inRecovery
      ? { streaming: raw.db.value.receiverStatus === 'streaming' }
      : {}),
    replayLagBytes: lag,
    rsyncPaused: raw.rsync.value ?? false,
    configLocked: raw.lock.value ?? false,
  };
}

/**
 * The standby's replay distance behind what the primary had written when it
 * was read. The two nodes are read at the same moment, so a write landing in
 * between shows up as lag that is already replayed: when the first look says
 * behind, the standby is read once more (its replay position then, against
 * the primary's position before) so a healthy standby reads 0.
 */
async function replayLag(
  deps: ObserveDeps,
  standby: RawNode,
  primary: RawNode | undefined,
): Promise<number | null> {
  const s = standby.db.value;
  const p = primary?.db.value;
  if (!s?.running || !s.inRecovery || s.replayLsn === null) return null;
  if (!p?.running || p.inRecovery || p.currentLsn === null) return null;
  const first = lagBytes(p.currentLsn, s.replayLsn);
  if (first === 0n) return 0;
  const again = await probe(standby.name, 'database (again)', deps.probeTimeoutMs ?? 2000, () =>
    observeDb(dbContext(deps.shell, deps.pair), standby.name),
  );
  const s2 = again.value;
  if (!s2?.running || !s2.inRecovery || s2.replayLsn === null) return Number(first);
  return Number(lagBytes(p.currentLsn, s2.replayLsn));
}

export async function observePair(
  given: ObserveDeps,
  opts: ObserveOptions,
): Promise<ObservationReport> {
  const started = performance.now();
  const ms = given.probeTimeoutMs ?? 2000;
  const deps = {
    ...given,
    shell: limitPerNode(capTimeouts(given.shell, ms), given.maxSessionsPerNode ?? 8),
  };
  const keepalived = deps.keepalived;
  const names = deps.pair.spec.nodes.map((n) => n.name) as [string, string];
  const [raws, outside] = await Promise.all([
    Promise.all(names.map((n) => readNode(deps, keepalived, n, opts))),
    // whoAnswersOnVip never throws; the deadline is its own
    (deps.vipOutside ?? ((t: number) => keepalived.outsideHolder(t)))(Math.min(1000, ms)),
  ]);
  const reachable = (r: RawNode) => r.reachable.value === true;
  const primary = raws.find((r) => reachable(r) && roleOf(r.db.value) === 'primary');
  const lags = await Promise.all(
    raws.map((r) =>
      reachable(r) && roleOf(r.db.value) === 'standby' ? replayLag(deps, r, primary) : null,
    ),
  );
  const nodes = raws.map((r, i) => toObservation(r, lags[i] ?? null)) as unknown as [
    NodeObservation,
    NodeObservation,
  ];

  const wanted = deps.migrations ?? [];
  const applied = primary?.migrations.value;
  const migrationsApplied =
    wanted.length === 0 ||
    (applied !== undefined && wanted.every((m) => applied.get(m.name) === m.checksum));

  let configConsistent: boolean | null = null;
  if (opts.compareConfig) {
    const [ca, cb] = raws.map((r) => r.config?.value);
    // Unknown when either side could not be read: the planner asks again.
    if (ca && cb && raws.every(reachable)) {
      configConsistent =
        compareListings({ node: names[0], files: ca }, { node: names[1], files: cb }).length === 0;
    }
  }

  const problems: string[] = [];
  const timings: Record<string, Record<string, number | null>> = {};
  for (const r of raws) {
    const t: Record<string, number | null> = {};
    for (const [key, p] of Object.entries(r)) {
      if (key === 'name' || p === null) continue;
      const pr = p as Probed<unknown>;
      t[key] = pr.ms;
      if (pr.error && (reachable(r) || key === 'reachable')) problems.push(pr.error);
    }
    timings[r.name] = t;
  }
  const vipFromOutside = outside.kind === 'node' ? outside.node : null;
  const inside = nodes.filter((n) => n.holdsVip).map((n) => n.name);
  if (outside.kind === 'foreign')
    problems.push(
      `the VIP answers with host key ${outside.fingerprint}, which belongs to neither node`,
    );
  else if (vipFromOutside !== null && (inside.length !== 1 || inside[0] !== vipFromOutside))
    problems.push(
      `the VIP answers from ${vipFromOutside} outside, while ${inside.length ? inside.join(' and ') : 'no node'} holds it inside`,
    );
  return {
    nodes,
    vipFromOutside,
    configConsistent,
    migrationsApplied,
    durationMs: Math.round(performance.now() - started),
    timings,
    problems,
  };
}
