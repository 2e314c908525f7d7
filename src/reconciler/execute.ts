// The executor: one planner step (actions.ts) turned into driver calls. Each
// step does its one job ensure-style and returns; the planner re-plans from a
// fresh observation afterwards, so nothing here decides what comes next or
// remembers anything. Every driver writes its own record table through the
// RecordSink passed here.
//
// Errors never escape: a DriverError keeps its kind (transient | waiting |
// conflict | terminal) and message, anything else is transient, and the
// outcome goes to the journal (journal.ts recordStep). Dry run: every driver
// is called with dryRun, so it observes and reports what it would change and
// changes nothing; the staged package is kept.
import { posix } from 'node:path';
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from '../config/settings.js';
import type { Step } from '../core/actions.js';
import type { StepOutcome } from '../core/journal.js';
import type { BackupContext } from '../drivers/backup/backup.js';
import { ensureBackup, listBackupSets, restoreBackup } from '../drivers/backup/index.js';
import { SHA256_SCRIPT } from '../drivers/backup/remote.js';
import { clockFrom } from '../drivers/clock.js';
import { compareConfigAcrossNodes, describeDifferences } from '../drivers/config-sync/compare.js';
import {
  ensureConfigLocked,
  ensureConfigUnlocked,
  type LockMethod,
} from '../drivers/config-sync/lock.js';
import {
  ensureRsyncPausedOnPair,
  ensureRsyncResumed,
  ensureRsyncResumedOnPair,
} from '../drivers/config-sync/sync.js';
import { ensureStandbyRunning } from '../drivers/database/ensure-standby.js';
import { ensureMigrations } from '../drivers/database/migrations.js';
import { dbContext, observeDb, waitForReplay } from '../drivers/database/observe.js';
import { DriverError } from '../drivers/errors.js';
import { checkHealth, type HealthProbe } from '../drivers/health/health.js';
import type { KeepalivedDriver } from '../drivers/keepalived/driver.js';
import type { RecordSink } from '../drivers/records.js';
import { ensureFileInstalled, payloadTargets } from '../drivers/services/install.js';
import type { ServiceProbe } from '../drivers/services/probe.js';
import {
  ensureServiceStarted,
  ensureServiceStopped,
  type ServicesContext,
  startWait,
} from '../drivers/services/services.js';
import type { NodeShell } from '../drivers/ssh/pool.js';
import { switchover } from '../drivers/switchover/switchover.js';
import { type HAPair, protectedPaths } from '../inventory/hapair.js';
import type { StagedPackage, StagedPayload } from '../packages/stage.js';

/** Everything a step needs, built once per upgrade. */
export interface ExecutorDeps {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  readonly records: RecordSink;
  readonly settings: UpgradeSettings;
  readonly staged: StagedPackage;
  /** The agent's /health (pairHealthProbe). */
  readonly healthProbe: HealthProbe;
  /** The upgrade's one keepalived driver (the runtime builds it; the observer shares it). */
  readonly keepalived: KeepalivedDriver;
  /** How the services driver sees a port and a health path (default: from the operator). */
  readonly serviceProbe?: ServiceProbe;
  /** Wall-clock ms (Date.now-like): health records are stamped with it. Default: real time. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: (message: string, meta?: Record<string, unknown>) => void;
  readonly dryRun?: boolean;
  readonly lockMethod?: LockMethod | 'auto';
  /** Unfinished upgrades whose backup sets retention must keep. */
  readonly protectedUpgrades?: readonly string[];
  /** The operator's own record of backup digests (backup_record), for verification. */
  readonly recordedDigests?: BackupContext['recordedDigests'];
  /**
   * How long a service may take to stop or start (default 60 s to stop; to
   * answer its health after a start, the settings' healthCheckTimeout for
   * the node's services together).
   */
  readonly serviceTimeoutMs?: number;
}

export interface StepContext {
  readonly upgradeId: string;
  readonly masterNode: string;
  readonly backupNode: string;
  readonly fromVersion: string;
  readonly targetVersion: string;
  /** Rollback restores the database from the dump too (task list 3.4). */
  readonly restoreDatabase?: boolean;
}

export interface StepAction {
  readonly step: Step;
  readonly node: string | null;
}

export type ExecOutcome = StepOutcome & { readonly detail?: string; readonly durationMs: number };

