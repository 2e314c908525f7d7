// The lab: a real HA pair on one machine (docs/lab.md).
//
// Invariants:
// - Everything a lab creates carries its name (netns <N>-*, host uplink
//   psl-<N>, folder <root>/<N>) and is recorded in <root>/<N>/state.json
//   after each step; `labDown` removes exactly that and is safe to repeat.
// - Each node is a set of namespaces (net, mount, pid, ipc, uts) around a
//   small init; killing the init kills every process of the node, and the
//   node's bind mounts never exist in the host's mount namespace.
// - Nothing listens outside the lab's /24 in 198.18.0.0/15.
// - The inventory (hapair.yaml) holds no secret: passwords live in a pgpass
//   file and the ssh key in a key file, both named by path.
export { labDown } from './down.js';
export { execArgv, labExec } from './exec.js';
export { buildInventory, type Inventory } from './inventory.js';
export { LAB_ROOT, labDirs, NODE_PATHS } from './layout.js';
export { type LabPlan, planLab } from './plan.js';
export { readState } from './state.js';
export { collectStatus, formatStatus, type LabStatus, problems } from './status.js';
export { DEFAULT_APP_VERSION, labUp, sshOptions } from './up.js';
