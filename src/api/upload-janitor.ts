// Removes upload folders nobody needs any more. An accepted upload
// (upload.ts) stays in its folder under the work folder while its upgrade
// runs: the UpgradeRequest's package.path points into it. The folder goes
//   - when that upgrade reaches a terminal phase, or its UpgradeRequest is
//     gone (checked on every pass while the operator runs);
//   - at operator start (before the API accepts uploads), also when no
//     upgrade refers to it: an upload cut short by a killed operator, or a
//     folder whose upgrade was deleted while the operator was down.
// While running, a folder no upgrade refers to yet is left alone: it may be
// an upload in progress (a refused one is removed by upload.ts itself), and
// only after a day of nobody claiming it is it removed as abandoned.
//
// Replicas sharing the folder (deploy/overlays/ha; `presence` given): the
// start-up rule above would remove another replica's upload in progress, so
// a folder no upgrade refers to is judged by its owner (upload-replicas.ts:
// each upload folder names the replica process that made it, each replica
// keeps a heartbeat marker in the folder), in either pass:
//   - owner running (its marker fresh, same start): an upload in progress,
//     kept (removed as abandoned after a day, as above);
//   - owner gone (no fresh marker, or the marker of a later start of that
//     replica, which is how a restarted replica's own cut-short uploads go
//     at its start-up sweep): removed;
//   - no owner file: kept for OWNERLESS_GRACE_MS (the owner file is written
//     right after the folder is made), then removed.
// Which upgrades refer to which folder comes from the source, which both
// replicas share (the Kubernetes API): an upgrade of either replica keeps its
// folder on both.
//
// judgeUploadFolders is the whole decision, pure; UploadJanitor does the I/O
// (list the folder, list the UpgradeRequests, remove) and never removes
// anything when the listing fails.
import { lstat, readdir, rm } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { auditTime, EMPTY, merge, type Observable, type Subscription, timer } from 'rxjs';
import { isTerminal, type Phase } from '../core/phases.js';
import type { UpgradeRequest } from '../core/upgrade-request.js';
import type { ResourceSource } from '../reconciler/source.js';
import { type ReplicaPresence, type ReplicaSelf, readOwner } from './upload-replicas.js';

/**
 * Upload folders are `mkdtemp(workDir/upload_)`: an UpgradeRequest name
 * (DNS-1123: lowercase, digits, '-', '.') never contains '_', so the
 * operator's per-upgrade work folders (workDir/<upgrade name>) cannot be
 * mistaken for uploads. Folders from before this change are `upload-XXXXXX`
 * (LEGACY); those are judged too, unless an UpgradeRequest has that name.
 */
export const UPLOAD_FOLDER_PREFIX = 'upload_';
const UPLOAD_NAME = /^upload_[A-Za-z0-9]{6}$/;
const LEGACY_UPLOAD_NAME = /^upload-[A-Za-z0-9]{6}$/;

/** An unclaimed folder this old (while running) is an abandoned upload. */
export const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

/** An upload folder without an owner file this old is not being received. */
export const OWNERLESS_GRACE_MS = 10 * 60 * 1000;

export interface UploadFolder {
  /** Its name inside the work folder. */
  readonly name: string;
  /** Last modification (ms since the epoch). */
  readonly modifiedMs: number;
  /** The replica process that made it (OWNER_FILE), when known. */
  readonly owner?: ReplicaSelf;
}

/** The replicas sharing the folder, for judging folders no upgrade refers to. */
export interface SharedFolderView {
  /** Replica name -> boot id, for every replica whose marker is fresh (this one too). */
  readonly live: ReadonlyMap<string, string>;
}

/** What the janitor needs to know of one UpgradeRequest. */
export interface UpgradeUse {
  readonly name: string;
  /** Undefined before the reconciler wrote a first status (not terminal). */
  readonly phase: Phase | undefined;
  /** The package and signature paths of its spec. */
  readonly paths: readonly string[];
}

export type JanitorPass = 'startup' | 'running';

export interface FolderVerdict {
  readonly folder: string;
  readonly remove: boolean;
  /** For the log: why it goes or stays. */
  readonly reason: string;
  /** The upgrade that uses (or used) it, if any. */
  readonly upgrade?: string;
}

export interface JudgeInput {
  readonly workDir: string;
  readonly folders: readonly UploadFolder[];
  readonly upgrades: readonly UpgradeUse[];
  readonly pass: JanitorPass;
  /** Folders earlier passes saw in use, with the upgrade that used them. */
  readonly claimed: ReadonlyMap<string, string>;
  readonly nowMs: number;
  /** Given when replicas may share the folder: unclaimed folders are judged by owner. */
  readonly shared?: SharedFolderView;
}

/** Whether a name in the work folder is an upload folder. */
export function isUploadFolderName(name: string): boolean {
  return UPLOAD_NAME.test(name) || LEGACY_UPLOAD_NAME.test(name);
}