/** A DriverError keeps its kind; anything else is worth another try. */
export function outcomeOf(err: unknown): { ok: false; kind: DriverError['kind']; message: string } {
  if (err instanceof DriverError) return { ok: false, kind: err.kind, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { ok: false, kind: 'transient', message };
}

function needNode(action: StepAction): string {
  if (!action.node) throw new DriverError(`${action.step} needs a node`, { kind: 'terminal' });
  return action.node;
}

export async function executeStep(
  deps: ExecutorDeps,
  action: StepAction,
  ctx: StepContext,
): Promise<ExecOutcome> {
  const started = (deps.now ?? performance.now.bind(performance))();
  const log = deps.log ?? (() => {});
  const elapsed = () => Math.round((deps.now ?? performance.now.bind(performance))() - started);
  const what = `${action.step}${action.node ? ` on ${action.node}` : ''}`;
  log(`${deps.dryRun ? 'dry run: ' : ''}${what}`, { upgradeId: ctx.upgradeId });
  try {
    const detail = await run(deps, action, ctx);
    log(`${what}: ok${detail ? ` (${detail})` : ''}`, { upgradeId: ctx.upgradeId, ms: elapsed() });
    return { ok: true, ...(detail ? { detail } : {}), durationMs: elapsed() };
  } catch (err) {
    const o = outcomeOf(err);
    log(`${what}: ${o.kind}: ${o.message}`, { upgradeId: ctx.upgradeId, ms: elapsed() });
    return { ...o, durationMs: elapsed() };
  }
}

/** The node whose database is the running primary now, read from both. */
async function currentPrimary(deps: ExecutorDeps): Promise<string> {
  const ctx = dbContext(deps.shell, deps.pair);
  const states = await Promise.all(deps.pair.spec.nodes.map((n) => observeDb(ctx, n.name)));
  const primaries = states.filter((s) => s.running && !s.inRecovery);
  if (primaries.length !== 1) {
    throw new DriverError(
      primaries.length === 0
        ? 'no node runs a primary database'
        : 'both nodes run a primary database (split brain); refusing to act',
      { kind: primaries.length === 0 ? 'waiting' : 'terminal' },
    );
  }
  return primaries[0]!.node;
}

/** Where a payload file goes on a node. */
export function payloadTarget(pair: HAPair, p: StagedPayload): string {
  if (p.kind === 'config') return `${pair.spec.paths.configDir.replace(/\/+$/, '')}/${p.target}`;
  const t = payloadTargets(pair.spec.paths)[p.archivePath];
  if (!t) throw new DriverError(`no place for ${p.archivePath}`, { kind: 'terminal' });
  return t;
}

/**
 * Runs fn with the config folder unlocked when it was locked, and locks it
 * again afterwards (also after a failure): a step that must write config
 * leaves the lock as it found it.
 */
async function withConfigUnlocked<T>(
  deps: ExecutorDeps,
  node: string,
  fn: () => Promise<T>,
): Promise<T> {
  const lockCtx = { shell: deps.shell };
  const opts = {
    node,
    dir: deps.pair.spec.paths.configDir,
    method: deps.lockMethod ?? 'auto',
    dryRun: deps.dryRun ?? false,
  };
  const unlocked = await ensureConfigUnlocked(lockCtx, opts);
  const wasLocked = unlocked.before !== 'no';
  try {
    return await fn();
  } finally {
    if (wasLocked) await ensureConfigLocked(lockCtx, opts);
  }
}

/** Puts <target>.<version> (kept by the install) back as target, if it differs; for files the backup does not hold. */
const RESTORE_KEPT_SCRIPT = `set -e
[ -f "$2" ] || { echo NOKEPT; exit 0; }
cp -p -- "$2" "$1.pairshift-new"
mv -f -- "$1.pairshift-new" "$1"
echo RESTORED`;

async function restoreKept(
  deps: ExecutorDeps,
  node: string,
  target: string,
  version: string,
): Promise<string> {
  const kept = `${target}.${version}`;
  const sha = async (p: string) =>
    (await deps.shell.exec(node, ['sh', '-c', SHA256_SCRIPT, 'sh', p])).stdout.trim();
  const [now, old] = await Promise.all([sha(target), sha(kept)]);
  if (old === 'MISSING') return `${target}: no kept ${version} copy`;
  if (now === old) return `${target} unchanged`;
  if (deps.dryRun) return `would put back ${kept}`;
  await deps.shell.exec(node, ['sh', '-c', RESTORE_KEPT_SCRIPT, 'sh', target, kept]);
  const after = await sha(target);
  if (after !== old)
    throw new DriverError(`${target} has sha256 ${after} after putting back ${kept}`, {
      kind: 'conflict',
      node,
    });
  return `${target} restored from ${kept}`;
}

/**
 * Acts on every service even when one fails, then reports the first failure:
 * a service that starts but never turns healthy (a broken release) must not
 * keep the next one from starting, or the node would never count as running
 * and the planner would ask for the same start again and again instead of
 * the health check that fails it.
 */
async function eachService(
  node: string,
  services: readonly { readonly name: string }[],
  fn: (service: string) => Promise<string>,
): Promise<string> {
  const out: string[] = [];
  let first: unknown;
  for (const svc of services) {
    try {
      out.push(await fn(svc.name));
    } catch (err) {
      first ??= err;
      out.push(`${svc.name} failed`);
    }
  }
  if (first !== undefined) {
    if (first instanceof DriverError)
      throw first.within(`acting on the services of ${node} (${out.join(', ')})`);
    throw first;
  }
  return out.join(', ');
}

/** What every step function gets: the deps, the step, and the contexts the drivers take. */
interface StepEnv {
  readonly deps: ExecutorDeps;
  readonly action: StepAction;
  readonly ctx: StepContext;
  readonly dryRun: boolean;
  readonly settings: UpgradeSettings;
  readonly upgradeId: string;
  readonly syncCtx: { pair: HAPair; shell: NodeShell; records: RecordSink };
  readonly serviceCtx: ServicesContext;
  readonly backupCtx: BackupContext;
}

/** One function per step kind; the Record makes a new Step a compile error until it has one. */
const STEPS: Record<Step, (e: StepEnv) => Promise<string>> = {
  PAUSE_RSYNC: pauseRsync,
  RESUME_RSYNC: resumeRsync,
  LOCK_CONFIG: lockConfig,
  UNLOCK_CONFIG: unlockConfig,
  BACKUP: backup,
  RUN_MIGRATIONS: runMigrations,
  WAIT_REPLAY: waitReplay,
  STOP_SERVICES: stopServices,
  START_SERVICES: startServices,
  INSTALL_PACKAGE: installPackage,
  CHECK_HEALTH: checkNodeHealth,
  SWITCHOVER: switchoverTo,
  CHECK_CONFIG: checkConfig,
  RESTORE: restore,
  REMOVE_TEMP_FILES: removeTempFiles,
  START_DATABASE: startStandbyDatabase,
  START_KEEPALIVED: startKeepalived,
  BRING_BACK_SERVICES: startServices,
};

function run(deps: ExecutorDeps, action: StepAction, ctx: StepContext): Promise<string> {
  return STEPS[action.step](stepEnv(deps, action, ctx));
}

function stepEnv(deps: ExecutorDeps, action: StepAction, ctx: StepContext): StepEnv {
  const { pair, shell, records } = deps;
  return {
    deps,
    action,
    ctx,
    dryRun: deps.dryRun ?? false,
    settings: deps.settings ?? BUILT_IN_DEFAULTS,
    upgradeId: ctx.upgradeId,
    syncCtx: { pair, shell, records },
    serviceCtx: {
      pair,
      shell,
      ...(deps.serviceProbe ? { probe: deps.serviceProbe } : {}),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
    },
    backupCtx: {
      pair,
      shell,
      records,
      ...(deps.recordedDigests ? { recordedDigests: deps.recordedDigests } : {}),
    },
  };
}

function lockOpts(e: StepEnv, node: string) {
  return {
    node,
    dir: e.deps.pair.spec.paths.configDir,
    method: e.deps.lockMethod ?? 'auto',
    dryRun: e.dryRun,
  };
}

/** The database driver's context, with the executor's log and clock. */
function dbOf(deps: ExecutorDeps) {
  return dbContext(deps.shell, deps.pair, (l) => deps.log?.(l), clockFrom(deps));
}

async function pauseRsync({ syncCtx, upgradeId, dryRun }: StepEnv): Promise<string> {
  const r = await ensureRsyncPausedOnPair(syncCtx, { upgradeId, dryRun });
  return r.nodes.map((n) => `${n.node} ${n.state}`).join(', ');
}

async function resumeRsync({ syncCtx, upgradeId, dryRun, action }: StepEnv): Promise<string> {
  // a node given: that node only (the other one is lost)
  const r = action.node
    ? { nodes: [await ensureRsyncResumed(syncCtx, action.node, { upgradeId, dryRun })] }
    : await ensureRsyncResumedOnPair(syncCtx, { upgradeId, dryRun });
  return r.nodes.map((n) => `${n.node} ${n.state}`).join(', ');
}

async function lockConfig(e: StepEnv): Promise<string> {
  const r = await ensureConfigLocked({ shell: e.deps.shell }, lockOpts(e, needNode(e.action)));
  return `${r.method}, ${r.state}`;
}

async function unlockConfig(e: StepEnv): Promise<string> {
  const r = await ensureConfigUnlocked({ shell: e.deps.shell }, lockOpts(e, needNode(e.action)));
  return `${r.method}, ${r.state}`;
}

async function backup({ deps, action, backupCtx, upgradeId, dryRun, settings }: StepEnv) {
  // ensureBackup verifies the set it made (or finds) before it returns.
  const r = await ensureBackup(backupCtx, {
    node: needNode(action),
    upgradeId,
    dryRun,
    database: 'auto',
    retention: settings.backupRetention,
    protectedUpgrades: deps.protectedUpgrades ?? [],
  });
  return `${r.state}: set ${r.set ?? '(dry run)'} with ${r.files.map((f) => f.kind).join(', ') || 'nothing yet'}${r.deletedSets.length ? `; deleted ${r.deletedSets.join(', ')}` : ''}`;
}

async function runMigrations({ deps, dryRun }: StepEnv): Promise<string> {
  const primary = await currentPrimary(deps);
  const r = await ensureMigrations(dbOf(deps), primary, deps.staged.migrations, { dryRun });
  return `${r.outcome} on ${primary}: applied ${r.applied.join(', ') || 'none'}, already ${r.alreadyApplied.join(', ') || 'none'}`;
}

async function waitReplay({ deps, action, settings }: StepEnv): Promise<string> {
  const node = needNode(action);
  const primary = await currentPrimary(deps);
  if (primary === node)
    throw new DriverError('is the primary; there is nothing to replay', {
      kind: 'conflict',
      node,
    });
  const db = dbContext(deps.shell, deps.pair);
  const p = await observeDb(db, primary);
  if (!p.running || p.currentLsn === null)
    throw new DriverError('the primary reports no WAL position', {
      kind: 'transient',
      node: primary,
    });
  const s = await waitForReplay(db, node, p.currentLsn, settings.healthCheckTimeout);
  return `replayed up to the primary's ${p.currentLsn === s.replayLsn ? 'exact' : 'current'} position`;
}

function stopServices({ deps, action, serviceCtx, dryRun }: StepEnv): Promise<string> {
  const node = needNode(action);
  // reverse of the declared order: dependants first
  return eachService(node, [...deps.pair.spec.services].reverse(), async (svc) => {
    const r = await ensureServiceStopped(serviceCtx, {
      node,
      service: svc,
      dryRun,
      timeoutMs: deps.serviceTimeoutMs ?? 60_000,
    });
    return `${svc} ${r.state}`;
  });
}

function startServices({ deps, action, serviceCtx, dryRun, settings }: StepEnv): Promise<string> {
  const node = needNode(action);
  // One health-check timeout for the node's services together (issue 12.5):
  // a release that never answers fails in about the configured time.
  const wait = startWait(settings);
  const clock = clockFrom(deps);
  const deadline = clock.now() + (deps.serviceTimeoutMs ?? wait.readyWithinMs);
  return eachService(node, deps.pair.spec.services, async (svc) => {
    const r = await ensureServiceStarted(serviceCtx, {
      node,
      service: svc,
      dryRun,
      timeoutMs: deps.serviceTimeoutMs ?? 60_000,
      readyWithinMs: Math.max(0, Math.round(deadline - clock.now())),
      probeTimeoutMs: wait.probeTimeoutMs,
    });
    return `${svc} ${r.state}${r.waitedMs ? ` in ${Math.round(r.waitedMs)} ms` : ''}`;
  });
}

/** A standby's database that stopped by itself starts again as a standby (issue 12.3). */
async function startStandbyDatabase({ deps, action, dryRun }: StepEnv): Promise<string> {
  const r = await ensureStandbyRunning(dbOf(deps), needNode(action), { dryRun });
  return `standby database ${r.state}${r.waitedMs ? ` in ${r.waitedMs} ms` : ''}`;
}

async function startKeepalived({ deps, action, dryRun }: StepEnv): Promise<string> {
  return `keepalived ${await deps.keepalived.ensureRunning(needNode(action), { dryRun })}`;
}

async function installPackage({ deps, action, ctx, dryRun }: StepEnv): Promise<string> {
  const { pair, shell } = deps;
  const node = needNode(action);
  const out: string[] = [];
  const install = async (p: StagedPayload) => {
    const r = await ensureFileInstalled(
      { shell },
      {
        node,
        localPath: p.path,
        sha256: p.sha256,
        target: payloadTarget(pair, p),
        previousVersion: ctx.fromVersion,
        dryRun,
        // The jar's own payload replaces paths.appJar; nothing else may.
        protect: protectedPaths(pair).filter(
          (x) => p.kind === 'config' || x.path !== posix.normalize(pair.spec.paths.appJar),
        ),
      },
    );
    if (r.kept && p.kind === 'config' && !dryRun) {
      // Not in /etc/app: the sync job would copy the old file around as
      // configuration, and the backup holds it already.
      await shell.exec(node, ['rm', '-f', '--', r.kept.path]);
      out.push(`${r.target} ${r.state}`);
    } else {
      out.push(`${r.target} ${r.state}${r.kept ? ` (old kept as ${r.kept.path})` : ''}`);
    }
  };
  // The jar goes last: its version is what the observer reports as
  // installed, so a step interrupted before the end is planned again.
  const config = deps.staged.payload.filter((p) => p.kind === 'config');
  const others = deps.staged.payload.filter((p) => p.kind !== 'config' && p.kind !== 'jar');
  const jar = deps.staged.payload.filter((p) => p.kind === 'jar');
  // The package's config changes go in while the folder is briefly
  // unlocked; the root key is never among them (stagePackage refuses it).
  if (config.length > 0)
    await withConfigUnlocked(deps, node, async () => {
      for (const p of config) await install(p);
    });
  for (const p of [...others, ...jar]) await install(p);
  return out.join(', ');
}

async function checkNodeHealth({ deps, action, upgradeId, settings }: StepEnv): Promise<string> {
  const node = needNode(action);
  const r = await checkHealth(
    node,
    {
      probe: deps.healthProbe,
      records: deps.records,
      upgradeId,
      ...(deps.now ? { now: deps.now } : {}),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
    },
    { settings },
  );
  return `UP after ${r.attempts} poll(s), role ${r.report.role}`;
}

/** The database primary and the VIP move together (src/drivers/switchover). */
async function switchoverTo({ deps, action, upgradeId, settings, dryRun }: StepEnv) {
  const r = await switchover(dbOf(deps), deps.keepalived, needNode(action), {
    dryRun,
    upgradeId,
    vipTimeoutMs: settings.vipSwitchTimeout,
    vipRetries: settings.vipSwitchRetries,
    catchUpTimeoutMs: settings.healthCheckTimeout,
  });
  return `${r.outcome} ${r.from} -> ${r.to}${r.writeOutageMs !== null ? `, write outage ${r.writeOutageMs} ms` : ''}${r.vipSwitchMs !== null ? `, VIP ${r.vipSwitchMs} ms` : ''}`;
}

async function checkConfig({ deps, syncCtx, upgradeId, dryRun }: StepEnv): Promise<string> {
  const { pair, shell } = deps;
  // One sync round from the VIP holder first, so what is compared is what
  // the job leaves behind (task list 4.5.2-4.5.3).
  const runOnce = pair.spec.rsync.runOnce;
  let pushed = '';
  if (runOnce && !dryRun) {
    const holders = (
      await Promise.all(
        pair.spec.nodes.map(async (n) =>
          (await deps.keepalived.holdsVip(n.name)) ? n.name : null,
        ),
      )
    ).filter((n): n is string => n !== null);
    if (holders.length === 1) {
      const tries = await syncRound(shell, holders[0]!, runOnce, deps.sleep);
      pushed = `sync round on ${holders[0]}${tries > 1 ? ` (attempt ${tries})` : ''}; `;
    }
  }
  const c = await compareConfigAcrossNodes(syncCtx, { upgradeId });
  return `${pushed}${c.consistent ? 'consistent' : `differ: ${describeDifferences(c.differences)}`}`;
}

/** A push is network work (rsync over ssh to the peer): a round is tried this often before the check fails. */
export const SYNC_ROUND_ATTEMPTS = 3;
const SYNC_ROUND_GAP_MS = 2000;

/**
 * Runs the sync job's one-round command on the VIP holder. A failed round
 * (the peer's sshd slow to accept, a connect timeout on a loaded host) is
 * run again, up to SYNC_ROUND_ATTEMPTS in all, so one hiccup of the job
 * does not roll back a finished upgrade; the last failure is what the step
 * reports. Returns the attempt that succeeded.
 */
async function syncRound(
  shell: ExecutorDeps['shell'],
  node: string,
  runOnce: string,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      await shell.exec(node, ['sh', '-c', runOnce], { timeoutMs: 60_000 });
      return attempt;
    } catch (err) {
      if (attempt >= SYNC_ROUND_ATTEMPTS) {
        if (err instanceof DriverError)
          throw err.within(`running the sync job's round (${attempt} attempts)`);
        throw err;
      }
      await sleep(SYNC_ROUND_GAP_MS);
    }
  }
}

