// The real operator against a real lab pair, for the end-to-end tests, the
// SIGKILL test and bench/upgrade.ts: a lab brought up, signed packages built
// with the lab's key, a manifests folder and an embedded store, the operator
// run in-process (startOperator) or as a child process (`pairshift operator`,
// so it can be SIGKILLed), a client prober from the lab's client namespace,
// readers of what the operator recorded, and checks of the pair itself.
// Everything goes through what a user has: the inventory `lab up` wrote, the
// manifests, the store, the nodes over SSH and the VIP from outside.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from '../../src/config/settings.js';
import type { PairObservation } from '../../src/core/observed.js';
import { isTerminal } from '../../src/core/phases.js';
import type {
  UpgradeRequest,
  UpgradeRequestSpec,
  UpgradeRequestStatus,
} from '../../src/core/upgrade-request.js';
import { listBackupSets } from '../../src/drivers/backup/index.js';
import { compareConfigAcrossNodes } from '../../src/drivers/config-sync/compare.js';
import { rsyncStatus } from '../../src/drivers/config-sync/sync.js';
import { pairHealthProbe } from '../../src/drivers/health/probes.js';
import { KeepalivedDriver } from '../../src/drivers/keepalived/driver.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import {
  buildLabPackage,
  ensureLabSigningKey,
  type LabPackage,
} from '../../src/lab/app/releases.js';
import { execArgv, labDown, labUp } from '../../src/lab/index.js';
import { run, sleep } from '../../src/lab/run.js';
import { createLogger } from '../../src/log/logger.js';
import { type RunningOperator, startOperator } from '../../src/operator/operator.js';
import { loadTrustedKey } from '../../src/packages/signing.js';
import { observePair } from '../../src/reconciler/observe.js';
import { ResourceConflictError } from '../../src/reconciler/source.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { loadMemory } from '../../src/store/journal-store.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { listSteps, type ProgressRow } from '../../src/store/progress-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { type HistoryEntry, listHistory } from '../../src/store/upgrades.js';
import { appPsqlArgv } from '../support/lab-psql.js';

/** The checkout (this file also runs compiled under .pairshift/bench-build for the bench). */
const REPO = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'bin/pairshift.js')) || !existsSync(join(dir, 'tsconfig.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the pairshift checkout (bin/pairshift.js)');
    dir = up;
  }
  return dir;
})();
const PAIRSHIFT_BIN = join(REPO, 'bin/pairshift.js');

/** Operator settings for the lab: a failed health poll is retried after 2 s, not 10 s. */
export const LAB_SETTINGS: UpgradeSettings = { ...BUILT_IN_DEFAULTS, healthCheckInterval: 2000 };

export type NodeName = 'a' | 'b';

export interface Packages {
  readonly v2: LabPackage;
  readonly broken: LabPackage;
  readonly publicKeyPath: string;
}

/** Builds dist/ (the prober and the operator CLI run from it); tsc emits despite others' type errors. */
export function buildDist(): void {
  spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
  if (!existsSync(join(REPO, 'dist/cli/main.js')))
    throw new Error('npm run build did not produce dist/cli/main.js');
}

export class OperatorLab {
  readonly work: string;
  readonly manifests: string;
  pair!: HAPair;
  inventoryPath!: string;
  shell!: SshPool;
  packages!: Packages;
  #storeN = 0;
  /** Operator children still running: a failed test must not leave one behind (it would keep jest alive). */
  readonly #children = new Set<ChildProcess>();

  constructor(readonly name: string) {
    this.work = mkdtempSync(join(tmpdir(), `pairshift-${name}-e2e-`));
    this.manifests = join(this.work, 'manifests');
    mkdirSync(this.manifests);
  }

  /** lab down (leftovers) then up: a fresh pair on 1.0.0 with the VIP on a. */
  async up(): Promise<void> {
    await this.#claim();
    await this.shell?.close();
    await labDown({ name: this.name });
    const up = await labUp({ name: this.name });
    this.inventoryPath = up.inventory;
    this.pair = await loadHAPair(up.inventory);
    this.shell = new SshPool(await sshEndpoints(this.pair));
    copyFileSync(up.inventory, join(this.manifests, 'hapair.yaml'));
  }

  async down(): Promise<void> {
    await this.shell?.close();
    await labDown({ name: this.name });
    this.#release();
  }

