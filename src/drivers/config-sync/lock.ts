// Locking the config folder (/etc/app) against modification during an
// upgrade (task list 4.1.1), ensure-style, with two methods:
// - immutable (preferred): `chattr -R +i` sets the immutable attribute on the
//   folder and everything in it. Even root cannot write, create, delete or
//   rename until `chattr -R -i`. Needs a file system with inode attributes
//   (ext4, xfs, btrfs; the lab's /etc/app is ext4). It is stored on disk, so
//   it survives a reboot of the node: an interrupted upgrade stays locked
//   until the operator unlocks it.
// - readonly-mount (where attributes are not supported, e.g. tmpfs, NFS):
//   the folder is bind-mounted onto itself (if it is not a mount point
//   already) and remounted read-only. It lives in the node's mount
//   namespace (processes in other namespaces, e.g. systemd units with
//   PrivateMounts, keep writing) and is gone after a reboot; unlocking
//   remounts read-write and leaves the bind mount in place.
// `auto` picks immutable when `lsattr -d` works on the folder.
import { DriverError, whileDoing } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';

export type LockMethod = 'immutable' | 'readonly-mount';

export interface ConfigLockContext {
  readonly shell: NodeShell;
}

export interface LockOptions {
  readonly node: string;
  readonly dir: string;
  readonly method?: LockMethod | 'auto';
  readonly dryRun?: boolean;
}

export type Locked = 'yes' | 'no' | 'partly';

export interface LockOutcome {
  readonly node: string;
  readonly dir: string;
  readonly method: LockMethod;
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly before: Locked;
  readonly after: Locked;
}

const sh = (script: string, ...args: string[]) => ['sh', '-c', script, 'sh', ...args];

/** `lsattr -d` lines: "<flags> <path>". */
export function lockedFromLsattr(text: string): Locked {
  const flags = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split(' ')[0] ?? '');
  if (flags.length === 0) return 'no';
  const n = flags.filter((f) => f.includes('i')).length;
  return n === 0 ? 'no' : n === flags.length ? 'yes' : 'partly';
}

/** `findmnt -n -o OPTIONS --mountpoint DIR`: "ro,..." | "rw,..." | "" (not a mount point). */
export function lockedFromMountOptions(text: string): Locked {
  const opts = text.trim().split('\n')[0]?.split(',') ?? [];
  return opts.includes('ro') ? 'yes' : 'no';
}

const OBSERVE: Record<LockMethod, string> = {
  // A file that vanishes between find and lsattr (the sync job or the app
  // replacing a file) is no longer there to lock: its "No such file"
  // complaint is dropped; any other complaint still fails the observation.
  immutable: `[ -d "$1" ] || { echo "$1: not a folder" >&2; exit 1; }
exec 3>&1
err=$(find "$1" -xdev \\( -type f -o -type d \\) -exec lsattr -d -- {} + 2>&1 >&3)
rest=$(printf '%s\\n' "$err" | grep -v -e 'No such file or directory' -e '^$')
[ -z "$rest" ] || { printf '%s\\n' "$rest" >&2; exit 1; }`,
  'readonly-mount': `findmnt -n -o OPTIONS --mountpoint "$1" || true`,
};
const LOCK: Record<LockMethod, string> = {
  immutable: `chattr -R +i -- "$1"`,
  'readonly-mount': `set -e
mountpoint -q -- "$1" || mount --bind -- "$1" "$1"
mount -o remount,bind,ro -- "$1"`,
};
const UNLOCK: Record<LockMethod, string> = {
  immutable: `chattr -R -i -- "$1"`,
  'readonly-mount': `if mountpoint -q -- "$1"; then mount -o remount,bind,rw -- "$1"; fi`,
};

async function chooseMethod(
  ctx: ConfigLockContext,
  node: string,
  dir: string,
): Promise<LockMethod> {
  const r = await ctx.shell.exec(
    node,
    sh(`lsattr -d -- "$1" >/dev/null 2>&1 && echo yes || echo no`, dir),
  );
  return r.stdout.trim() === 'yes' ? 'immutable' : 'readonly-mount';
}

export async function observeConfigLock(
  ctx: ConfigLockContext,
  node: string,
  dir: string,
  method: LockMethod,
): Promise<Locked> {
  const r = await ctx.shell.exec(node, sh(OBSERVE[method], dir));
  return method === 'immutable' ? lockedFromLsattr(r.stdout) : lockedFromMountOptions(r.stdout);
}

async function ensure(
  ctx: ConfigLockContext,
  opts: LockOptions,
  want: 'yes' | 'no',
): Promise<LockOutcome> {
  const { node, dir } = opts;
  const dryRun = opts.dryRun ?? false;
  return whileDoing(
    `${want === 'yes' ? 'locking' : 'unlocking'} ${dir}`,
    async () => {
      const method =
        !opts.method || opts.method === 'auto' ? await chooseMethod(ctx, node, dir) : opts.method;
      const before = await observeConfigLock(ctx, node, dir, method);
      const base = { node, dir, method, dryRun, before };
      if (before === want) return { ...base, state: 'unchanged' as const, after: before };
      if (dryRun) return { ...base, state: 'changed' as const, after: before };
      await ctx.shell.exec(node, sh(want === 'yes' ? LOCK[method] : UNLOCK[method], dir));
      const after = await observeConfigLock(ctx, node, dir, method);
      if (after !== want) {
        throw new DriverError(
          `${dir} is ${after === 'partly' ? 'partly locked' : after === 'yes' ? 'still locked' : 'still unlocked'} after ${want === 'yes' ? 'locking' : 'unlocking'} (${method})`,
          {
            kind: 'terminal',
            node,
          },
        );
      }
      return { ...base, state: 'changed' as const, after };
    },
    { kind: 'terminal', node },
  );
}

/** After this, nothing in dir can be written, created, renamed or deleted. */
export function ensureConfigLocked(
  ctx: ConfigLockContext,
  opts: LockOptions,
): Promise<LockOutcome> {
  return ensure(ctx, opts, 'yes');
}

export function ensureConfigUnlocked(
  ctx: ConfigLockContext,
  opts: LockOptions,
): Promise<LockOutcome> {
  return ensure(ctx, opts, 'no');
}
