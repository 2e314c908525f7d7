// Restore from a backup set (task list 2.3, rollback). The set is verified
// first: a corrupt or missing file stops the restore before anything on the
// node is touched. Then each part, ensure-style:
// - jar: installed sha256 equal to the backup's -> unchanged; otherwise a
//   copy beside it renamed over it (atomic), then re-hashed;
// - config: unpacked on the node into a staging folder, then rsync -c
//   --delete brings the config dir to exactly the archive (content, numeric
//   owner, mode); a dry run of the same rsync is the observation before and
//   the check after. The root key travels only from the node's disk to the
//   node's disk;
// - database: on the primary, in one transaction, the app's schemas emptied
//   (objects created after the backup would survive a plain pg_restore
//   --clean) and the dump restored. A database cannot be compared with a dump
//   cheaply, so this part always acts (restoring the same dump twice gives
//   the same database) and reports changed.

import { DriverError, whileDoing } from '../errors.js';
import type { BackupKind } from '../records.js';
import { assertBackupSetGood, type BackupContext, isPrimary, listBackupSets } from './backup.js';
import { databaseTools } from './flavour.js';
import { joinPath } from './naming.js';
import type { BackupManifest } from './parse.js';
import { runScript, SHA256_SCRIPT } from './remote.js';
import {
  EMPTY_APP_SCHEMAS_SQL,
  RESTORE_CONFIG_SCRIPT,
  RESTORE_DATABASE_SCRIPT,
  RESTORE_JAR_SCRIPT,
} from './scripts.js';

export interface RestoreOptions {
  readonly node: string;
  /** Which set: by name, or the newest set of this upgrade on the node. */
  readonly set?: string;
  readonly upgradeId?: string;
  /** Parts to restore (default: every part the set holds). */
  readonly parts?: readonly BackupKind[];
  readonly dryRun?: boolean;
}

export interface PartOutcome {
  readonly kind: BackupKind;
  readonly state: 'unchanged' | 'changed';
  /** What differed (file names for the config, hashes for the jar). */
  readonly detail: string;
}

export interface RestoreResult {
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly node: string;
  readonly set: string;
  readonly parts: readonly PartOutcome[];
}

const LONG_MS = 600_000;

export async function restoreBackup(
  ctx: BackupContext,
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const { node } = opts;
  const dryRun = opts.dryRun ?? false;
  const what = opts.set ? `set ${opts.set}` : `the backup of upgrade ${opts.upgradeId}`;
  const doing = `restoring ${what} on node ${node}`;
  try {
    const listing = await listBackupSets(ctx, node);
    const chosen = opts.set
      ? listing.sets.find((s) => s.name === opts.set)
      : listing.sets
          .filter((s) => opts.upgradeId !== undefined && s.manifest.upgradeId === opts.upgradeId)
          .at(-1);
    if (!chosen) {
      const bad = opts.set ? listing.unreadable.find((s) => s.name === opts.set) : undefined;
      throw new DriverError(
        bad
          ? `backup set ${opts.set} cannot be used: ${bad.reason}`
          : `no backup set found for ${what} in ${ctx.pair.spec.paths.backupDir}`,
        { kind: 'terminal', node },
      );
    }
    // verify before touching anything
    const v = await assertBackupSetGood(ctx, node, chosen);
    const parts = opts.parts ?? chosen.manifest.files.map((f) => f.kind);
    const outcomes: PartOutcome[] = [];
    for (const kind of parts) {
      const file = chosen.manifest.files.find((f) => f.kind === kind);
      if (!file) {
        throw new DriverError(`backup set ${chosen.name} holds no ${kind} backup`, {
          kind: 'terminal',
          node,
        });
      }
      const path = joinPath(v.setDir, file.name);
      if (kind === 'jar') outcomes.push(await restoreJar(ctx, node, path, file.sha256, dryRun));
      else if (kind === 'config')
        outcomes.push(await restoreConfig(ctx, node, chosen.name, path, dryRun));
      else outcomes.push(await restoreDatabase(ctx, node, path, dryRun));
    }
    return {
      state: outcomes.some((o) => o.state === 'changed') ? 'changed' : 'unchanged',
      dryRun,
      node,
      set: chosen.name,
      parts: outcomes,
    };
  } catch (err) {
    if (err instanceof DriverError) throw err.within(doing);
    throw new DriverError((err as Error).message, { kind: 'terminal', node, cause: err }, [doing]);
  }
}