  /**
   * Only one process at a time may drive a lab of this name: another
   * checkout (a CI clone) running the same test brings the same lab down
   * and up under this one's feet. The claim is a folder holding the owner's
   * pid, made atomically; a dead owner's claim is taken over.
   */
  async #claim(): Promise<void> {
    const dir = join(tmpdir(), `pairshift-lab-claim-${this.name}`);
    const deadline = Date.now() + 30 * 60_000;
    for (let said = false; ; ) {
      try {
        mkdirSync(dir);
        writeFileSync(join(dir, 'pid'), String(process.pid));
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = Number(readFileSync(join(dir, 'pid'), 'utf8').trim() || '0');
      if (owner === process.pid) return;
      if (!owner || !alive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new Error(`lab ${this.name} is still driven by process ${owner}`);
      if (!said) console.log(`lab ${this.name} is in use by process ${owner}; waiting`);
      said = true;
      await sleep(5000);
    }
  }

  #release(): void {
    const dir = join(tmpdir(), `pairshift-lab-claim-${this.name}`);
    try {
      if (Number(readFileSync(join(dir, 'pid'), 'utf8')) === process.pid)
        rmSync(dir, { recursive: true, force: true });
    } catch {
      // not claimed
    }
  }

  /** Down, and the work folder removed (kept with PAIRSHIFT_KEEP_WORK=1: operator.log is in it). */
  async dispose(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    await this.down();
    if (process.env.PAIRSHIFT_KEEP_WORK === '1') console.log(`work folder kept: ${this.work}`);
    else rmSync(this.work, { recursive: true, force: true });
  }

  /** Signed 2.0.0 and broken 4.0.0 packages, signed with the lab's key (built once). */
  async buildPackages(): Promise<Packages> {
    if (this.packages) return this.packages;
    const pub = this.pair.metadata.annotations?.['pairshift.io/lab-package-public-key'];
    if (!pub) throw new Error('the lab inventory names no package signing key');
    const keys = await ensureLabSigningKey(dirname(pub));
    const common = { outDir: join(this.work, 'packages'), signingKey: keys.privateKeyPath };
    const v2 = await buildLabPackage({ ...common, version: '2.0.0' });
    const broken = await buildLabPackage({ ...common, version: '4.0.0', broken: true });
    // The operator trusts a copy: a later `lab down` + `up` may make the lab a new key.
    const publicKeyPath = join(this.work, 'package-signing.pub');
    copyFileSync(keys.publicKeyPath, publicKeyPath);
    this.packages = { v2, broken, publicKeyPath };
    return this.packages;
  }

  /** A fresh, migrated embedded store folder. */
  async newStore(): Promise<{ dir: string; db: SqlClient }> {
    const dir = join(this.work, `store-${++this.#storeN}`);
    const db = await openPglite(dir);
    await migrate(db);
    return { dir, db };
  }

  /** Writes the UpgradeRequest manifest (what a user or a GitOps tool commits). */
  writeRequest(name: string, pkg: LabPackage, extra: Partial<UpgradeRequestSpec> = {}): void {
    const spec: UpgradeRequestSpec = {
      pairRef: { name: this.pair.metadata.name },
      package: { path: pkg.packagePath, version: pkg.version },
      ...extra,
    };
    const doc = {
      apiVersion: 'pairshift.io/v1alpha1',
      kind: 'UpgradeRequest',
      metadata: { name },
      spec,
    };
    // JSON is YAML; one file per request, replaced atomically enough for fs.watch
    writeFileSync(join(this.manifests, `${name}.yaml`), `${JSON.stringify(doc, null, 2)}\n`);
  }

  /** Removes a request's manifest (between cases: a finished request is then forgotten). */
  removeRequest(name: string): void {
    rmSync(join(this.manifests, `${name}.yaml`), { force: true });
  }

  /** The operator in this process, on db; with its source for spec patches. */
  async startInProcess(db: SqlClient): Promise<InProcessOperator> {
    const source = new StandaloneSource({ db, manifestsDir: this.manifests, resyncMs: 5000 });
    const operator = await startOperator({
      db,
      source,
      settings: LAB_SETTINGS,
      // kept in the work folder for a failing case (removed with it)
      logger: createLogger({
        stream: createWriteStream(join(this.work, 'operator.log'), { flags: 'a' }),
        format: 'json',
        level: 'debug',
      }),
      trustedKeys: [await loadTrustedKey(this.packages.publicKeyPath)],
      workDir: join(this.work, 'stage'),
    });
    return new InProcessOperator(db, source, operator);
  }