async function restore({ deps, action, ctx, backupCtx, upgradeId, dryRun }: StepEnv) {
  const node = needNode(action);
  // The jar last, as for the install: the observer's "installed version"
  // turns old only once everything else is back.
  const config = await withConfigUnlocked(deps, node, () =>
    restoreBackup(backupCtx, { node, upgradeId, parts: ['config'], dryRun }),
  );
  const out = config.parts.map((p) => `${p.kind} ${p.state}`);
  // The Python service is not in the backup: the install kept the old file.
  const worker = deps.staged.payload.find((p) => p.kind === 'python');
  if (worker)
    out.push(await restoreKept(deps, node, payloadTarget(deps.pair, worker), ctx.fromVersion));
  const restored = await restoreBackup(backupCtx, { node, upgradeId, parts: ['jar'], dryRun });
  out.push(...restored.parts.map((p) => `${p.kind} ${p.state}`));
  if (ctx.restoreDatabase) out.push(await restoreDatabase(deps, backupCtx, upgradeId, dryRun));
  return `set ${restored.set}: ${out.join(', ')}`;
}

/**
 * The dump is in the set of the node that was primary at backup time, and a
 * dump can only be restored into a primary. The rollback restores the node
 * off the VIP first, so the dump is restored when its node is primary while
 * another node is restored: at once when the master never lost the primary,
 * or after the switchover back.
 */
