// Runs a fault of faults.ts in a running lab: each script in the node's
// namespaces (nsenter into the node's init), its peer's, or on this host.
// Used by `pairshift lab fault` and by the fault matrix (test/faults).
import { execArgv } from './exec.js';
import { type FaultKind, type FaultTarget, faultScripts } from './faults.js';
import { type NodeId, planLab } from './plan.js';
import { run } from './run.js';
import { readState } from './state.js';

export interface FaultOptions {
  undo?: boolean;
  stageDir?: string;
  version?: string;
  delaySeconds?: number;
}

/** The target as the scripts need it, from the lab's recorded plan. */
export function faultTarget(name: string, node: NodeId, o: FaultOptions = {}): FaultTarget {
  const state = readState(name);
  if (!state) throw new Error(`lab ${name} is not up (pairshift lab up --name ${name})`);
  const plan = planLab(name, state.subnetIndex);
  const peer: NodeId = node === 'a' ? 'b' : 'a';
  return {
    node,
    peer,
    nodeAddress: plan.nodeAddress[node],
    peerAddress: plan.nodeAddress[peer],
    uplink: plan.uplinkAddress,
    ...(o.stageDir ? { stageDir: o.stageDir } : {}),
    ...(o.version ? { version: o.version } : {}),
    ...(o.delaySeconds ? { delaySeconds: o.delaySeconds } : {}),
  };
}

/** Injects (or undoes) the fault; throws naming the script that failed. */
export async function runFault(
  name: string,
  kind: FaultKind,
  node: NodeId,
  o: FaultOptions = {},
): Promise<void> {
  const t = faultTarget(name, node, o);
  for (const s of faultScripts(kind, t, o.undo ?? false)) {
    const argv =
      s.where === 'host'
        ? ['sh', '-c', s.script]
        : execArgv(name, s.where === 'node' ? t.node : t.peer, ['sh', '-c', s.script]);
    await run(argv[0]!, argv.slice(1), { timeoutMs: 30_000 });
  }
}
