// Backups of one node (task list 2.3, 4.1.2-4.1.6): the jar, the config
// folder with the root key (a tar made on the node: content, numeric owner,
// group and mode kept byte-exact; the key never leaves the node), and on the
// primary a full dump of the app database. Each file's MD5 and SHA-256 are
// computed on the node; a set is one folder named by its timestamp, written
// as .partial-<set> and renamed once its manifest is in place, then
// re-hashed and recorded VERIFIED. ensureBackup() is ensure-style: a
// verified set for the same upgrade already on the node means nothing to do.
import { BUILT_IN_DEFAULTS } from '../../config/settings.js';
import type { HAPair } from '../../inventory/hapair.js';
import { DriverError, whileDoing } from '../errors.js';
import type { BackupKind, RecordSink } from '../records.js';
import type { NodeShell } from '../ssh/pool.js';
import { databaseTools } from './flavour.js';
import { backupFileName, freshSetName, joinPath, MANIFEST_NAME, partialName } from './naming.js';
import {
  type BackupListing,
  type BackupManifest,
  compareDigests,
  type FileCheck,
  type ManifestFile,
  parseDigestLines,
  parseListing,
} from './parse.js';
import { DIGEST_SCRIPT, runScript } from './remote.js';
import { setsToDelete } from './retention.js';
import {
  CONFIG_SCRIPT,
  DATABASE_SCRIPT,
  FINALIZE_SCRIPT,
  IN_RECOVERY_SCRIPT,
  JAR_SCRIPT,
  LIST_SCRIPT,
  PREPARE_SCRIPT,
  REMOVE_SCRIPT,
  WRITE_MANIFEST_SCRIPT,
} from './scripts.js';

/** What the backup driver works with; all I/O goes through these. */
export interface BackupContext {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  readonly records: RecordSink;
  readonly now?: () => Date;
  /** Per-command deadline for the long steps (dump, tar, hashing). */
  readonly timeoutMs?: number;
  /**
   * The operator's own record of a backup file's digests (backup_record), if
   * it has one. Verification then compares the node's files with these
   * rather than with the manifest on the node, so a file altered together
   * with its manifest is still caught.
   */
  readonly recordedDigests?: (
    node: string,
    path: string,
  ) => Promise<{ size: number; md5: string; sha256: string } | undefined>;
}

export interface EnsureBackupOptions {
  readonly node: string;
  /** The upgrade this backup belongs to: the key that makes a second run a no-op. */
  readonly upgradeId: string;
  readonly dryRun?: boolean;
  /** Dump the database: true, false, or 'auto' (only if this node is the primary). */
  readonly database?: boolean | 'auto';
  /** Sets to keep (default: settings' backupRetention). */
  readonly retention?: number;
  /** Upgrades still unfinished: their sets are never deleted. */
  readonly protectedUpgrades?: Iterable<string>;
}

export interface EnsureBackupResult {
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly node: string;
  /** The set (name and folder) holding this upgrade's backup; undefined in a dry run that would make one. */
  readonly set: string | undefined;
  readonly setDir: string | undefined;
  readonly files: readonly ManifestFile[];
  readonly deletedSets: readonly string[];
  /** What was done (or, in a dry run, would be). */
  readonly actions: readonly string[];
}

const LONG_MS = 600_000;

function kindLabel(kind: BackupKind): string {
  return kind === 'jar' ? 'the jar' : kind === 'config' ? 'the config folder' : 'the database';
}

export async function listBackupSets(ctx: BackupContext, node: string): Promise<BackupListing> {
  return whileDoing(
    `listing backup sets in ${ctx.pair.spec.paths.backupDir}`,
    async () => {
      const r = await runScript(ctx.shell, node, LIST_SCRIPT, [ctx.pair.spec.paths.backupDir]);
      return parseListing(r.stdout);
    },
    { kind: 'terminal', node },
  );
}

export interface SetVerification {
  readonly set: string;
  readonly setDir: string;
  readonly ok: boolean;
  readonly checks: readonly FileCheck[];
}

/** Why a set failed verification, in one line per file (hashes only). */
export function describeProblems(v: SetVerification): string {
  return v.checks
    .filter((c) => c.state !== 'ok')
    .map((c) =>
      c.state === 'missing'
        ? `${c.name} is missing`
        : `${c.name} is corrupt (recorded sha256 ${c.expected.sha256.slice(0, 16)}… size ${c.expected.size}, found sha256 ${c.found.sha256.slice(0, 16)}… size ${c.found.size})`,
    )
    .join('; ');
}

