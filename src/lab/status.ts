// `pairshift lab status`: what a lab is running, read from the lab itself
// (namespaces, each node's daemons, the VIP, replication, the sync job, the
// services' HTTP endpoints), never from memory.
import { labDirs } from './layout.js';
import { alive, mountNsOf, netnsExists, shInNode } from './namespaces.js';
import { type LabPlan, NODE_IDS, type NodeId, planLab, validateLabName } from './plan.js';
import { JAVA_PORT, PYTHON_PORT } from './render.js';
import { readState } from './state.js';

export interface NodeStatus {
  node: NodeId;
  address: string;
  reachable: boolean;
  services: Record<string, 'running' | 'stopped'>;
  vip: boolean;
  database: 'primary' | 'standby' | 'down';
  /** on a primary: its standbys as "application_name state replay_lag" */
  replicas: string[];
  walReceiver?: string;
  sync?: unknown;
  http: { javaHealth: number | null; pythonHealth: number | null };
}

export interface LabStatus {
  name: string;
  exists: boolean;
  phase?: string;
  cidr?: string;
  vip?: string;
  vipHolder?: NodeId | null;
  vipVersion?: string | null;
  inventory?: string;
  netns: Record<string, boolean>;
  nodes: NodeStatus[];
}

export async function collectStatus(nameIn: string): Promise<LabStatus> {
  const name = validateLabName(nameIn);
  const state = readState(name);
  if (!state) return { name, exists: false, netns: {}, nodes: [] };
  const plan = planLab(name, state.subnetIndex);
  const netns: Record<string, boolean> = {};
  for (const ns of Object.values(plan.netns)) netns[ns] = await netnsExists(ns);
  const nodes = await Promise.all(
    NODE_IDS.map((id) => nodeStatus(plan, id, state.holders[id], state.mountNs[id])),
  );
  const holder = nodes.find((n) => n.vip);
  return {
    name,
    exists: true,
    phase: state.phase,
    cidr: plan.cidr,
    vip: plan.vip,
    vipHolder: holder ? holder.node : null,
    vipVersion: await httpText(`http://${plan.vip}:${JAVA_PORT}/version`),
    inventory: state.inventory ?? labDirs(name).inventory,
    netns,
    nodes,
  };
}

async function nodeStatus(
  plan: LabPlan,
  id: NodeId,
  pid: number | undefined,
  mountNs: string | undefined,
): Promise<NodeStatus> {
  const base: NodeStatus = {
    node: id,
    address: plan.nodeAddress[id],
    reachable: false,
    services: {},
    vip: false,
    database: 'down',
    replicas: [],
    http: { javaHealth: null, pythonHealth: null },
  };
  const [javaHealth, pythonHealth] = await Promise.all([
    httpStatus(`http://${plan.nodeAddress[id]}:${JAVA_PORT}/health`),
    httpStatus(`http://${plan.nodeAddress[id]}:${PYTHON_PORT}/health`),
  ]);
  base.http = { javaHealth, pythonHealth };
  if (!pid || !alive(pid) || mountNsOf(pid) !== mountNs) return base;
  const r = await shInNode(pid, 'sh /opt/pairshift-node/bin/node-status', {
    allowFail: true,
    timeoutMs: 15_000,
  });
  if (r.code !== 0) return base;
  return { ...base, reachable: true, ...parseNodeStatus(r.stdout) };
}

/** Parse node-status's key=value lines (pure). */
export function parseNodeStatus(text: string): Partial<NodeStatus> {
  const out: Partial<NodeStatus> & { services: Record<string, 'running' | 'stopped'> } = {
    services: {},
    replicas: [],
  };
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).trim();
    if (key.startsWith('svc.'))
      out.services[key.slice(4)] = value === 'running' ? 'running' : 'stopped';
    else if (key === 'vip') out.vip = value === 'held';
    else if (key === 'db')
      out.database = value === 'primary' || value === 'standby' ? value : 'down';
    else if (key === 'replica') out.replicas!.push(value);
    else if (key === 'walreceiver') out.walReceiver = value;
    else if (key === 'sync') {
      try {
        out.sync = JSON.parse(value);
      } catch {
        out.sync = value;
      }
    }
  }
  return out;
}

/** What is wrong with a lab that should be up (empty = healthy). */
export function problems(s: LabStatus): string[] {
  if (!s.exists) return ['no state file'];
  const out: string[] = [];
  for (const [ns, ok] of Object.entries(s.netns)) if (!ok) out.push(`netns ${ns} missing`);
  for (const n of s.nodes) {
    if (!n.reachable) {
      out.push(`node ${n.node} is not running`);
      continue;
    }
    for (const [svc, st] of Object.entries(n.services)) {
      if (st !== 'running') out.push(`${svc} stopped on ${n.node}`);
    }
    if (n.database === 'down') out.push(`postgresql down on ${n.node}`);
    if (n.http.javaHealth !== 200)
      out.push(`java /health on ${n.node}: ${n.http.javaHealth ?? 'no answer'}`);
    if (n.http.pythonHealth !== 200) {
      out.push(`python /health on ${n.node}: ${n.http.pythonHealth ?? 'no answer'}`);
    }
  }
  if (!s.vipHolder) out.push('nobody holds the VIP');
  const primaries = s.nodes.filter((n) => n.database === 'primary');
  if (primaries.length !== 1) out.push(`${primaries.length} database primaries`);
  else if (!primaries[0]!.replicas.some((r) => r.includes(' streaming'))) {
    out.push('the standby is not streaming');
  }
  return out;
}

async function httpStatus(url: string): Promise<number | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
}

async function httpText(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    return res.ok ? text.trim() : null;
  } catch {
    return null;
  }
}

export function formatStatus(s: LabStatus): string {
  if (!s.exists) return `lab ${s.name} is not up`;
  const lines = [
    `lab ${s.name} (${s.phase}): ${s.cidr}, VIP ${s.vip} on ${s.vipHolder ?? 'nobody'}, VIP serves version ${s.vipVersion ?? '(no answer)'}`,
  ];
  for (const n of s.nodes) {
    if (!n.reachable) {
      lines.push(`  node ${n.node} ${n.address}: not running`);
      continue;
    }
    const svcs = Object.entries(n.services)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(
      `  node ${n.node} ${n.address}: db=${n.database}${n.vip ? ' VIP' : ''} java=${n.http.javaHealth ?? '-'} python=${n.http.pythonHealth ?? '-'} ${svcs}`,
    );
    for (const r of n.replicas) lines.push(`    replica: ${r}`);
    const sync = n.sync as
      | { paused?: boolean; last?: { lastResult?: string; lastRun?: string } }
      | undefined;
    if (sync && typeof sync === 'object') {
      lines.push(
        `    config sync: ${sync.paused ? 'paused' : 'active'}, last ${sync.last?.lastResult ?? '-'} at ${sync.last?.lastRun ?? '-'}`,
      );
    }
  }
  const wrong = problems(s);
  lines.push(wrong.length === 0 ? '  healthy' : `  problems: ${wrong.join('; ')}`);
  lines.push(`  inventory: ${s.inventory}`);
  return lines.join('\n');
}
