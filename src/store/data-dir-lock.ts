// PGlite is one process's private PostgreSQL: two processes opening the same
// data folder would corrupt it. A lock file in the folder says who has it.
//
// The file holds {pid, host, startTime}. startTime is the kernel's start time
// of that pid (from /proc, where available), so a lock left by a process that
// died and whose pid was reused by an unrelated program is still seen as
// stale. A lock written on another host cannot be checked and counts as held.
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE_NAME = 'pairshift.lock';

interface LockOwner {
  pid: number;
  host: string;
  startTime: string | null;
}

export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/** The kernel start time of a pid (Linux), or null when unknown. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces, so count
    // from the closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (
      typeof v.pid === 'number' &&
      Number.isInteger(v.pid) &&
      v.pid > 0 &&
      typeof v.host === 'string'
    ) {
      return {
        pid: v.pid,
        host: v.host,
        startTime: typeof v.startTime === 'string' ? v.startTime : null,
      };
    }
  } catch {}
  return null;
}

/** Whether the owner written in a lock file may still be running. */
function ownerIsLive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true;
  if (!isAlive(owner.pid)) return false;
  const now = processStartTime(owner.pid);
  return owner.startTime === null || now === null || now === owner.startTime;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Takes the lock on dataDir or throws naming the process that holds it.
 * A stale lock (its process is gone) is taken over.
 */
export function acquireDataDirLock(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE_NAME);
  const me: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startTime: processStartTime(process.pid),
  };
  const mine = JSON.stringify(me);

  for (let attempt = 0; attempt < 5; attempt++) {
    // Written whole to a private file, then linked into place: link() fails
    // if the lock exists, and nobody ever sees a half-written lock.
    const draft = `${path}.${process.pid}.tmp`;
    try {
      writeFileSync(draft, mine, { mode: 0o600 });
      linkSync(draft, path);
      return makeLock(path, mine);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new Error(`cannot create lock file ${path}`, { cause: err });
      }
    } finally {
      try {
        unlinkSync(draft);
      } catch {}
    }
    const text = readOrNull(path);
    if (text === null) continue; // released meanwhile; try again
    const owner = parseOwner(text);
    if (owner && ownerIsLive(owner)) {
      const who =
        owner.host === me.host ? `pid ${owner.pid}` : `pid ${owner.pid} on host ${owner.host}`;
      throw new Error(
        `the embedded store at ${dataDir} is in use by another pairshift process (${who}); ` +
          'stop it, or use another --data-dir',
      );
    }
    // Stale (or unreadable junk, e.g. from an older writer or a full disk). Move it aside
    // atomically, then check that what we moved is what we judged stale: if
    // another process took the lock in between, put its file back.
    const aside = `${path}.stale.${process.pid}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const moved = readOrNull(aside);
    if (moved !== text) {
      try {
        linkSync(aside, path);
      } catch {}
    }
    try {
      unlinkSync(aside);
    } catch {}
  }
  throw new Error(
    `cannot take the lock file ${path}: it keeps changing; is another pairshift starting?`,
  );
}

function makeLock(path: string, mine: string): DataDirLock {
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    // Only remove the file if it is still ours.
    if (readOrNull(path) === mine) {
      try {
        unlinkSync(path);
      } catch {}
    }
  };
  // A normal exit without close() still frees the folder; a kill -9 leaves a
  // stale lock that the next start detects.
  process.on('exit', release);
  return { path, release };
}