/**
 * Recomputes every file's digests on the node and compares them with the
 * manifest; records each file VERIFIED, CORRUPT or MISSING.
 */
export async function verifyBackupSet(
  ctx: BackupContext,
  node: string,
  onNode: { name: string; manifest: BackupManifest },
): Promise<SetVerification> {
  const setDir = joinPath(ctx.pair.spec.paths.backupDir, onNode.name);
  const set = {
    name: onNode.name,
    manifest: await withRecordedDigests(ctx, node, setDir, onNode.manifest),
  };
  const found = await whileDoing(
    `hashing backup set ${set.name}`,
    async () => {
      const paths = set.manifest.files.map((f) => joinPath(setDir, f.name));
      const r = await runScript(ctx.shell, node, DIGEST_SCRIPT, paths, {
        timeoutMs: ctx.timeoutMs ?? LONG_MS,
      });
      return parseDigestLines(r.stdout);
    },
    { kind: 'terminal', node },
  );
  const checks = compareDigests(set.manifest, setDir, found);
  const at = (ctx.now ?? (() => new Date()))();
  for (const f of set.manifest.files) {
    const c = checks.find((x) => x.name === f.name)!;
    const state = c.state === 'ok' ? 'VERIFIED' : c.state === 'missing' ? 'MISSING' : 'CORRUPT';
    await ctx.records.backup({
      upgradeId: set.manifest.upgradeId,
      node,
      kind: f.kind,
      path: joinPath(setDir, f.name),
      sizeBytes: f.size,
      md5: f.md5,
      sha256: f.sha256,
      state,
      createdAt: new Date(set.manifest.createdAt),
      verifiedAt: state === 'VERIFIED' ? at : null,
    });
  }
  return { set: set.name, setDir, ok: checks.every((c) => c.state === 'ok'), checks };
}

/** The manifest with each file's digests replaced by the operator's record of them, where it has one. */
async function withRecordedDigests(
  ctx: BackupContext,
  node: string,
  setDir: string,
  manifest: BackupManifest,
): Promise<BackupManifest> {
  const lookup = ctx.recordedDigests;
  if (!lookup) return manifest;
  const files: ManifestFile[] = [];
  for (const f of manifest.files) {
    const r = await lookup(node, joinPath(setDir, f.name));
    files.push(r ? { ...f, size: r.size, md5: r.md5, sha256: r.sha256 } : f);
  }
  return { ...manifest, files };
}

/** verifyBackupSet, then a terminal error naming the node, the set and each bad file. */
export async function assertBackupSetGood(
  ctx: BackupContext,
  node: string,
  set: { name: string; manifest: BackupManifest },
): Promise<SetVerification> {
  const v = await verifyBackupSet(ctx, node, set);
  if (!v.ok) {
    throw new DriverError(`backup set ${v.setDir} failed verification: ${describeProblems(v)}`, {
      kind: 'terminal',
      node,
    });
  }
  return v;
}

/** Whether the node's database is the primary (not in recovery). */
export async function isPrimary(ctx: BackupContext, node: string): Promise<boolean> {
  const db = ctx.pair.spec.database;
  const tools = databaseTools(db.engine, db.binDir);
  return whileDoing(
    'asking the database whether it is the primary',
    async () => {
      const r = await runScript(ctx.shell, node, IN_RECOVERY_SCRIPT, [
        db.osUser,
        tools.client,
        db.socketDir ?? '',
        String(db.port),
      ]);
      const v = r.stdout.trim();
      if (v !== 't' && v !== 'f') throw new Error(`unexpected answer ${JSON.stringify(v)}`);
      return v === 'f';
    },
    { kind: 'transient', node },
  );
}

interface Step {
  readonly kind: BackupKind;
  readonly source: string;
  readonly script: string;
  readonly args: (dest: string) => string[];
}

function steps(pair: HAPair, withDatabase: boolean): Step[] {
  const { paths, database: db } = pair.spec;
  const out: Step[] = [
    { kind: 'jar', source: paths.appJar, script: JAR_SCRIPT, args: (d) => [paths.appJar, d] },
    {
      kind: 'config',
      source: paths.configDir,
      script: CONFIG_SCRIPT,
      args: (d) => [paths.configDir, d],
    },
  ];
  if (withDatabase) {
    const tools = databaseTools(db.engine, db.binDir);
    out.push({
      kind: 'database',
      source: `database ${db.name}`,
      script: DATABASE_SCRIPT,
      args: (d) => [db.osUser, tools.dump, db.socketDir ?? '', String(db.port), db.name, d],
    });
  }
  return out;
}