async function restoreDatabase(
  deps: ExecutorDeps,
  backupCtx: BackupContext,
  upgradeId: string,
  dryRun: boolean,
): Promise<string> {
  const primary = await currentPrimary(deps);
  const sets = await listBackupSets(backupCtx, primary);
  const withDump = sets.sets.some(
    (x) =>
      x.manifest.upgradeId === upgradeId && x.manifest.files.some((f) => f.kind === 'database'),
  );
  if (!withDump)
    return `database not restored yet (the primary ${primary} holds no dump of this upgrade)`;
  const db = await restoreBackup(backupCtx, {
    node: primary,
    upgradeId,
    parts: ['database'],
    dryRun,
  });
  return `database ${db.parts[0]?.state ?? 'unchanged'} on ${primary}`;
}

async function removeTempFiles({ deps, action, dryRun }: StepEnv): Promise<string> {
  const { pair, shell } = deps;
  const targets = deps.staged.payload.map((p) => `${payloadTarget(pair, p)}.pairshift-new`);
  const restoreStaging = `${pair.spec.paths.backupDir.replace(/\/+$/, '')}/.restore-*`;
  if (dryRun) return `would remove ${deps.staged.dir} and ${targets.join(', ')}`;
  // a node given: that node only (the other one is lost)
  for (const n of pair.spec.nodes.filter((x) => !action.node || x.name === action.node)) {
    await shell.exec(n.name, [
      'sh',
      '-c',
      // $1: a glob of restore staging folders; the rest: leftover install temp files
      'g=$1; shift; rm -f -- "$@"; for d in $g; do [ -d "$d" ] && rm -rf -- "$d"; done; true',
      'sh',
      restoreStaging,
      ...targets,
    ]);
  }
  await deps.staged.cleanup();
  return `removed ${deps.staged.dir} and install leftovers on ${action.node ?? 'both nodes'}`;
}
