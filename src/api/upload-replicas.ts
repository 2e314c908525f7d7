// Which operator replicas share the upload folder, told by the folder itself.
// With two replicas (deploy/overlays/ha) an upload lands on whichever replica
// the Service picked, while only the leader runs upgrades: the package is of
// use only if the leader reads the same folder at the same path. Each replica
// therefore keeps a marker file in <workDir>/.replicas/ (its name, a fresh id
// per process start, and the path it mounts the folder at), rewritten on
// every janitor pass and every 30 s (the heartbeat). From the markers:
//   - the API refuses an upload at once (before reading the body) when this
//     replica does not lead and the leader's marker is not in the folder, or
//     names another path, or is stale: the upload folder is not shared with
//     the leader, and the upgrade would only fail later in PREPARE;
//   - the janitor (upload-janitor.ts) tells an upload another live replica
//     is receiving from one a dead replica left behind: each upload folder
//     names its owner (OWNER_FILE, written right after the folder is made).
// Freshness is judged by the marker file's modification time against this
// replica's clock, with a grace (REPLICA_STALE_AFTER_MS) that is many
// heartbeats long and absorbs the usual clock skew between nodes.
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The markers' folder inside the work folder (a dot name: never an upload or upgrade). */
export const REPLICAS_FOLDER = '.replicas';
/** Inside each upload folder: which replica (and which start of it) made it. */
export const OWNER_FILE = 'owner.json';
/** A marker not rewritten for this long is a replica that is gone. */
export const REPLICA_STALE_AFTER_MS = 5 * 60 * 1000;

/** One replica process: its name (the Lease identity) and this start of it. */
export interface ReplicaSelf {
  readonly replica: string;
  readonly boot: string;
}

export interface ReplicaMarker extends ReplicaSelf {
  /** Where that replica mounts the shared folder (must equal ours to share paths). */
  readonly workDir: string;
  /** The marker's last rewrite (ms since the epoch, from the file system). */
  readonly heartbeatMs: number;
}

/** What the API knows of the election when an upload arrives. */
export interface LeadershipView {
  /** This replica leads (or runs alone, without an election). */
  readonly leads: boolean;
  /** The Lease holder as last seen; '' or null when nobody holds it. */
  readonly leader: string | null;
}

/** A file name for a replica name (pod names are already safe; host names may not be). */
function markerFileName(replica: string): string {
  return `${replica.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200)}.json`;
}

function parseSelf(text: string): ReplicaSelf | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (typeof o.replica === 'string' && typeof o.boot === 'string')
      return { replica: o.replica, boot: o.boot };
  } catch {
    // a torn or foreign file: no owner known
  }
  return undefined;
}

/** The owner recorded in an upload folder, or undefined when it has none (yet). */
export async function readOwner(folder: string): Promise<ReplicaSelf | undefined> {
  const text = await readFile(join(folder, OWNER_FILE), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseSelf(text);
}

/** Records the owner in a fresh upload folder (exclusive create, mode 0600). */
export async function writeOwner(folder: string, self: ReplicaSelf): Promise<void> {
  await writeFile(join(folder, OWNER_FILE), JSON.stringify(self), { flag: 'wx', mode: 0o600 });
}

export interface ReplicaPresenceOptions {
  readonly workDir: string;
  /** This replica's name: POD_NAME (the Lease identity), or the host name. */
  readonly replica: string;
  /** Default: a random id, new on every start. */
  readonly boot?: string;
  readonly now?: () => number;
}

/** This replica's marker in the shared folder, and the reading of everyone's. */
export class ReplicaPresence {
  readonly self: ReplicaSelf;
  readonly workDir: string;
  readonly #now: () => number;

  constructor(opts: ReplicaPresenceOptions) {
    this.self = { replica: opts.replica, boot: opts.boot ?? randomUUID() };
    this.workDir = opts.workDir;
    this.#now = opts.now ?? Date.now;
  }

  get #dir(): string {
    return join(this.workDir, REPLICAS_FOLDER);
  }

  /** Writes (or refreshes) this replica's marker: written aside, then renamed, never torn. */
  async announce(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const file = join(this.#dir, markerFileName(this.self.replica));
    const tmp = `${file}.${this.self.boot}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...this.self, workDir: this.workDir }), {
      mode: 0o600,
    });
    await rename(tmp, file);
  }

  /** Removes this replica's marker on a clean stop (only if it is still this start's). */
  async withdraw(): Promise<void> {
    const file = join(this.#dir, markerFileName(this.self.replica));
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined && parseSelf(text)?.boot === this.self.boot)
      await rm(file, { force: true });
  }

  /** Every replica's marker in the folder (unreadable ones skipped). */
  async markers(): Promise<ReplicaMarker[]> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: ReplicaMarker[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const file = join(this.#dir, name);
      const [text, st] = await Promise.all([
        readFile(file, 'utf8').catch(() => undefined),
        stat(file).catch(() => undefined),
      ]);
      const self = text === undefined ? undefined : parseSelf(text);
      if (!self || !st) continue;
      const { workDir } = JSON.parse(text!) as { workDir?: unknown };
      if (typeof workDir !== 'string') continue;
      out.push({ ...self, workDir, heartbeatMs: st.mtimeMs });
    }
    return out;
  }

  /** Whether a marker was rewritten recently enough for its replica to count as running. */
  isFresh(m: ReplicaMarker): boolean {
    return this.#now() - m.heartbeatMs < REPLICA_STALE_AFTER_MS;
  }

  /** Replica name -> boot id of every replica running now (this one included). */
  async liveReplicas(): Promise<Map<string, string>> {
    const live = new Map<string, string>();
    for (const m of await this.markers()) if (this.isFresh(m)) live.set(m.replica, m.boot);
    live.set(this.self.replica, this.self.boot);
    return live;
  }

  /**
   * Why an upload received here could not reach the replica that runs
   * upgrades, or null when it can. Never names the folder's path (the
   * client gets this text).
   */
  async leaderProblem(view: LeadershipView): Promise<string | null> {
    if (view.leads) return null;
    const markers = await this.markers();
    const sharing = (m: ReplicaMarker) =>
      m.replica !== this.self.replica && this.isFresh(m) && m.workDir === this.workDir;
    const fix =
      'every replica must mount one shared ReadWriteMany volume at packages.workDir (deploy/overlays/ha does); until then, reference a package by path on a volume all replicas mount';
    if (view.leader) {
      const m = markers.find((x) => x.replica === view.leader);
      if (m && sharing(m)) return null;
      const why = !m
        ? 'has no marker in this replica’s upload folder'
        : !this.isFresh(m)
          ? 'has not refreshed its marker in this replica’s upload folder lately'
          : 'mounts the upload folder at another path';
      return `this replica (${this.self.replica}) does not run upgrades and the leader ${view.leader} ${why}, so it could not read the uploaded package; ${fix}`;
    }
    if (markers.some(sharing)) return null;
    return `no replica leads right now and no other replica shares this replica’s upload folder, so the replica that takes the lead might not read the package; retry in a few seconds, and check that ${fix}`;
  }
}