export async function ensureBackup(
  ctx: BackupContext,
  opts: EnsureBackupOptions,
): Promise<EnsureBackupResult> {
  const { node, upgradeId } = opts;
  const dryRun = opts.dryRun ?? false;
  const backupDir = ctx.pair.spec.paths.backupDir;
  const now = ctx.now ?? (() => new Date());
  const keep = opts.retention ?? BUILT_IN_DEFAULTS.backupRetention;
  const protectedUpgrades = new Set([upgradeId, ...(opts.protectedUpgrades ?? [])]);
  const doing = `backing up node ${node} for upgrade ${upgradeId}`;

  try {
    // observe
    const listing = await listBackupSets(ctx, node);
    const mine = listing.sets.filter(
      (s) => s.manifest.upgradeId === upgradeId && s.manifest.node === node,
    );
    const existing = mine.at(-1);
    const actions: string[] = [];

    if (existing) {
      // compare: the set is there; it must still be intact
      const v = await assertBackupSetGood(ctx, node, existing);
      const deleted = await applyRetention(ctx, node, listing, {
        keep,
        protectedSets: new Set([existing.name]),
        protectedUpgrades,
        dryRun,
        actions,
      });
      return {
        state: deleted.length > 0 || listing.partial.length > 0 ? 'changed' : 'unchanged',
        dryRun,
        node,
        set: existing.name,
        setDir: v.setDir,
        files: existing.manifest.files,
        deletedSets: deleted,
        actions,
      };
    }

    const withDatabase =
      opts.database === 'auto' || opts.database === undefined
        ? await isPrimary(ctx, node)
        : opts.database;
    const plan = steps(ctx.pair, withDatabase);
    const taken = new Set([
      ...listing.sets.map((s) => s.name),
      ...listing.unreadable.map((s) => s.name),
    ]);
    const createdAt = now();
    const set = freshSetName(createdAt, taken);
    const setDir = joinPath(backupDir, set);
    for (const s of plan)
      actions.push(
        `back up ${kindLabel(s.kind)} to ${joinPath(setDir, backupFileName(s.kind, set))}`,
      );
    if (dryRun) {
      const wouldDelete = setsToDelete(
        [
          ...listing.sets.map((s) => ({ name: s.name, upgradeId: s.manifest.upgradeId })),
          { name: set, upgradeId },
        ],
        { keep, protectedSets: new Set([set]), protectedUpgrades },
      );
      for (const n of wouldDelete) actions.push(`delete old backup set ${n}`);
      return {
        state: 'changed',
        dryRun,
        node,
        set: undefined,
        setDir: undefined,
        files: [],
        deletedSets: wouldDelete,
        actions,
      };
    }

    // act
    const manifest = await createSet(ctx, node, upgradeId, set, createdAt, plan);
    // observe again: the set as it is on disk now
    const v = await assertBackupSetGood(ctx, node, { name: set, manifest });
    const listingAfter = await listBackupSets(ctx, node);
    const deleted = await applyRetention(ctx, node, listingAfter, {
      keep,
      protectedSets: new Set([set]),
      protectedUpgrades,
      dryRun,
      actions,
    });
    return {
      state: 'changed',
      dryRun,
      node,
      set,
      setDir: v.setDir,
      files: manifest.files,
      deletedSets: deleted,
      actions,
    };
  } catch (err) {
    if (err instanceof DriverError) throw err.within(doing);
    throw new DriverError((err as Error).message, { kind: 'terminal', node, cause: err }, [doing]);
  }
}

