// The JSON command handler (task list 2.7.3-2.7.5): one request in, one
// response out, each command under a deadline, and the allowlist applied to
// the SSH client's address.
import { Allowlist, sshClientAddress } from './cidr.js';
import type { AgentConfig } from './config.js';
import { queryDatabase } from './database.js';
import type { HealthChecker } from './health.js';
import { dumpVrrp, findKeepalived, vipPresent } from './keepalived.js';
import { hostForUrl, httpGet } from './net-checks.js';
import { lastLine, runProgram } from './process.js';
import {
  type CommandRequest,
  type CommandResponse,
  errorResponse,
  ProtocolError,
  parseRequest,
  stringArg,
  withTimeout,
} from './protocol.js';
import { agentVersion } from './version.js';

export const COMMANDS = ['health', 'check', 'status', 'version'] as const;

/** Each part of `status` on its own; a failing part is reported, not fatal. */
async function part<T>(
  ms: number,
  what: string,
  fn: (s: AbortSignal) => Promise<T>,
): Promise<T | { error: string }> {
  try {
    return await withTimeout(ms, what, fn);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export async function nodeStatus(cfg: AgentConfig): Promise<Record<string, unknown>> {
  const ms = cfg.checkTimeoutMs;
  const services = Promise.all(
    cfg.services.map(async (s) => {
      if (!s.versionPath) return { name: s.name, version: null };
      const path = s.versionPath;
      const v = await part(ms, `GET ${path} of ${s.name}`, async (signal) => {
        const r = await httpGet(`http://${hostForUrl(s.host)}:${s.port}${path}`, signal);
        if (r.statusCode !== 200) throw new Error(`GET ${path} answered ${r.statusCode}`);
        const body = r.body.trim();
        try {
          const j = JSON.parse(body) as unknown;
          if (j && typeof j === 'object' && 'version' in j)
            return String((j as { version: unknown }).version);
        } catch {
          // plain text version
        }
        return body.slice(0, 200);
      });
      return typeof v === 'string'
        ? { name: s.name, version: v }
        : { name: s.name, version: null, ...v };
    }),
  );
  const ka = cfg.keepalived;
  const keepalived = ka
    ? part(ms, 'reading keepalived state', async (signal) => {
        const pid = findKeepalived(ka);
        if (pid === undefined) return { running: false, state: null };
        const snap = await dumpVrrp(pid, ka, signal);
        return {
          running: true,
          pid,
          state: snap.state,
          advertSent: snap.advertSent,
          advertReceived: snap.advertReceived,
          ...(ka.vip ? { vipPresent: vipPresent(ka.vip) } : {}),
        };
      })
    : Promise.resolve(null);
  const db = cfg.database;
  const database = db
    ? part(ms, 'querying the database', (signal) => queryDatabase(db, signal))
    : Promise.resolve(null);
  const cmd = cfg.rsyncStatusCommand;
  const rsync = cmd
    ? part(ms, 'reading the rsync job status', async (signal) => {
        const r = await runProgram('/bin/sh', ['-c', cmd], { signal });
        if (r.code !== 0) throw new Error(`exit ${r.code}: ${lastLine(r.stderr)}`);
        const line = lastLine(r.stdout);
        try {
          return JSON.parse(line) as unknown;
        } catch {
          return { raw: line };
        }
      })
    : Promise.resolve(null);
  return {
    node: cfg.node,
    agentVersion: agentVersion(),
    services: await services,
    keepalived: await keepalived,
    database: await database,
    rsync: await rsync,
  };
}

async function dispatch(
  cfg: AgentConfig,
  checker: HealthChecker,
  req: CommandRequest,
): Promise<unknown> {
  switch (req.command) {
    case 'health':
      return checker.report();
    case 'check': {
      const name = stringArg(req, 'name');
      const r = await checker.one(name);
      if (!r) {
        throw new ProtocolError(
          'bad_request',
          `no check "${name}"; this node has: ${checker.names.join(', ')}`,
        );
      }
      return r;
    }
    case 'status':
      return nodeStatus(cfg);
    case 'version':
      return { agent: agentVersion(), node: process.version, nodeName: cfg.node };
    default:
      throw new ProtocolError(
        'unknown_command',
        `unknown command "${req.command}"; known: ${COMMANDS.join(', ')}`,
      );
  }
}

/** The whole handler, from raw stdin to one response (never throws). */
export async function handleCommand(
  cfg: AgentConfig,
  checker: HealthChecker,
  input: Buffer,
  env: Record<string, string | undefined>,
): Promise<CommandResponse> {
  try {
    // Over SSH the client's address is known; refuse it before reading the
    // request. Run locally (no SSH variables), the caller is already on the node.
    const client = sshClientAddress(env);
    if (client !== undefined && !new Allowlist(cfg.allow).allows(client)) {
      throw new ProtocolError('forbidden', `client ${client} is not in this agent's allowlist`);
    }
    const req = parseRequest(input);
    const timeoutMs = Math.min(req.timeoutMs ?? cfg.commandTimeoutMs, cfg.commandTimeoutMs);
    const result = await withTimeout(timeoutMs, `command "${req.command}"`, () =>
      dispatch(cfg, checker, req),
    );
    return { ok: true, result };
  } catch (err) {
    if (err instanceof ProtocolError) return errorResponse(err.code, err.message);
    return errorResponse('failed', (err as Error).message || String(err));
  }
}