  /**
   * `pairshift operator` as a child process on the store folder dir. With
   * killAfterActions it SIGKILLs itself after that many recorded actions.
   */
  startChild(
    dir: string,
    opts: { killAfterActions?: number; args?: readonly string[] } = {},
  ): ChildOperator {
    const child = spawn(
      process.execPath,
      [
        PAIRSHIFT_BIN,
        'operator',
        '--data-dir',
        dir,
        '--manifests',
        this.manifests,
        '--trusted-key',
        this.packages.publicKeyPath,
        '--work-dir',
        join(this.work, 'stage'),
        ...(opts.args ?? []),
      ],
      {
        cwd: REPO,
        env: {
          ...process.env,
          PAIRSHIFT_UPGRADE_HEALTH_CHECK_INTERVAL: '2s',
          ...(opts.killAfterActions
            ? { PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS: String(opts.killAfterActions) }
            : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    // every run's log, one after the other, for a failing case
    const log = createWriteStream(join(this.work, 'operator-child.log'), { flags: 'a' });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return new ChildOperator(child);
  }

  /** The prober CLI from the client namespace through the VIP: HTTP /health and numbered writes. */
  startClientProber(rateHz = 50, httpTimeoutMs = 1000): ClientProber {
    const vip = this.pair.spec.vip.address;
    const dbUrl = (host: string) => `postgres://${this.pair.spec.database.user}@${host}:5432/app`;
    const [cmd, ...args] = execArgv(this.name, 'client', [
      'env',
      `PGPASSFILE=${this.pair.spec.database.passFile}`,
      process.execPath,
      PAIRSHIFT_BIN,
      'probe',
      '--http',
      `http://${vip}:8080/health`,
      '--db',
      dbUrl(vip),
      ...this.pair.spec.nodes.flatMap((n) => ['--verify-db', dbUrl(n.address)]),
      '--rate-hz',
      String(rateHz),
      '--http-timeout-ms',
      String(httpTimeoutMs),
      '--duration',
      '3600',
      '--output',
      'json',
    ]);
    return new ClientProber(spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Run argv in a node's namespace or the client's (the test's own view, not over ssh). */
  async inLab(target: NodeName | 'client', argv: string[], allowFail = false) {
    const [cmd, ...args] = execArgv(this.name, target, argv);
    return run(cmd!, args, { allowFail, timeoutMs: 60_000 });
  }

  async psql(node: NodeName, sql: string): Promise<string> {
    const r = await this.inLab(node, appPsqlArgv(sql));
    return r.stdout.trim();
  }

  /** What the operator's observer sees now. */
  observe(compareConfig = true): Promise<PairObservation> {
    return observePair(
      {
        pair: this.pair,
        shell: this.shell,
        healthProbe: pairHealthProbe(this.pair, { via: 'http' }),
        keepalived: new KeepalivedDriver({ shell: this.shell, pair: this.pair }),
        migrations: [],
      },
      { compareConfig },
    );
  }

  /** /version of each node, straight at its address. */
  async versions(): Promise<Record<string, string | null>> {
    const out: Record<string, string | null> = {};
    for (const n of this.pair.spec.nodes) {
      try {
        const r = await fetch(`http://${n.address}:8080/version`, {
          signal: AbortSignal.timeout(3000),
        });
        out[n.name] = r.ok ? (await r.text()).trim() : null;
      } catch {
        out[n.name] = null;
      }
    }
    return out;
  }

  /**
   * Everything the tests assert about a pair at rest, read from the nodes.
   * A read that missed something a pair at rest has (no primary found, the
   * migration ledger unreadable, no healthy VIP holder: the observer's
   * probes time out on a loaded machine) is taken again, a few times, so a
   * slow probe is not reported as a broken pair; what persists is returned.
   */
  async pairState(attempts = 4): Promise<PairState> {
    let state = await this.#readPairState();
    for (let i = 1; i < attempts && !looksAtRest(state); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      state = await this.#readPairState();
    }
    return state;
  }

  async #readPairState(): Promise<PairState & { migrationsRead: boolean }> {
    const observed = await this.observe(false);
    const primary = observed.nodes.find((n) => n.dbRole === 'primary')?.name as
      | NodeName
      | undefined;
    let migrationsRead = primary !== undefined;
    const migrations = primary
      ? (
          await this.psql(
            primary,
            "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM pairshift_schema_migrations",
          ).catch(() => {
            migrationsRead = false;
            return '';
          })
        )
          .split(',')
          .filter(Boolean)
      : [];
    const replication = primary
      ? await this.psql(primary, 'SELECT state FROM pg_stat_replication').catch(() => '')
      : '';
    const rsync: Record<string, { paused: boolean; state: string }> = {};
    for (const n of this.pair.spec.nodes) {
      const s = await rsyncStatus(
        { pair: this.pair, shell: this.shell, records: new MemoryRecords() },
        n.name,
      );
      rsync[n.name] = { paused: s.paused, state: s.state };
    }
    const config = await compareConfigAcrossNodes({
      pair: this.pair,
      shell: this.shell,
      records: new MemoryRecords(),
    });
    const vip = await this.inLab(
      'client',
      ['curl', '-s', '--max-time', '3', `http://${this.pair.spec.vip.address}:8080/version`],
      true,
    );
    return {
      versions: await this.versions(),
      vipHolders: observed.nodes.filter((n) => n.holdsVip).map((n) => n.name),
      vipHolderHealthy: observed.nodes.some((n) => n.holdsVip && n.healthy && n.servicesRunning),
      vipVersion: vip.stdout.trim() || null,
      primary: primary ?? null,
      migrations,
      migrationsRead,
      replication: replication.split('\n').filter(Boolean),
      rsync,
      configConsistent: config.consistent,
      configDifferences: config.differences.map((d) => `${d.path}: ${d.reason}`),
    };
  }

  /** Backup sets on a node that belong to this upgrade (from the sets' manifests). */
  async backupSetsOf(node: NodeName, upgradeId: string): Promise<string[]> {
    const l = await listBackupSets(
      { pair: this.pair, shell: this.shell, records: new MemoryRecords() },
      node,
    );
    return l.sets.filter((s) => s.manifest.upgradeId === upgradeId).map((s) => s.name);
  }

  /** Cuts the operator host off from node (SSH and HTTP hang, as with a frozen node); returns the undo. */
  async isolate(node: NodeName): Promise<() => Promise<void>> {
    const uplink = this.pair.spec.nodes[0]!.address.replace(/\.\d+$/, '.1');
    await this.inLab(node, ['ip', 'route', 'add', 'blackhole', `${uplink}/32`]);
    return async () => {
      await this.inLab(node, ['ip', 'route', 'del', 'blackhole', `${uplink}/32`], true);
      // connections that were open across the cut may hang: start afresh
      await this.shell.close();
      this.shell = new SshPool(await sshEndpoints(this.pair));
    };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface PairState {
  versions: Record<string, string | null>;
  vipHolders: string[];
  vipHolderHealthy: boolean;
  vipVersion: string | null;
  primary: NodeName | null;
  migrations: string[];
  replication: string[];
  rsync: Record<string, { paused: boolean; state: string }>;
  configConsistent: boolean;
  configDifferences: string[];
}

export class InProcessOperator {
  constructor(
    readonly db: SqlClient,
    readonly source: StandaloneSource,
    readonly operator: RunningOperator,
  ) {}

  status(name: string): Promise<UpgradeRequestStatus | undefined> {
    return this.source.getUpgradeRequest(name).then((r) => r?.status);
  }

  /** The phase the operator has recorded (the journal), ahead of the published status. */
  async phase(name: string): Promise<string | null> {
    return (await loadMemory(this.db, name))?.context.phase ?? null;
  }

  /** Sets spec fields (cancel, rollback) in the store; retried on a status write racing it. */
  async patchSpec(name: string, patch: Partial<UpgradeRequestSpec>): Promise<UpgradeRequest> {
    for (let i = 0; ; i++) {
      try {
        return await this.source.patchSpec(name, patch);
      } catch (err) {
        if (!(err instanceof ResourceConflictError) || i > 50) throw err;
        await sleep(20);
      }
    }
  }

  /** Resolves with the final request once its phase is terminal and finishedAt set. */
  async waitTerminal(name: string, timeoutMs: number): Promise<UpgradeRequest> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.source.getUpgradeRequest(name);
      if (r?.status && isTerminal(r.status.phase) && r.status.finishedAt) return r;
      if (Date.now() > deadline)
        throw new Error(`${name} still ${r?.status?.phase ?? 'not started'} after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  /** Polls the recorded phase every 50 ms until it is one of phases (or terminal). */
  async waitPhase(name: string, phases: readonly string[], timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await this.phase(name);
      if (p && (phases.includes(p) || isTerminal(p as never))) return p;
      if (Date.now() > deadline) throw new Error(`${name} did not reach ${phases.join('/')}`);
      await sleep(50);
    }
  }

  stop(): Promise<void> {
    return this.operator.stop();
  }
}

export class ChildOperator {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  /** Every line of its output (stdout and stderr), for waitFor. */
  readonly lines: string[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    for (const stream of [child.stdout!, child.stderr!]) {
      let rest = '';
      stream.on('data', (d: Buffer | string) => {
        const parts = (rest + d.toString()).split('\n');
        rest = parts.pop()!;
        this.lines.push(...parts);
        for (const w of this.#waiters) w();
      });
    }
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }

  /** The first output line matching re (already printed or to come); rejects on exit or timeout. */
  waitFor(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find((l) => re.test(l));
        if (hit === undefined) return;
        done();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no line matching ${re} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.exited.then(() => {
        check();
        done();
        reject(new Error(`the operator exited before a line matching ${re}`));
      });
      this.#waiters.add(check);
      check();
    });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the prober's JSON report
export type ProbeReport = any;

export class ClientProber {
  #out = '';
  #err = '';
  #started = false;
  readonly #exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.#out += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.#err = (this.#err + d).slice(-2000);
      if (this.#err.includes('probe: started')) this.#started = true;
    });
    this.#exited = new Promise((r) => child.once('close', (code) => r(code)));
  }

  /** Resolves once the prober says its probes run (its "probe: started" line), or rejects after timeoutMs. */
  async started(timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.#started) {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`the prober exited before it started: ${this.#err.slice(-500)}`);
      if (Date.now() > until)
        throw new Error(
          `the prober did not start within ${timeoutMs} ms: ${this.#err.slice(-500)}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops it (SIGTERM: it verifies every acknowledged write on both nodes) and returns its report. */
  async stop(): Promise<ProbeReport> {
    this.child.kill('SIGTERM');
    const code = await this.#exited;
    try {
      return JSON.parse(this.#out);
    } catch {
      throw new Error(`prober gave no JSON (exit ${code}): ${this.#err.slice(-500)}`);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** The one-line summary of a probe report for test output and the bench. */
export function clientFigures(p: ProbeReport): ClientFigures {
  return {
    httpLongestMs: p.http?.longestOutageMs ?? null,
    writeLongestMs: p.db?.longestOutageMs ?? null,
    acked: p.db?.writes?.acked ?? 0,
    lost: p.verification && !('error' in p.verification) ? p.verification.lostAcknowledged : null,
    missingPerNode: Object.fromEntries(
      (p.verification?.nodes ?? []).map((n: { node: string; missingAcked: number[] }) => [
        n.node,
        n.missingAcked.length,
      ]),
    ),
  };
}

export interface ClientFigures {
  httpLongestMs: number | null;
  writeLongestMs: number | null;
  acked: number;
  /** Acknowledged writes missing on at least one node; null: the verification itself failed. */
  lost: number | null;
  /** Acknowledged writes missing, per node (where the loss is). */
  missingPerNode: Record<string, number>;
}

export async function historyOf(db: SqlClient, upgradeId: string): Promise<HistoryEntry[]> {
  return (await listHistory(db, 1, 500, { upgradeId })).items.reverse();
}

export function stepsOf(db: SqlClient, upgradeId: string): Promise<ProgressRow[]> {
  return listSteps(db, upgradeId);
}

/** A pair at rest has a primary whose ledger was read and one healthy VIP holder. */
function looksAtRest(s: PairState & { migrationsRead: boolean }): boolean {
  return s.primary !== null && s.migrationsRead && s.vipHolders.length === 1 && s.vipHolderHealthy;
}

/** Time spent in each phase, from the recorded history. */
export function phaseDurations(history: readonly HistoryEntry[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < history.length; i++) {
    const p = history[i]!.to;
    out[p] = (out[p] ?? 0) + (history[i + 1]!.at.getTime() - history[i]!.at.getTime());
  }
  return out;
}

export async function vipSwitches(
  db: SqlClient,
  upgradeId: string,
): Promise<{ from_node: string; to_node: string; result: string; duration_ms: number | null }[]> {
  return db.query(
    'SELECT from_node, to_node, result, duration_ms FROM vip_switch_record WHERE upgrade_id = $1 ORDER BY id',
    [upgradeId],
  );
}

/** Reads a child operator's store between runs (the embedded store is single-process). */
export async function withStore<T>(dir: string, fn: (db: SqlClient) => Promise<T>): Promise<T> {
  const db = await openPglite(dir);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export { sleep };
