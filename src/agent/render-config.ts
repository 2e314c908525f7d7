// The agent's config for one node, rendered from the HAPair (pure). Only what
// the node needs goes in: no password (the operator's pgpass stays on the
// operator; the agent uses peer authentication as the database's OS user).
import { isIPv4 } from 'node:net';
import { type AgentConfig, DEFAULT_PORT } from './node/config.js';

/** The parts of a HAPair the agent config is made from. */
export interface HAPairForAgent {
  spec: {
    vip: { address: string; prefixLength: number };
    nodes: ReadonlyArray<{ name: string; address: string }>;
    keepalived?: { instance: string; virtualRouterId?: number } | undefined;
    services: ReadonlyArray<{
      name: string;
      port: number;
      healthPath?: string;
      versionPath?: string;
    }>;
    database?:
      | {
          port: number;
          superuser?: string;
          user: string;
          osUser?: string;
          binDir?: string;
          socketDir?: string;
        }
      | undefined;
    rsync?: { status?: string } | undefined;
  };
}

export interface AgentConfigOptions {
  /** where the agent lives on the node (pid file goes there) */
  readonly root: string;
  readonly port?: number;
  /** extra CIDRs allowed besides loopback and the pair's own subnet */
  readonly allow?: readonly string[];
  readonly checkTimeoutMs?: number;
  readonly commandTimeoutMs?: number;
  /** `keepalived --signum=JSON` on the nodes; 36 on Debian and Ubuntu */
  readonly keepalivedJsonSignal?: number;
}

/** "198.18.3.100", 24 -> "198.18.3.0/24" */
export function subnetOf(address: string, prefixLength: number): string {
  if (!isIPv4(address)) return `${address}/${prefixLength}`;
  const n = address.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
  const size = 2 ** (32 - prefixLength);
  const base = Math.floor(n / size) * size;
  const parts = [24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256);
  return `${parts.join('.')}/${prefixLength}`;
}

export function agentConfigFor(
  pair: HAPairForAgent,
  nodeName: string,
  opts: AgentConfigOptions,
): AgentConfig {
  const { spec } = pair;
  const node = spec.nodes.find((n) => n.name === nodeName);
  if (!node) {
    throw new Error(
      `no node "${nodeName}" in the HAPair (nodes: ${spec.nodes.map((n) => n.name).join(', ')})`,
    );
  }
  const db = spec.database;
  return {
    node: node.name,
    listen: { host: '0.0.0.0', port: opts.port ?? DEFAULT_PORT },
    // loopback (checks from the node itself) and the pair's subnet, where the
    // operator and the peer reach the node; anything else is the caller's choice
    allow: [
      '127.0.0.0/8',
      '::1/128',
      subnetOf(spec.vip.address, spec.vip.prefixLength),
      ...(opts.allow ?? []),
    ],
    checkTimeoutMs: opts.checkTimeoutMs ?? 1500,
    commandTimeoutMs: opts.commandTimeoutMs ?? 10_000,
    database: db && {
      psql: db.binDir ? `${db.binDir}/psql` : 'psql',
      host: db.socketDir ?? '127.0.0.1',
      port: db.port,
      user: db.superuser ?? db.user,
      dbname: 'postgres',
      osUser: db.osUser,
      passFile: undefined,
    },
    services: spec.services.map((s) => ({
      name: s.name,
      host: '127.0.0.1',
      port: s.port,
      healthPath: s.healthPath,
      versionPath: s.versionPath,
    })),
    keepalived: spec.keepalived && {
      instance: spec.keepalived.instance,
      virtualRouterId: spec.keepalived.virtualRouterId,
      pidFile: undefined,
      jsonSignal: opts.keepalivedJsonSignal ?? 36,
      vip: spec.vip.address,
    },
    rsyncStatusCommand: spec.rsync?.status,
    pidFile: `${opts.root}/agent.pid`,
  };
}

/** The config as written to the node: stable bytes, so a hash compares it. */
export function renderAgentConfig(cfg: AgentConfig): string {
  return `${JSON.stringify(cfg, null, 2)}\n`;
}
