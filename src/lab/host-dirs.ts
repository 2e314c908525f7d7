// Empty mount points the host must have for the nodes' bind mounts. The lab
// creates only the missing ones, remembers which (in <root>/host-dirs.json),
// and removes them again (if still empty) when the last lab goes down.
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_MOUNT_POINTS, LAB_ROOT } from './layout.js';

const recordFile = (root: string) => join(root, 'host-dirs.json');

function readRecord(root: string): string[] {
  try {
    return JSON.parse(readFileSync(recordFile(root), 'utf8')) as string[];
  } catch {
    return [];
  }
}

export function ensureHostMountPoints(root = LAB_ROOT): void {
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const created = new Set(readRecord(root));
  for (const dir of HOST_MOUNT_POINTS) {
    if (existsSync(dir)) continue;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    created.add(dir);
  }
  writeFileSync(recordFile(root), `${JSON.stringify([...created], null, 2)}\n`);
}

/** Called when no lab is left: remove what ensureHostMountPoints created,
 * then the record. */
export function removeHostMountPoints(root = LAB_ROOT): void {
  for (const dir of readRecord(root)) {
    try {
      rmdirSync(dir); // only if empty: never removes anything else's files
    } catch {
      // not empty or already gone: leave it
    }
  }
  rmSync(recordFile(root), { force: true });
}
