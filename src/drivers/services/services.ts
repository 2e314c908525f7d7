// Stop, start and status of the pair's services (task list 4.2.4, 4.2.6)
// through the commands the HAPair declares (systemd units in production,
// the lab's svc script in the lab), ensure-style: stopping a stopped service
// changes nothing. "Stopped" means the status command says so and the port
// refuses connections; "started" means the status command says running and
// the port answers the health path (HTTP 200), each waited for with a
// deadline. Status exit codes follow LSB init scripts and `systemctl status`:
// 0 running, 1-3 not running, 4 unknown.
import type { HAPair } from '../../inventory/hapair.js';
import { nodeNamed } from '../../inventory/hapair.js';
import { DriverError, whileDoing } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';
import { networkProbe, type ServiceProbe } from './probe.js';

export type ServiceState = 'running' | 'stopped';

export interface ServicesContext {
  readonly pair: HAPair;
  readonly shell: NodeShell;
  readonly probe?: ServiceProbe;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

export interface ServiceOptions {
  readonly node: string;
  readonly service: string;
  readonly dryRun?: boolean;
  /** How long to wait for the service to come up or go down (default 60 s). */
  readonly timeoutMs?: number;
  /**
   * Starting: how long the started service may take to answer its health
   * path (default timeoutMs). The executor derives it from the upgrade's
   * health-check settings (startWait below).
   */
  readonly readyWithinMs?: number;
  /** Starting: one health poll's deadline (default 2 s); a slower answer is a failed poll. */
  readonly probeTimeoutMs?: number;
}

export interface StartWait {
  /** How long a node's services together may take to answer their health paths after a start. */
  readonly readyWithinMs: number;
  /** One poll's deadline: a /health slower than this counts as not up. */
  readonly probeTimeoutMs: number;
}

/**
 * The wait for a started service's /health, from the upgrade's health-check
 * settings (issue 12.5): a health check that times out is a failed check
 * (task list 2.2.5), so a release that never answers in time fails within
 * one health-check timeout for the node, not a fixed minute per service.
 * Each poll gets the timeout's share of one of the allowed retries, so
 * `retries` slow answers fit in the timeout.
 */
export function startWait(s: {
  readonly healthCheckTimeout: number;
  readonly healthCheckRetries: number;
}): StartWait {
  const share = Math.floor(s.healthCheckTimeout / Math.max(1, s.healthCheckRetries));
  return {
    readyWithinMs: s.healthCheckTimeout,
    probeTimeoutMs: Math.min(10_000, Math.max(500, share)),
  };
}

export interface ServiceOutcome {
  readonly node: string;
  readonly service: string;
  readonly state: 'unchanged' | 'changed';
  readonly dryRun: boolean;
  readonly before: ServiceState;
  readonly after: ServiceState;
  /** ms from the command to the service being up (or down); 0 if nothing was done. */
  readonly waitedMs: number;
}

/** LSB/systemctl status exit code -> state; undefined for "unknown" (4) and others. */
export function stateFromStatusExit(code: number | null): ServiceState | undefined {
  if (code === 0) return 'running';
  if (code === 1 || code === 2 || code === 3) return 'stopped';
  return undefined;
}

function serviceNamed(pair: HAPair, name: string, node?: string) {
  const s = pair.spec.services.find((x) => x.name === name);
  if (!s) {
    throw new DriverError(
      `the HAPair declares no service "${name}" (it has ${pair.spec.services.map((x) => x.name).join(', ')})`,
      { kind: 'terminal', node },
    );
  }
  return s;
}

export async function serviceStatus(
  ctx: ServicesContext,
  node: string,
  service: string,
): Promise<ServiceState> {
  const svc = serviceNamed(ctx.pair, service, node);
  return whileDoing(
    `reading the status of service ${service}`,
    async () => {
      const r = await ctx.shell.exec(node, ['sh', '-c', svc.status], {
        okExitCodes: [1, 2, 3, 4],
      });
      const s = stateFromStatusExit(r.exitCode);
      if (!s) {
        throw new DriverError(`status of service ${service} is unknown (exit ${r.exitCode})`, {
          kind: 'terminal',
          node,
          command: svc.status,
          exitCode: r.exitCode,
          stderrTail: r.stderr.slice(-400),
        });
      }
      return s;
    },
    { kind: 'transient', node },
  );
}

/** Up means: status running and the health path answering 200 within pollMs. */
async function isUp(
  ctx: ServicesContext,
  node: string,
  service: string,
  pollMs = 2000,
): Promise<boolean> {
  const svc = serviceNamed(ctx.pair, service, node);
  const probe = ctx.probe ?? networkProbe;
  if ((await serviceStatus(ctx, node, service)) !== 'running') return false;
  const host = nodeNamed(ctx.pair, node).address;
  return svc.healthPath
    ? probe.healthy(host, svc.port, svc.healthPath, pollMs)
    : probe.portOpen(host, svc.port, pollMs);
}

/** Down means: status stopped and the port refusing connections. */
async function isDown(ctx: ServicesContext, node: string, service: string): Promise<boolean> {
  const svc = serviceNamed(ctx.pair, service, node);
  const probe = ctx.probe ?? networkProbe;
  if ((await serviceStatus(ctx, node, service)) !== 'stopped') return false;
  return !(await probe.portOpen(nodeNamed(ctx.pair, node).address, svc.port, 1000));
}

async function waitUntil(
  ctx: ServicesContext,
  what: string,
  node: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<number> {
  const now = ctx.now ?? (() => performance.now());
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const start = now();
  for (;;) {
    if (await check()) return now() - start;
    if (now() - start > timeoutMs) {
      throw new DriverError(`${what} did not happen within ${timeoutMs} ms`, {
        kind: 'waiting',
        node,
      });
    }
    await sleep(250);
  }
}

export async function ensureServiceStopped(
  ctx: ServicesContext,
  opts: ServiceOptions,
): Promise<ServiceOutcome> {
  const { node, service } = opts;
  const svc = serviceNamed(ctx.pair, service, node);
  const dryRun = opts.dryRun ?? false;
  return whileDoing(
    `stopping service ${service}`,
    async () => {
      const before = await serviceStatus(ctx, node, service);
      const base = { node, service, dryRun, before };
      if (await isDown(ctx, node, service))
        return { ...base, state: 'unchanged' as const, after: before, waitedMs: 0 };
      if (dryRun) return { ...base, state: 'changed' as const, after: before, waitedMs: 0 };
      await ctx.shell.exec(node, ['sh', '-c', svc.stop], { timeoutMs: opts.timeoutMs ?? 60_000 });
      const waitedMs = await waitUntil(
        ctx,
        `service ${service} stopped with port ${svc.port} closed`,
        node,
        () => isDown(ctx, node, service),
        opts.timeoutMs ?? 60_000,
      );
      return { ...base, state: 'changed' as const, after: 'stopped' as const, waitedMs };
    },
    { kind: 'transient', node },
  );
}

export async function ensureServiceStarted(
  ctx: ServicesContext,
  opts: ServiceOptions,
): Promise<ServiceOutcome> {
  const { node, service } = opts;
  const svc = serviceNamed(ctx.pair, service, node);
  const dryRun = opts.dryRun ?? false;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const readyWithin = opts.readyWithinMs ?? timeoutMs;
  const up = () => isUp(ctx, node, service, opts.probeTimeoutMs);
  const ready = `service ${service} running with ${svc.healthPath ? `${svc.healthPath} answering 200` : 'its port open'} on port ${svc.port}`;
  return whileDoing(
    `starting service ${service}`,
    async () => {
      const before = await serviceStatus(ctx, node, service);
      const base = { node, service, dryRun, before };
      if (before === 'running') {
        // Already started: starting again cannot help a slow one; wait for it.
        if (dryRun || (await up()))
          return { ...base, state: 'unchanged' as const, after: before, waitedMs: 0 };
        const waitedMs = await waitUntil(ctx, ready, node, up, readyWithin);
        return { ...base, state: 'unchanged' as const, after: before, waitedMs };
      }
      if (dryRun) return { ...base, state: 'changed' as const, after: before, waitedMs: 0 };
      await ctx.shell.exec(node, ['sh', '-c', svc.start], { timeoutMs });
      const waitedMs = await waitUntil(ctx, ready, node, up, readyWithin);
      return { ...base, state: 'changed' as const, after: 'running' as const, waitedMs };
    },
    { kind: 'transient', node },
  );
}
