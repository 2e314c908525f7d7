// Network namespaces, the bridge, and each node's mount namespace.
//
// Topology (all interfaces are created directly inside lab namespaces, so
// nothing in the root namespace can clash between two labs except the uplink,
// whose name carries the lab name):
//
//   <N>-lan: br0 ── veth-a ── eth0 in <N>-a       (.11)
//                ── veth-b ── eth0 in <N>-b       (.12)
//                ── veth-c ── eth0 in <N>-client  (.2)
//                ── up0    ── psl-<N> in root ns  (.1)
//
// A node is a set of namespaces around a small init (lab/node-init.py, PID 1
// of the node's PID namespace) that first binds the node's folders over the
// shared paths. Daemons are started with nsenter into the init's namespaces
// (mount, net, ipc, uts, pid), so they and every ssh session they fork see
// that node's files; orphans are reaped by the init; killing the init kills
// every process of the node.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NODE_MOUNTS } from './layout.js';
import type { LabPlan, NodeId } from './plan.js';
import { type RunOptions, run, sleep, waitFor } from './run.js';

/** lab/node-init.py, found from src/lab or dist/lab alike */
export const NODE_INIT = fileURLToPath(new URL('../../lab/node-init.py', import.meta.url));

export async function netnsExists(name: string): Promise<boolean> {
  return existsSync(`/run/netns/${name}`);
}

export async function createNetwork(plan: LabPlan, record: (netns: string) => void): Promise<void> {
  const { lan, a, b, client } = plan.netns;
  for (const ns of [lan, a, b, client]) {
    await run('ip', ['netns', 'add', ns]);
    record(ns);
  }
  const ipn = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
  await ipn(lan, 'link', 'add', 'br0', 'type', 'bridge');
  await ipn(lan, 'link', 'set', 'br0', 'up');
  await ipn(lan, 'link', 'set', 'lo', 'up');
  const legs: Array<[string, string, string]> = [
    ['veth-a', a, plan.nodeAddress.a],
    ['veth-b', b, plan.nodeAddress.b],
    ['veth-c', client, plan.clientAddress],
  ];
  for (const [leg, ns, addr] of legs) {
    await ipn(lan, 'link', 'add', leg, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ipn(lan, 'link', 'set', leg, 'master', 'br0', 'up');
    await ipn(ns, 'link', 'set', 'lo', 'up');
    await ipn(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
    await ipn(ns, 'link', 'set', 'eth0', 'up');
  }
  // Uplink: created inside the lan namespace, its peer moved to the root
  // namespace; deleting <N>-lan destroys both ends.
  await ipn(lan, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', plan.uplinkIf, 'netns', '1');
  await ipn(lan, 'link', 'set', 'up0', 'master', 'br0', 'up');
  await run('ip', ['addr', 'add', `${plan.uplinkAddress}/24`, 'dev', plan.uplinkIf]);
  await run('ip', ['link', 'set', plan.uplinkIf, 'up']);
}

/** Start node `id`'s init: PID 1 of the node's own PID, mount, IPC and UTS
 * namespaces (inside its network namespace), with the node's folders bound
 * over the shared paths. Resolves to the init's pid as the host sees it. */
export async function startHolder(
  plan: LabPlan,
  id: NodeId,
  nodeRoot: (dir: string) => string,
): Promise<number> {
  const binds = NODE_MOUNTS.map(
    (m) => `mount --bind ${shq(nodeRoot(m.dir))} ${shq(m.target)}`,
  ).join('\n');
  // node-init.py writes the ready marker (inside the node's /run/app) only
  // after every bind succeeded (set -e), then reaps orphans forever.
  const script = `set -e\nhostname ${shq(plan.netns[id])}\n${binds}\nexec /usr/bin/python3 ${shq(NODE_INIT)}\n`;
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      plan.netns[id],
      'unshare',
      '--mount',
      '--ipc',
      '--uts',
      '--pid',
      '--fork',
      '--mount-proc',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
    ],
    { detached: true, stdio: 'ignore', cwd: '/' },
  );
  child.unref();
  const outer = child.pid;
  if (outer === undefined) throw new Error(`cannot start the init of node ${id}`);
  const readyFile = `${nodeRoot('run')}/holder.ready`;
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  await waitFor(
    `node ${id}'s namespaces`,
    async () => {
      if (exited !== undefined) throw new Error(`node init exited with ${exited}`);
      return existsSync(readyFile) ? true : undefined;
    },
    10_000,
    20,
  );
  // `unshare --fork` stays as the parent; the node's init is its only child.
  const children = readFileSync(`/proc/${outer}/task/${outer}/children`, 'utf8').trim();
  const init = Number(children.split(/\s+/)[0]);
  if (!Number.isInteger(init) || init <= 1) throw new Error(`cannot find node ${id}'s init`);
  return init;
}

export function mountNsOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** A live process (a zombie counts as gone: it has exited, only its parent
 * has not reaped it yet, and this machine's PID 1 reaps lazily). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": comm may hold spaces and parentheses
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** argv that runs a command inside a node (its mount, net, ipc, uts ns). */
export function nodeArgv(holderPid: number, argv: readonly string[]): string[] {
  return ['nsenter', '-t', String(holderPid), '-m', '-n', '-i', '-u', '-p', '--', ...argv];
}

export function inNode(holderPid: number, argv: readonly string[], opts?: RunOptions) {
  const [cmd, ...args] = nodeArgv(holderPid, argv);
  return run(cmd!, args, opts);
}

/** Run a shell script inside a node. */
export function shInNode(holderPid: number, script: string, opts?: RunOptions) {
  return inNode(holderPid, ['sh', '-c', script], opts);
}

export function inClient(plan: LabPlan, argv: readonly string[], opts?: RunOptions) {
  return run('ip', ['netns', 'exec', plan.netns.client, ...argv], opts);
}

/** pids of every process in a network namespace */
export async function netnsPids(ns: string): Promise<number[]> {
  if (!(await netnsExists(ns))) return [];
  const r = await run('ip', ['netns', 'pids', ns], { allowFail: true });
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((p) => Number.isInteger(p) && p > 1);
}

/** Terminate every pid: SIGTERM, then SIGKILL for what is left after graceMs. */
export async function terminate(pids: readonly number[], graceMs = 3000): Promise<void> {
  for (const p of pids) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const p of pids.filter(alive)) signal(p, 'SIGKILL');
  const killDeadline = Date.now() + 5000;
  while (pids.some(alive) && Date.now() < killDeadline) await sleep(20);
}

function signal(pid: number, sig: NodeJS.Signals) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** single-quote for sh */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
