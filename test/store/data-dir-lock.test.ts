// One process per embedded data folder: a live holder (this process or
// another) is refused by name, a dead one's lock is taken over.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { acquireDataDirLock, LOCK_FILE_NAME } from '../../src/store/data-dir-lock.js';
import { openPglite } from '../../src/store/pglite.js';

jest.setTimeout(60_000);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeLock(content: object): void {
  writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify(content));
}

/** A process that is alive until killed. */
function sleeper(): Promise<{ pid: number; kill: () => Promise<void> }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () =>
      resolve({
        pid: child.pid!,
        kill: () =>
          new Promise((done) => {
            child.once('exit', () => done());
            child.kill('SIGKILL');
          }),
      }),
    );
  });
}

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

it('takes a free folder and removes the file on release', () => {
  const lock = acquireDataDirLock(dir);
  const owner = JSON.parse(readFileSync(lock.path, 'utf8'));
  expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
  lock.release();
  expect(existsSync(lock.path)).toBe(false);
});

it('refuses a second lock in the same process', () => {
  const lock = acquireDataDirLock(dir);
  try {
    expect(() => acquireDataDirLock(dir)).toThrow(
      new RegExp(`in use by another pairshift process \\(pid ${process.pid}\\)`),
    );
  } finally {
    lock.release();
  }
});

it('refuses a folder held by another live process, then takes it once that process died', async () => {
  const other = await sleeper();
  writeLock({ pid: other.pid, host: hostname(), startTime: startTimeOf(other.pid) });
  try {
    expect(() => acquireDataDirLock(dir)).toThrow(`(pid ${other.pid})`);
  } finally {
    await other.kill();
  }
  const lock = acquireDataDirLock(dir);
  expect(JSON.parse(readFileSync(lock.path, 'utf8')).pid).toBe(process.pid);
  lock.release();
});

it('treats a lock whose pid was reused by another program as stale', () => {
  // Our own pid, but a start time that is not ours: the writer died and the
  // kernel gave its pid to someone else.
  writeLock({ pid: process.pid, host: hostname(), startTime: '1' });
  const lock = acquireDataDirLock(dir);
  lock.release();
});

it('treats a half-written lock file as stale', () => {
  writeFileSync(join(dir, LOCK_FILE_NAME), '{"pid": 12');
  acquireDataDirLock(dir).release();
});

it('counts a lock from another host as held', () => {
  writeLock({ pid: 1, host: 'some-other-host', startTime: null });
  expect(() => acquireDataDirLock(dir)).toThrow('pid 1 on host some-other-host');
});

it('does not remove a lock that is no longer ours', () => {
  const lock = acquireDataDirLock(dir);
  writeLock({ pid: 1, host: 'some-other-host', startTime: null });
  lock.release();
  expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(true);
});

it('keeps a second PGlite off an open data folder, and frees it on close', async () => {
  const data = join(dir, 'data');
  const first = await openPglite(data);
  try {
    await expect(openPglite(data)).rejects.toThrow(
      /embedded store at .* is in use by another pairshift process/,
    );
    expect((await first.query<{ one: number }>('SELECT 1 AS one'))[0]!.one).toBe(1);
  } finally {
    await first.close();
  }
  const again = await openPglite(data);
  await again.close();
});
