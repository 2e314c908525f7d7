// Running fixed shell scripts on a node. Scripts are constants; everything
// variable (paths, names) goes in as positional arguments, which the SSH
// layer quotes one by one, so no value is ever spliced into shell text.
import type { ExecOptions, ExecResult } from '../ssh/connection.js';
import type { NodeShell } from '../ssh/pool.js';

export function runScript(
  shell: NodeShell,
  node: string,
  script: string,
  args: readonly string[] = [],
  opts?: ExecOptions,
): Promise<ExecResult> {
  return shell.exec(node, ['sh', '-c', script, 'sh', ...args], opts);
}

/**
 * "<size> <md5> <sha256> <path>" per existing file, "MISSING <path>" per
 * absent one. Digests are computed on the node with openssl (about five
 * times faster than coreutils sha256sum on the lab machine): only the hashes
 * travel, never the contents (the root key is among these files).
 */
export const DIGEST_SCRIPT = `set -e
for f; do
  if [ -f "$f" ]; then
    s=$(stat -c %s -- "$f")
    m=$(openssl dgst -md5 -r "$f")
    h=$(openssl dgst -sha256 -r "$f")
    printf '%s %s %s %s\\n' "$s" "\${m%% *}" "\${h%% *}" "$f"
  else
    printf 'MISSING %s\\n' "$f"
  fi
done`;

/** "<sha256>" of one file, or "MISSING". */
export const SHA256_SCRIPT = `if [ -f "$1" ]; then h=$(openssl dgst -sha256 -r "$1") || exit 1; printf '%s\\n' "\${h%% *}"; else echo MISSING; fi`;