async function installedSha256(ctx: BackupContext, node: string, path: string): Promise<string> {
  const r = await runScript(ctx.shell, node, SHA256_SCRIPT, [path]);
  return r.stdout.trim();
}

async function restoreJar(
  ctx: BackupContext,
  node: string,
  backupPath: string,
  sha256: string,
  dryRun: boolean,
): Promise<PartOutcome> {
  const jar = ctx.pair.spec.paths.appJar;
  return whileDoing(
    `restoring the jar ${jar}`,
    async () => {
      const before = await installedSha256(ctx, node, jar);
      if (before === sha256)
        return { kind: 'jar' as const, state: 'unchanged' as const, detail: `sha256 ${sha256}` };
      const detail = `sha256 ${before} -> ${sha256}`;
      if (dryRun) return { kind: 'jar' as const, state: 'changed' as const, detail };
      await runScript(ctx.shell, node, RESTORE_JAR_SCRIPT, [backupPath, jar], {
        timeoutMs: LONG_MS,
      });
      const after = await installedSha256(ctx, node, jar);
      if (after !== sha256)
        throw new Error(`after the restore ${jar} has sha256 ${after}, not ${sha256}`);
      return { kind: 'jar' as const, state: 'changed' as const, detail };
    },
    { kind: 'terminal', node },
  );
}

function itemized(stdout: string): string[] {
  return stdout.split('\n').filter((l) => l.trim() !== '');
}

async function restoreConfig(
  ctx: BackupContext,
  node: string,
  set: string,
  tarPath: string,
  dryRun: boolean,
): Promise<PartOutcome> {
  const { backupDir, configDir } = ctx.pair.spec.paths;
  const staging = joinPath(backupDir, `.restore-${set}`);
  return whileDoing(
    `restoring the config folder ${configDir}`,
    async () => {
      const rsync = (dry: boolean) =>
        runScript(
          ctx.shell,
          node,
          RESTORE_CONFIG_SCRIPT,
          [tarPath, staging, configDir, dry ? '1' : '0'],
          {
            timeoutMs: LONG_MS,
          },
        );
      const diff = itemized((await rsync(true)).stdout);
      if (diff.length === 0)
        return { kind: 'config' as const, state: 'unchanged' as const, detail: '' };
      const detail = diff.join('; ');
      if (dryRun) return { kind: 'config' as const, state: 'changed' as const, detail };
      await rsync(false);
      const left = itemized((await rsync(true)).stdout);
      if (left.length > 0)
        throw new Error(`the config folder still differs after the restore: ${left.join('; ')}`);
      return { kind: 'config' as const, state: 'changed' as const, detail };
    },
    { kind: 'terminal', node },
  );
}

async function restoreDatabase(
  ctx: BackupContext,
  node: string,
  dumpPath: string,
  dryRun: boolean,
): Promise<PartOutcome> {
  const db = ctx.pair.spec.database;
  const tools = databaseTools(db.engine, db.binDir);
  const detail = `${db.name} emptied and restored from the dump (${tools.restore}), in one transaction`;
  // a standby is read-only: say so plainly instead of pg_restore's error
  if (!(await isPrimary(ctx, node))) {
    throw new DriverError(
      `the database on node ${node} is a standby; restore the dump on the primary (copy the set there first if the primary moved)`,
      { kind: 'terminal', node },
    );
  }
  if (dryRun) return { kind: 'database', state: 'changed', detail };
  await whileDoing(
    `restoring database ${db.name} from ${dumpPath}`,
    () =>
      runScript(
        ctx.shell,
        node,
        RESTORE_DATABASE_SCRIPT,
        [
          db.osUser,
          tools.restore,
          db.socketDir ?? '',
          String(db.port),
          db.name,
          dumpPath,
          tools.client,
          EMPTY_APP_SCHEMAS_SQL,
        ],
        { timeoutMs: LONG_MS },
      ),
    { kind: 'terminal', node },
  );
  return { kind: 'database', state: 'changed', detail };
}

export type { BackupManifest };
