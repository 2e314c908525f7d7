// The node agent on both nodes before an upgrade's first observation: the
// observer reads each node's /health from it. installAgent is ensure-style,
// so calling this once per upgrade costs two observations when the agent is
// already there and current.
//
// Where the agent's compiled files come from (agentSourceDir), first match:
//  1. the `sourceDir` option;
//  2. $PAIRSHIFT_AGENT_DIR;
//  3. ../agent/node/ beside this module: the operator run from dist/
//     (bin/pairshift.js loads dist/cli/main.js; `npm run build` compiles
//     src/agent/node to dist/agent/node);
//  4. <checkout>/dist/agent/node: this module run from src/ (jest, tsx), which
//     has only .ts files there; it needs `npm run build` first. Tests that
//     want the agent of the sources they run compile it themselves
//     (test/drivers/agent-build.ts) and pass sourceDir.
// The agent's version names the exact files shipped, so a stale build is
// still installed consistently and replaced once rebuilt.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentConfigFor } from '../agent/render-config.js';
import { DEFAULT_AGENT_ROOT, type InstallResult, installAgent } from '../drivers/agent/install.js';
import { DriverError } from '../drivers/errors.js';
import type { NodeShell } from '../drivers/ssh/pool.js';
import type { HAPair } from '../inventory/hapair.js';

/** On a lab pair each node has its own /opt/pairshift-node; /opt/pairshift-agent would be shared. */
export const LAB_AGENT_ROOT = '/opt/pairshift-node/agent';

export interface AgentsDeps {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  /** The agent's home on the nodes (default: agentRootFor(pair)). */
  readonly root?: string;
  /** The compiled agent (see agentSourceDir). */
  readonly sourceDir?: string;
  /** Where the agent listens on each node (default 8090). */
  readonly port?: number;
  readonly nodeBinary?: string;
  readonly dryRun?: boolean;
}

/** The agent's home on the nodes: the lab's per-node folder for lab pairs, else /opt/pairshift-agent. */
export function agentRootFor(pair: HAPair): string {
  return pair.metadata.labels?.['pairshift.io/lab'] ? LAB_AGENT_ROOT : DEFAULT_AGENT_ROOT;
}

const hasAgent = (dir: string) => existsSync(join(dir, 'main.js'));

/** The folder holding the compiled agent (main.js and its siblings). */
export function agentSourceDir(explicit?: string): string {
  const candidates = [
    explicit,
    process.env.PAIRSHIFT_AGENT_DIR,
    fileURLToPath(new URL('../agent/node/', import.meta.url)),
    fileURLToPath(new URL('../../dist/agent/node/', import.meta.url)),
  ].filter((c): c is string => typeof c === 'string' && c !== '');
  const found = candidates.find(hasAgent);
  if (!found) {
    throw new DriverError(
      `no compiled node agent found (looked in ${candidates.join(', ')}); run npm run build, or set PAIRSHIFT_AGENT_DIR`,
      { kind: 'terminal' },
    );
  }
  return found;
}

/** installAgent on both nodes (in parallel); unchanged where it is installed and running. */
export async function ensureAgents(deps: AgentsDeps): Promise<InstallResult[]> {
  const root = deps.root ?? agentRootFor(deps.pair);
  const sourceDir = agentSourceDir(deps.sourceDir);
  return Promise.all(
    deps.pair.spec.nodes.map((n) =>
      installAgent(deps.shell, n.name, {
        config: agentConfigFor(deps.pair, n.name, {
          root,
          ...(deps.port ? { port: deps.port } : {}),
        }),
        root,
        sourceDir,
        ...(deps.nodeBinary ? { nodeBinary: deps.nodeBinary } : {}),
        ...(deps.dryRun ? { dryRun: true } : {}),
      }),
    ),
  );
}
