// Writing a node's files from the host side (through the node's host folders,
// which is faster than entering the namespace), with the owner and mode the
// daemons insist on.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** lab/node-bin: the node's tool scripts (svc, sync-ctl, node-status) */
export const NODE_BIN_SRC = fileURLToPath(new URL('../../lab/node-bin/', import.meta.url));

let pgIds: { uid: number; gid: number } | undefined;
export function postgresIds(): { uid: number; gid: number } {
  if (!pgIds) {
    const id = (flag: string) =>
      Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    pgIds = { uid: id('-u'), gid: id('-g') };
  }
  return pgIds;
}

export interface FileOpts {
  mode?: number;
  owner?: 'root' | 'postgres';
}

function own(path: string, owner: FileOpts['owner']) {
  if (owner === 'postgres') {
    const { uid, gid } = postgresIds();
    chownSync(path, uid, gid);
  }
}

export function writeFile(path: string, content: string | Buffer, opts: FileOpts = {}): void {
  const mode = opts.mode ?? 0o644;
  writeFileSync(path, content, { mode });
  chmodSync(path, mode); // writeFileSync's mode is masked by the umask
  own(path, opts.owner);
}

export function makeDir(path: string, opts: FileOpts = {}): void {
  const mode = opts.mode ?? 0o755;
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
  own(path, opts.owner);
}

export function installNodeBin(destDir: string): void {
  makeDir(destDir);
  for (const f of readdirSync(NODE_BIN_SRC)) {
    copyFileSync(join(NODE_BIN_SRC, f), join(destDir, f));
    chmodSync(join(destDir, f), 0o755);
  }
}
