// Two ways to get a node's health report, both real in the lab and in
// production:
// - httpHealthProbe: GET http://<node address>:<agent port>/health straight
//   from the operator. The default: it is what /health is for, and the
//   operator reaches the nodes' subnet (in the lab through the host's uplink
//   into the lab bridge).
// - sshHealthProbe: `pairshift-agent run` with {"command":"health"} over the
//   pinned SSH connection, for sites where only port 22 is open to the
//   operator. Same report, same checks.
import { request } from 'node:http';
import type { HealthReport } from '../../agent/node/protocol.js';
import { DriverError, tail } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';

/** Checks the shape of a report from the wire. */
export function parseHealthReport(text: string, node: string): HealthReport {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new DriverError(`the agent's answer is not JSON: ${tail(text, 200)}`, {
      kind: 'terminal',
      node,
    });
  }
  const r = v as Partial<HealthReport> | null;
  if (
    !r ||
    (r.status !== 'UP' && r.status !== 'DOWN') ||
    !Array.isArray(r.checks) ||
    typeof r.role !== 'string'
  ) {
    throw new DriverError(`the agent's answer is not a health report: ${tail(text, 200)}`, {
      kind: 'terminal',
      node,
    });
  }
  return r as HealthReport;
}

export function httpHealthProbe(addressOf: (node: string) => { host: string; port: number }) {
  return async (node: string, timeoutMs: number): Promise<HealthReport> => {
    const { host, port } = addressOf(node);
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { signal: AbortSignal.timeout(timeoutMs), headers: { connection: 'close' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (b: Buffer) => chunks.push(b));
          res.on('error', reject);
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200 && res.statusCode !== 503) {
              reject(
                new DriverError(`GET ${url} answered ${res.statusCode}: ${tail(body, 200)}`, {
                  kind: 'terminal',
                  node,
                }),
              );
              return;
            }
            try {
              resolve(parseHealthReport(body, node));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('error', (err: Error) => {
        const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError';
        reject(
          new DriverError(
            timedOut ? `GET ${url} timed out after ${timeoutMs} ms` : `GET ${url}: ${err.message}`,
            {
              kind: 'transient',
              timedOut,
              node,
              cause: err,
            },
          ),
        );
      });
      req.end();
    });
  };
}

export function sshHealthProbe(shell: NodeShell, agentArgv: readonly string[]) {
  return async (node: string, timeoutMs: number): Promise<HealthReport> => {
    const r = await shell.exec(node, agentArgv, {
      stdin: JSON.stringify({ command: 'health', timeoutMs }),
      timeoutMs: timeoutMs + 2000,
    });
    let answer: { ok?: boolean; result?: unknown; error?: { code?: string; message?: string } };
    try {
      answer = JSON.parse(r.stdout);
    } catch {
      throw new DriverError(`pairshift-agent printed no JSON: ${tail(r.stdout, 200)}`, {
        kind: 'terminal',
        node,
      });
    }
    if (!answer.ok) {
      throw new DriverError(
        `pairshift-agent refused: ${answer.error?.code}: ${answer.error?.message}`,
        {
          kind: answer.error?.code === 'timeout' ? 'transient' : 'terminal',
          timedOut: answer.error?.code === 'timeout',
          node,
        },
      );
    }
    return parseHealthReport(JSON.stringify(answer.result), node);
  };
}

export type ProbeRoute =
  | { readonly via: 'http'; readonly port?: number }
  | { readonly via: 'ssh'; readonly shell: NodeShell; readonly agentArgv: readonly string[] };

/** The probe for a pair's nodes, by name, along the chosen route. */
export function pairHealthProbe(
  pair: { spec: { nodes: ReadonlyArray<{ name: string; address: string }> } },
  route: ProbeRoute,
) {
  if (route.via === 'ssh') return sshHealthProbe(route.shell, route.agentArgv);
  return httpHealthProbe((node) => {
    const n = pair.spec.nodes.find((x) => x.name === node);
    if (!n) throw new DriverError(`unknown node "${node}"`, { kind: 'terminal', node });
    return { host: n.address, port: route.port ?? 8090 };
  });
}
