// The lab's state file: what `lab up` created, so `lab down` removes exactly
// that and `lab status` knows where to look. Written after every step, so a
// crash half-way through still leaves an accurate record.
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { LAB_ROOT, labDirs } from './layout.js';
import type { NodeId } from './plan.js';

export interface LabState {
  name: string;
  subnetIndex: number;
  createdAt: string;
  /** 'creating' until every step passed */
  phase: 'creating' | 'up';
  /** steps finished, in order */
  steps: string[];
  /** network namespaces this lab created */
  netns: string[];
  /** pid of the process that keeps each node's mount namespace alive */
  holders: Partial<Record<NodeId, number>>;
  /** mount namespace inode of each node (to find strays at teardown) */
  mountNs: Partial<Record<NodeId, string>>;
  version?: string;
  inventory?: string;
}

export function readState(name: string, root = LAB_ROOT): LabState | undefined {
  try {
    return JSON.parse(readFileSync(labDirs(name, root).stateFile, 'utf8')) as LabState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read state of lab ${name}`, { cause: err });
  }
}

export function writeState(state: LabState, root = LAB_ROOT): void {
  const file = labDirs(state.name, root).stateFile;
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

/** Names of every lab that has a state folder under the root. */
export function listLabs(root = LAB_ROOT): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** Subnets held by other labs (so a new lab picks a different /24). */
export function takenSubnets(except: string, root = LAB_ROOT): Set<number> {
  const taken = new Set<number>();
  for (const name of listLabs(root)) {
    if (name === except) continue;
    const s = readState(name, root);
    if (s) taken.add(s.subnetIndex);
  }
  return taken;
}

/** Run `fn` holding <root>/.allocate.lock (exclusive create; a lock older
 * than 30 s is taken to be left by a crashed run and broken). */
export async function withAllocationLock<T>(fn: () => Promise<T>, root = LAB_ROOT): Promise<T> {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const lock = join(root, '.allocate.lock');
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) rmSync(lock, { force: true });
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
    // the root goes when the last lab has gone (fails harmlessly otherwise)
    if (listLabs(root).length === 0) {
      try {
        rmdirSync(root);
      } catch {
        // not empty: a lab, a lock or the host-dirs record is still there
      }
    }
  }
}
