// `pairshift lab down`: remove every namespace, process, mount and folder of
// one lab, and nothing of anyone else's.
//
// Order matters: processes first (killing a node's init kills every process
// in the node's PID namespace, and with them the node's private mounts), then
// any process left in the lab's network namespaces (e.g. a prober started in
// the client namespace), then the namespaces themselves (which destroys the
// veths and the host uplink), then the folder.
import { readdirSync, readlinkSync, rmSync } from 'node:fs';
import { removeHostMountPoints } from './host-dirs.js';
import { LAB_ROOT, labDirs } from './layout.js';
import { alive, mountNsOf, netnsExists, netnsPids, terminate } from './namespaces.js';
import { validateLabName } from './plan.js';
import { run } from './run.js';
import { listLabs, readState, withAllocationLock } from './state.js';

export interface DownOptions {
  name: string;
  log?: (line: string) => void;
  /** say nothing when there is nothing to remove */
  quietIfAbsent?: boolean;
}

export interface DownResult {
  removed: boolean;
  killed: number;
  netns: string[];
}

export async function labDown(opts: DownOptions): Promise<DownResult> {
  const name = validateLabName(opts.name);
  if (process.getuid?.() !== 0) {
    throw new Error('lab needs root (network and mount namespaces): run it with sudo or as root');
  }
  const log = opts.log ?? (() => {});
  const dirs = labDirs(name);
  const state = readState(name);
  // Only this lab's names: those recorded, plus the four a lab of this name
  // always uses (in case the state file was never written).
  const netns = [
    ...new Set([
      ...(state?.netns ?? []),
      `${name}-a`,
      `${name}-b`,
      `${name}-client`,
      `${name}-lan`,
    ]),
  ];
  const present: string[] = [];
  for (const ns of netns) if (await netnsExists(ns)) present.push(ns);

  // 1. every process: node inits, anything sharing a node's mount
  // namespace, anything in the lab's network namespaces
  const victims = new Set<number>();
  const mountNs = new Set<string>();
  for (const [id, pid] of Object.entries(state?.holders ?? {})) {
    // a pid or a namespace id can be reused once the node is gone: trust
    // the record only while that pid still holds that mount namespace
    const ns = state?.mountNs[id as 'a' | 'b'];
    if (!pid || !ns || !alive(pid) || mountNsOf(pid) !== ns) continue;
    victims.add(pid);
    mountNs.add(ns);
  }
  if (mountNs.size > 0) for (const pid of pidsInMountNs(mountNs)) victims.add(pid);
  for (const ns of present) for (const pid of await netnsPids(ns)) victims.add(pid);
  victims.delete(process.pid);
  await terminate([...victims]);
  // a second sweep for anything forked while the first was dying
  const late = new Set<number>();
  for (const ns of present) for (const pid of await netnsPids(ns)) late.add(pid);
  if (late.size > 0) await terminate([...late], 500);

  // 2. namespaces (the veths and the host's uplink go with them)
  for (const ns of present) await run('ip', ['netns', 'del', ns], { allowFail: true });
  const uplink = `psl-${name}`;
  const link = await run('ip', ['link', 'show', uplink], { allowFail: true });
  if (link.code === 0) await run('ip', ['link', 'del', uplink], { allowFail: true });

  // 3. the folder; node mounts lived only in the nodes' private mount
  // namespaces, so nothing is mounted below it on the host, but make sure
  // before a recursive delete
  const mounts = await run('findmnt', ['-rn', '-o', 'TARGET'], { allowFail: true });
  const under = mounts.stdout
    .split('\n')
    .filter((t) => t === dirs.root || t.startsWith(`${dirs.root}/`))
    .sort((x, y) => y.length - x.length);
  for (const t of under) await run('umount', ['-l', t], { allowFail: true });
  const hadFolder = state !== undefined || listLabs().includes(name);
  // The config lock (chattr +i on /etc/app) may have been left by an upgrade
  // or a test that died; an immutable file would stop the delete half way.
  await run('chattr', ['-R', '-f', '-i', dirs.root], { allowFail: true });
  rmSync(dirs.root, { recursive: true, force: true });
  // under the allocation lock: a lab coming up registers itself (its
  // folder) under the same lock before it needs the mount points
  if (listLabs().length === 0) {
    await withAllocationLock(async () => {
      if (listLabs().length === 0) removeHostMountPoints(LAB_ROOT);
    });
  }

  const removed = present.length > 0 || victims.size > 0 || hadFolder;
  if (removed) {
    log(`lab ${name} removed (${victims.size} processes, ${present.length} namespaces)`);
  } else if (!opts.quietIfAbsent) {
    log(`lab ${name} is not up; nothing to remove`);
  }
  return { removed, killed: victims.size, netns: present };
}

function pidsInMountNs(wanted: Set<string>): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      if (wanted.has(readlinkSync(`/proc/${pid}/ns/mnt`))) out.push(pid);
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}