async function createSet(
  ctx: BackupContext,
  node: string,
  upgradeId: string,
  set: string,
  createdAt: Date,
  plan: Step[],
): Promise<BackupManifest> {
  const backupDir = ctx.pair.spec.paths.backupDir;
  const partialDir = joinPath(backupDir, partialName(set));
  const setDir = joinPath(backupDir, set);
  const long = { timeoutMs: ctx.timeoutMs ?? LONG_MS };
  // rows first, as CREATING: a crash leaves a visible trace, never a "good" row
  const ids = new Map<BackupKind, number>();
  for (const s of plan) {
    ids.set(
      s.kind,
      await ctx.records.backup({
        upgradeId,
        node,
        kind: s.kind,
        path: joinPath(setDir, backupFileName(s.kind, set)),
        sizeBytes: null,
        md5: null,
        sha256: null,
        state: 'CREATING',
        createdAt,
      }),
    );
  }
  try {
    await whileDoing(
      `preparing ${partialDir}`,
      () => runScript(ctx.shell, node, PREPARE_SCRIPT, [backupDir, partialDir]),
      { kind: 'terminal', node },
    );
    const files: ManifestFile[] = [];
    for (const s of plan) {
      const name = backupFileName(s.kind, set);
      const dest = joinPath(partialDir, name);
      await whileDoing(
        `backing up ${kindLabel(s.kind)} (${s.source}) to ${dest}`,
        () => runScript(ctx.shell, node, s.script, s.args(dest), long),
        { kind: 'terminal', node },
      );
      const d = await whileDoing(
        `hashing ${dest}`,
        async () => {
          const r = await runScript(ctx.shell, node, DIGEST_SCRIPT, [dest], long);
          const parsed = parseDigestLines(r.stdout);
          if (parsed.digests.length !== 1) throw new Error(`${dest} vanished before it was hashed`);
          return parsed.digests[0]!;
        },
        { kind: 'terminal', node },
      );
      files.push({
        kind: s.kind,
        name,
        source: s.source,
        size: d.size,
        md5: d.md5,
        sha256: d.sha256,
      });
    }
    const manifest: BackupManifest = {
      format: 'pairshift-backup/1',
      set,
      node,
      upgradeId,
      createdAt: createdAt.toISOString(),
      files,
    };
    await whileDoing(
      'writing the backup manifest',
      () =>
        runScript(ctx.shell, node, WRITE_MANIFEST_SCRIPT, [joinPath(partialDir, MANIFEST_NAME)], {
          stdin: `${JSON.stringify(manifest)}\n`,
        }),
      { kind: 'terminal', node },
    );
    await whileDoing(
      `renaming ${partialDir} to ${setDir}`,
      () => runScript(ctx.shell, node, FINALIZE_SCRIPT, [partialDir, setDir]),
      { kind: 'terminal', node },
    );
    for (const f of files) {
      await ctx.records.backup({
        upgradeId,
        node,
        kind: f.kind,
        path: joinPath(setDir, f.name),
        sizeBytes: f.size,
        md5: f.md5,
        sha256: f.sha256,
        state: 'CREATED',
        createdAt,
      });
    }
    return manifest;
  } catch (err) {
    // Leave nothing half-written behind, and no row that looks good.
    await runScript(ctx.shell, node, REMOVE_SCRIPT, [partialDir]).catch(() => undefined);
    for (const id of ids.values()) await ctx.records.updateBackupState(id, 'MISSING');
    throw err;
  }
}

async function applyRetention(
  ctx: BackupContext,
  node: string,
  listing: BackupListing,
  o: {
    keep: number;
    protectedSets: ReadonlySet<string>;
    protectedUpgrades: ReadonlySet<string>;
    dryRun: boolean;
    actions: string[];
  },
): Promise<string[]> {
  const backupDir = ctx.pair.spec.paths.backupDir;
  const doomed = setsToDelete(
    listing.sets.map((s) => ({ name: s.name, upgradeId: s.manifest.upgradeId })),
    o,
  );
  // leftovers of a run that died half-way: never recorded as good, so they go
  for (const p of listing.partial) o.actions.push(`remove unfinished ${p}`);
  for (const n of doomed) o.actions.push(`delete old backup set ${n}`);
  if (o.dryRun) return doomed;
  if (listing.partial.length > 0) {
    await whileDoing(
      'removing unfinished backup sets',
      () =>
        runScript(
          ctx.shell,
          node,
          REMOVE_SCRIPT,
          listing.partial.map((p) => joinPath(backupDir, p)),
        ),
      { kind: 'terminal', node },
    );
  }
  for (const name of doomed) {
    const s = listing.sets.find((x) => x.name === name)!;
    const setDir = joinPath(backupDir, name);
    await whileDoing(
      `deleting old backup set ${setDir}`,
      () => runScript(ctx.shell, node, REMOVE_SCRIPT, [setDir]),
      { kind: 'terminal', node },
    );
    for (const f of s.manifest.files) {
      const id = await ctx.records.backup({
        upgradeId: s.manifest.upgradeId,
        node,
        kind: f.kind,
        path: joinPath(setDir, f.name),
        sizeBytes: f.size,
        md5: f.md5,
        sha256: f.sha256,
        state: 'DELETED',
        createdAt: new Date(s.manifest.createdAt),
      });
      await ctx.records.updateBackupState(id, 'DELETED');
    }
  }
  return doomed;
}
