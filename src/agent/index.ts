// The node agent, operator side (docs/agent.md).
//
// Invariants:
// - Everything under ./node runs on the pair's nodes with Node's standard
//   library only; it is compiled on its own (node/tsconfig.json) and a unit
//   test refuses any other import. The operator-side modules here may use
//   the project's dependencies; ./node never imports from them.
// - The agent's config holds no secret: database access is by peer
//   authentication as the database's OS user, or a pgpass file on the node.
// - Installing the agent on a node is a driver action over SSH
//   (src/drivers/agent/install.ts): it observes before it acts, acts only
//   on what differs, and verifies; a version is named after the exact files
//   it ships.
export type { AgentConfig } from './node/config.js';
export type { CheckResult, HealthReport, VrrpRole } from './node/protocol.js';
export { agentConfigFor, type HAPairForAgent, renderAgentConfig } from './render-config.js';
