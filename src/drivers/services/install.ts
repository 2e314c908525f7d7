// Installing a new release file on a node (task list 4.2.5): the jar, or the
// Python service's file, from an upgrade package's payload. The file is
// checked here against the package's SHA-256, streamed over SSH stdin to a
// temporary file beside the target, checked again on the node, then renamed
// over the target (atomic: the service sees the old file or the new one,
// never half of one). The old file is kept beside it as
// <target>.<previous version> (a hard link, so no copy and no window).
// Ensure-style: the same sha256 already installed changes nothing.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, posix } from 'node:path';
import { SHA256_SCRIPT } from '../backup/remote.js';
import { DriverError, whileDoing } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';

export interface InstallContext {
  readonly shell: NodeShell;
}

export interface InstallOptions {
  readonly node: string;
  /** The file on the operator's machine (e.g. a verified package's payload/app.jar). */
  readonly localPath: string;
  /** The package manifest's SHA-256 for it. */
  readonly sha256: string;
  /** Where it goes on the node, e.g. spec.paths.appJar. */
  readonly target: string;
  /** Names the kept old file: <target>.<previousVersion>; default sha256-<first 12 hex of the old file>. */
  readonly previousVersion?: string;
  readonly dryRun?: boolean;
  readonly timeoutMs?: number;
  /**
   * Paths the pair declares that this file must never replace (the root key
   * above all): refused here and again on the node, where symbolic links are
   * resolved, before a byte is sent.
   */
  readonly protect?: readonly { path: string; what: string }[];
}

export interface InstallOutcome {
  readonly node: string;
  readonly target: string;
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly sha256: string;
  /** The replaced file, kept: its path and hash (null if there was none or nothing changed). */
  readonly kept: { path: string; sha256: string } | null;
}

/** A name part safe in a file name: versions like 1.0.0, 2.0.0-rc.1. */
export function keptName(
  target: string,
  previousVersion: string | undefined,
  oldSha256: string,
  node?: string,
): string {
  const label = previousVersion ?? `sha256-${oldSha256.slice(0, 12)}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(label)) {
    throw new DriverError(`"${label}" cannot name the kept file (letters, digits, . _ + - only)`, {
      kind: 'terminal',
      node,
    });
  }
  return `${target}.${label}`;
}

/**
 * $1 target, then the protected paths: exits 3 naming the protected path
 * the target resolves to or into (links followed, missing parts allowed).
 */
const GUARD_SCRIPT = `t=$(readlink -m -- "$1") || exit 4
shift
for p in "$@"; do
  q=$(readlink -m -- "$p") || q=$p
  case "$t" in "$q"|"$q"/*) printf '%s' "$p"; exit 3;; esac
done`;

/** $1 temp file: stdin into it, owner-only until it is renamed into place. */
const RECEIVE_SCRIPT = `set -e
umask 077
cat > "$1"`;

/**
 * $1 new file, $2 target, $3 kept name ('' for none). The new file takes the
 * old one's owner and mode (0644 root if there was none).
 */
const INSTALL_SCRIPT = `set -e
if [ -e "$2" ]; then
  chown --reference="$2" -- "$1"
  chmod --reference="$2" -- "$1"
  if [ -n "$3" ]; then ln -f -- "$2" "$3"; fi
else
  chmod 644 -- "$1"
fi
mv -f -- "$1" "$2"`;

export async function ensureFileInstalled(
  ctx: InstallContext,
  opts: InstallOptions,
): Promise<InstallOutcome> {
  const { node, target } = opts;
  const want = opts.sha256.toLowerCase();
  const dryRun = opts.dryRun ?? false;
  const exec = (script: string, args: string[], stdin?: Buffer) =>
    ctx.shell.exec(node, ['sh', '-c', script, 'sh', ...args], {
      timeoutMs: opts.timeoutMs ?? 300_000,
      ...(stdin ? { stdin } : {}),
    });
  return whileDoing(
    `installing ${basename(opts.localPath)} as ${target}`,
    async () => {
      if (!/^[0-9a-f]{64}$/.test(want))
        throw new DriverError(`expected a sha256 of 64 hex digits, got "${opts.sha256}"`, {
          kind: 'terminal',
          node,
        });
      await refuseProtected(ctx.shell, node, target, opts.protect ?? []);
      const installed = (await exec(SHA256_SCRIPT, [target])).stdout.trim();
      const base = { node, target, dryRun, sha256: want };
      if (installed === want) return { ...base, state: 'unchanged' as const, kept: null };

      let data: Buffer;
      try {
        data = await readFile(opts.localPath);
      } catch (err) {
        throw new DriverError(
          `cannot read ${opts.localPath}: ${(err as NodeJS.ErrnoException).code ?? err}`,
          { kind: 'terminal', node },
        );
      }
      const local = createHash('sha256').update(data).digest('hex');
      if (local !== want) {
        throw new DriverError(
          `${opts.localPath} has sha256 ${local}, not the expected ${want}: refusing to install it`,
          { kind: 'terminal', node },
        );
      }
      const keptPath =
        installed === 'MISSING' ? null : keptName(target, opts.previousVersion, installed, node);
      if (dryRun)
        return {
          ...base,
          state: 'changed' as const,
          kept: keptPath ? { path: keptPath, sha256: installed } : null,
        };

      const tmp = `${target}.pairshift-new`;
      await exec(RECEIVE_SCRIPT, [tmp], data);
      const arrived = (await exec(SHA256_SCRIPT, [tmp])).stdout.trim();
      if (arrived !== want) {
        await exec('rm -f -- "$1"', [tmp]).catch(() => undefined);
        throw new DriverError(
          `the copy on the node has sha256 ${arrived}, not ${want} (damaged in transfer; removed)`,
          {
            kind: 'transient',
            node,
          },
        );
      }
      await exec(INSTALL_SCRIPT, [tmp, target, keptPath ?? '']);
      const after = (await exec(SHA256_SCRIPT, [target])).stdout.trim();
      if (after !== want)
        throw new DriverError(`${target} has sha256 ${after} after the install, not ${want}`, {
          kind: 'conflict',
          node,
        });
      return {
        ...base,
        state: 'changed' as const,
        kept: keptPath ? { path: keptPath, sha256: installed } : null,
      };
    },
    { kind: 'terminal', node },
  );
}

async function refuseProtected(
  shell: NodeShell,
  node: string,
  target: string,
  protect: readonly { path: string; what: string }[],
): Promise<void> {
  if (protect.length === 0) return;
  const t = posix.normalize(target);
  const refuse = (p: { what: string }) =>
    new DriverError(`refusing to write ${target}: it is ${p.what}`, { kind: 'terminal', node });
  const here = protect.find((p) => t === p.path || t.startsWith(`${p.path}/`));
  if (here) throw refuse(here);
  const r = await shell.exec(
    node,
    ['sh', '-c', GUARD_SCRIPT, 'sh', target, ...protect.map((p) => p.path)],
    { timeoutMs: 30_000, okExitCodes: [3] },
  );
  if (r.exitCode === 3) {
    const hit = protect.find((p) => p.path === r.stdout) ?? { what: r.stdout };
    throw refuse(hit);
  }
}

/** Where a package's payload files go on a node. */
export function payloadTargets(paths: { appJar: string; appDir: string }): Record<string, string> {
  return {
    'payload/app.jar': paths.appJar,
    'payload/worker.py': `${paths.appDir.replace(/\/+$/, '')}/worker.py`,
  };
}
