// What the steps of `lab up` share while a lab is being built.
import type { HostKey } from './inventory.js';
import type { LabDirs } from './layout.js';
import type { LabPlan, NodeId } from './plan.js';
import type { LabSecrets } from './render.js';
import type { LabState } from './state.js';

export interface BuildContext {
  plan: LabPlan;
  dirs: LabDirs;
  state: LabState;
  secrets: LabSecrets;
  hostKeys: Partial<Record<NodeId, HostKey>>;
  packagePublicKey?: string;
}

/** pid of node `id`'s init (the target of nsenter) */
export function holder(ctx: BuildContext, id: NodeId): number {
  const pid = ctx.state.holders[id];
  if (!pid) throw new Error(`node ${id} has no namespaces`);
  return pid;
}