/** The upload folder (name) a path lies in, or undefined when it is not in one. */
export function uploadFolderOf(workDir: string, path: string): string | undefined {
  if (!isAbsolute(path)) return undefined;
  const rel = relative(workDir, path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  const first = rel.split(sep)[0]!;
  return isUploadFolderName(first) ? first : undefined;
}

/** Pure: which upload folders to remove, and why each goes or stays. */
export function judgeUploadFolders(input: JudgeInput): FolderVerdict[] {
  const users = new Map<string, UpgradeUse[]>();
  const upgradeNames = new Set(input.upgrades.map((u) => u.name));
  for (const u of input.upgrades) {
    for (const p of u.paths) {
      const folder = uploadFolderOf(input.workDir, p);
      if (!folder) continue;
      const list = users.get(folder) ?? [];
      if (!list.includes(u)) list.push(u);
      users.set(folder, list);
    }
  }
  const verdicts: FolderVerdict[] = [];
  for (const { name, modifiedMs, owner } of input.folders) {
    if (!isUploadFolderName(name)) continue;
    if (upgradeNames.has(name)) {
      // A legacy-looking name that is an upgrade's own work folder.
      verdicts.push({
        folder: name,
        remove: false,
        reason: `the work folder of upgrade ${name}, not an upload`,
        upgrade: name,
      });
      continue;
    }
    const using = users.get(name) ?? [];
    const active = using.find((u) => u.phase === undefined || !isTerminal(u.phase));
    if (active) {
      verdicts.push({
        folder: name,
        remove: false,
        reason: `in use by upgrade ${active.name} (phase ${active.phase ?? 'not started'})`,
        upgrade: active.name,
      });
      continue;
    }
    if (using.length > 0) {
      const u = using[0]!;
      verdicts.push({
        folder: name,
        remove: true,
        reason: `upgrade ${u.name} ended (${u.phase})`,
        upgrade: u.name,
      });
      continue;
    }
    const formerUser = input.claimed.get(name);
    if (formerUser !== undefined) {
      verdicts.push({
        folder: name,
        remove: true,
        reason: `the UpgradeRequest ${formerUser} is gone`,
        upgrade: formerUser,
      });
    } else if (input.shared) {
      verdicts.push(judgeUnclaimedShared(name, modifiedMs, owner, input));
    } else if (input.pass === 'startup') {
      verdicts.push({
        folder: name,
        remove: true,
        reason: 'no upgrade uses it (an upload cut short, or its upgrade is gone)',
      });
    } else if (input.nowMs - modifiedMs >= ABANDONED_AFTER_MS) {
      verdicts.push({
        folder: name,
        remove: true,
        reason: `no upgrade has claimed it for ${Math.floor((input.nowMs - modifiedMs) / 3_600_000)} h (an abandoned upload)`,
      });
    } else {
      verdicts.push({
        folder: name,
        remove: false,
        reason: 'not claimed by an upgrade yet (an upload in progress)',
      });
    }
  }
  return verdicts;
}

const hours = (ms: number) => Math.floor(ms / 3_600_000);

/** A folder no upgrade refers to, in a folder replicas may share: its owner decides. */
function judgeUnclaimedShared(
  folder: string,
  modifiedMs: number,
  owner: ReplicaSelf | undefined,
  input: JudgeInput,
): FolderVerdict {
  const age = input.nowMs - modifiedMs;
  if (!owner) {
    return age >= OWNERLESS_GRACE_MS
      ? {
          folder,
          remove: true,
          reason: 'no upgrade uses it and it names no owner (an upload cut short)',
        }
      : {
          folder,
          remove: false,
          reason: 'not claimed yet and its owner not written yet (an upload starting)',
        };
  }
  const liveBoot = input.shared!.live.get(owner.replica);
  if (liveBoot !== owner.boot) {
    const gone =
      liveBoot === undefined
        ? `its replica ${owner.replica} is gone`
        : `its replica ${owner.replica} has restarted since`;
    return { folder, remove: true, reason: `no upgrade uses it and ${gone} (an upload cut short)` };
  }
  if (age >= ABANDONED_AFTER_MS)
    return {
      folder,
      remove: true,
      reason: `no upgrade has claimed it for ${hours(age)} h (an abandoned upload of ${owner.replica})`,
    };
  return {
    folder,
    remove: false,
    reason: `not claimed by an upgrade yet (an upload in progress on ${owner.replica})`,
  };
}

export function upgradeUse(r: UpgradeRequest): UpgradeUse {
  const paths = [r.spec.package.path];
  if (r.spec.package.signaturePath) paths.push(r.spec.package.signaturePath);
  return { name: r.metadata.name, phase: r.status?.phase, paths };
}

/** The part of the operator's logger the janitor uses. */
export interface JanitorLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface UploadJanitorOptions {
  /** The folder upload folders are made in (UploadSettings.workDir). */
  readonly workDir: string;
  readonly source: Pick<ResourceSource, 'listUpgradeRequests'>;
  readonly logger: JanitorLogger;
  /** Each emission asks for a pass soon (batched, see batchMs): changes, finished reconciles. */
  readonly wake$?: Observable<unknown>;
  /** A pass at least this often anyway (default 60 s). */
  readonly intervalMs?: number;
  /**
   * Wake-ups within this long of the first make one pass (default 2 s): at
   * most one pass per period however busy the reconciler is, and never
   * starved by a steady stream of wake-ups (auditTime, not debounce).
   */
  readonly batchMs?: number;
  readonly now?: () => number;
  /**
   * This replica's marker in a folder replicas may share: refreshed on every
   * pass (the heartbeat), and folders no upgrade uses are judged by owner.
   */
  readonly presence?: ReplicaPresence;
  /** How often the marker is rewritten besides every pass (default HEARTBEAT_MS). */
  readonly heartbeatMs?: number;
}

/** Well inside REPLICA_STALE_AFTER_MS (5 min): ten beats may be missed. */
export const HEARTBEAT_MS = 30_000;

export class UploadJanitor {
  readonly #claimed = new Map<string, string>();
  #subscription: Subscription | undefined;
  #passing: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: UploadJanitorOptions) {}

  /**
   * The start-up sweep: call before the API accepts uploads, so no folder
   * can be an upload in progress.
   */
  sweepAtStart(): Promise<FolderVerdict[]> {
    return this.#serial('startup');
  }

  /** One pass as while running (also what the wake-ups and the timer run). */
  tidy(): Promise<FolderVerdict[]> {
    return this.#serial('running');
  }

  /** Starts the periodic and woken passes. */
  start(): void {
    const interval = this.opts.intervalMs ?? 60_000;
    const wakes = this.opts.wake$?.pipe(auditTime(this.opts.batchMs ?? 2000)) ?? EMPTY;
    this.#subscription = merge(wakes, timer(interval, interval)).subscribe(() => {
      void this.tidy();
    });
    const { presence, logger } = this.opts;
    if (presence) {
      // The heartbeat also on its own timer: a pass stuck on a slow source
      // must not make the other replicas take this one for gone (and remove
      // the uploads it is receiving).
      const beat = this.opts.heartbeatMs ?? HEARTBEAT_MS;
      this.#subscription.add(
        timer(beat, beat).subscribe(() => {
          presence
            .announce()
            .catch((err: unknown) =>
              logger.warn(`cannot refresh this replica's marker: ${(err as Error).message}`),
            );
        }),
      );
    }
  }

  /** Stops the passes; waits for one under way. */
  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    await this.#passing.catch(() => undefined);
  }

  /** Passes never overlap: two would race on the same folders. */
  #serial(pass: JanitorPass): Promise<FolderVerdict[]> {
    const run = this.#passing.catch(() => undefined).then(() => this.#pass(pass));
    this.#passing = run;
    return run;
  }

  async #pass(pass: JanitorPass): Promise<FolderVerdict[]> {
    const { workDir, logger } = this.opts;
    let folders: UploadFolder[];
    let upgrades: UpgradeUse[];
    let shared: SharedFolderView | undefined;
    try {
      const { presence } = this.opts;
      if (presence) {
        // The heartbeat first: at start-up it is also what makes this
        // replica's previous start count as gone.
        await presence.announce();
        shared = { live: await presence.liveReplicas() };
      }
      folders = await this.#listFolders();
      // Nothing to judge: spare the store a query.
      if (folders.length === 0) return [];
      upgrades = (await this.opts.source.listUpgradeRequests()).map(upgradeUse);
    } catch (err) {
      logger.warn(`upload folders not tidied this time: ${(err as Error).message}`);
      return [];
    }
    const verdicts = judgeUploadFolders({
      workDir,
      folders,
      upgrades,
      pass,
      claimed: this.#claimed,
      nowMs: (this.opts.now ?? Date.now)(),
      ...(shared ? { shared } : {}),
    });
    for (const v of verdicts) {
      if (!v.remove) {
        if (v.upgrade !== undefined && v.upgrade !== v.folder)
          this.#claimed.set(v.folder, v.upgrade);
        continue;
      }
      try {
        await rm(join(workDir, v.folder), { recursive: true, force: true });
        this.#claimed.delete(v.folder);
        logger.info(`removed upload folder ${v.folder}: ${v.reason}`, {
          ...(v.upgrade ? { upgradeId: v.upgrade } : {}),
        });
      } catch (err) {
        logger.warn(`cannot remove upload folder ${v.folder}: ${(err as Error).message}`);
      }
    }
    // Forget folders that went away by other hands.
    const present = new Set(folders.map((f) => f.name));
    for (const name of [...this.#claimed.keys()])
      if (!present.has(name)) this.#claimed.delete(name);
    return verdicts;
  }

  /** Upload folders in the work folder (directories only; links are never followed). */
  async #listFolders(): Promise<UploadFolder[]> {
    let names: string[];
    try {
      names = await readdir(this.opts.workDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: UploadFolder[] = [];
    for (const name of names) {
      if (!isUploadFolderName(name)) continue;
      const path = join(this.opts.workDir, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      const owner = this.opts.presence ? await readOwner(path) : undefined;
      out.push({ name, modifiedMs: st.mtimeMs, ...(owner ? { owner } : {}) });
    }
    return out;
  }
}
