// The real pair behind an upgrade: SSH to its nodes, the staged package, the
// node agents, the observer and the executor, and the operator's own probe of
// the VIP that measures downtime (task list 4.5.8). Built once per upgrade by
// the reconciler and closed when the upgrade is done.
import { mkdirSync } from 'node:fs';
import type { UpgradeSettings } from '../config/settings.js';
import type { UpgradeRequest } from '../core/upgrade-request.js';
import { pairHealthProbe } from '../drivers/health/probes.js';
import { KeepalivedDriver } from '../drivers/keepalived/driver.js';
import type { RecordSink } from '../drivers/records.js';
import { sshEndpoints } from '../drivers/ssh/endpoints.js';
import { type SshCommandObserver, SshPool } from '../drivers/ssh/pool.js';
import { type HAPair, protectedPaths } from '../inventory/hapair.js';
import { upgradePathProblem } from '../packages/index.js';
import type { TrustedKey } from '../packages/signing.js';
import { type StagedPackage, stagePackage } from '../packages/stage.js';
import { startProberOffThread } from '../prober/off-thread.js';
import type { Prober } from '../prober/prober.js';
import { ensureAgents } from './agents.js';
import { executeStep } from './execute.js';
import { type ObserveDeps, observePair } from './observe.js';
import type { UpgradeRuntime } from './reconciler.js';

export interface PairRuntimeOptions {
  readonly request: UpgradeRequest;
  readonly pair: HAPair;
  readonly upgradeId: string;
  readonly settings: UpgradeSettings;
  readonly records: RecordSink;
  readonly trustedKeys: readonly TrustedKey[];
  /** Where packages are staged (a private folder per upgrade is made inside). */
  readonly workDir: string;
  readonly log?: (message: string, meta?: Record<string, unknown>) => void;
  /** Probe the VIP for downtime (default true). */
  readonly probeVip?: boolean;
  readonly dryRun?: boolean;
  /** Told of every SSH command (metrics: latency and failures per node). */
  readonly sshObserver?: SshCommandObserver;
}

/** How the operator probes the VIP (a client prober with these settings counts the same way). */
export const OPERATOR_PROBE = { rateHz: 20, httpTimeoutMs: 300 } as const;

export async function createPairRuntime(o: PairRuntimeOptions): Promise<UpgradeRuntime> {
  const { pair, request, settings } = o;
  mkdirSync(o.workDir, { recursive: true, mode: 0o700 });
  const staged: StagedPackage = await stagePackage({
    path: request.spec.package.path,
    ...(request.spec.package.signaturePath ? { sigPath: request.spec.package.signaturePath } : {}),
    trustedKeys: o.trustedKeys,
    workDir: o.workDir,
    protect: { configDir: pair.spec.paths.configDir, paths: protectedPaths(pair) },
  });
  const shell = new SshPool(await sshEndpoints(pair), undefined, o.sshObserver);
  let prober: Prober | null = null;
  try {
    if (staged.version !== request.spec.package.version) {
      throw new Error(
        `the package is version ${staged.version}, the request asks for ${request.spec.package.version}`,
      );
    }
    // A dry run checks the agents and installs nothing.
    await ensureAgents({ pair, shell, ...(o.dryRun ? { dryRun: true } : {}) });
    const healthProbe = pairHealthProbe(pair, { via: 'http' });
    // One keepalived driver for the whole upgrade, shared by the observer and
    // the executor (it keeps no state between calls; one place sets it up).
    const keepalived = new KeepalivedDriver({ shell, pair, records: o.records });
    const observeDeps: ObserveDeps = {
      pair,
      shell,
      healthProbe,
      keepalived,
      migrations: staged.migrations,
    };
    const fromVersion = await fromVersionOf(request, () => observedVersion(observeDeps));
    const problem = upgradePathProblem(staged, fromVersion);
    if (problem) throw new Error(`the pair runs ${fromVersion}: ${problem.message}`);
    const web = pair.spec.services.find((s) => s.healthPath) ?? pair.spec.services[0]!;
    if (o.probeVip !== false) {
      // In a worker thread: on this thread's busy event loop the probe's own
      // delays were counted as outage (docs/prober.md, "The operator's probe").
      prober = await startProberOffThread(
        {
          httpUrl: `http://${pair.spec.vip.address}:${web.port}${web.healthPath ?? '/health'}`,
          ...OPERATOR_PROBE,
        },
        (why) => o.log?.(`VIP probe: ${why}`),
      );
    }
    let final: { httpLongestMs: number; httpTotalMs: number; httpBlindMs: number } | null = null;
    const executor = {
      pair,
      shell,
      records: o.records,
      settings,
      staged,
      healthProbe,
      keepalived,
      ...(o.log ? { log: o.log } : {}),
      ...(o.dryRun ? { dryRun: true } : {}),
    };
    return {
      fromVersion,
      targetVersion: staged.version,
      observe: (opts) => observePair(observeDeps, opts),
      async execute(step, node, ctx, restoreDatabase) {
        return executeStep(
          executor,
          { step, node },
          {
            upgradeId: o.upgradeId,
            masterNode: ctx.masterNode,
            backupNode: ctx.backupNode,
            fromVersion,
            targetVersion: staged.version,
            ...(restoreDatabase ? { restoreDatabase: true } : {}),
          },
        );
      },
      async downtime(finish) {
        if (finish && prober) {
          const report = await prober.stop();
          prober = null;
          // Each outage with how its probes ended, and where the probe was
          // blind (an outage there is invisible to it): what a reader
          // comparing with a client's prober needs (docs/prober.md).
          o.log?.('VIP probe stopped', {
            outages: report.http?.outages.map((w) => ({
              ms: w.durationMs,
              from: w.from,
              to: w.to,
              reasons: w.reasons,
            })),
            blind: report.http?.blind.map((w) => ({ ms: w.durationMs, from: w.from, to: w.to })),
            blindMs: report.http?.blindMs,
            skippedSlots: report.skippedSlots,
            late: report.http?.late,
          });
          // No HTTP report, no figure: never a 0 that nothing measured.
          final = report.http
            ? {
                httpLongestMs: report.http.longestOutageMs,
                httpTotalMs: report.http.totalOutageMs,
                httpBlindMs: report.http.blindMs,
              }
            : null;
        }
        return final;
      },
      async close() {
        if (prober) await prober.stop().catch(() => undefined);
        await shell.close();
        await staged.cleanup();
      },
    };
  } catch (err) {
    if (prober) await prober.stop().catch(() => undefined);
    await shell.close();
    await staged.cleanup();
    throw err;
  }
}

/**
 * The version the upgrade started from: the request's, else the one this
 * upgrade already published (an operator restarted mid-upgrade finds the
 * nodes on different versions and must not read them again), else the
 * version both nodes run now.
 */
export async function fromVersionOf(
  request: Pick<UpgradeRequest, 'spec' | 'status'>,
  observed: () => Promise<string>,
): Promise<string> {
  return request.spec.fromVersion ?? request.status?.fromVersion ?? observed();
}

/** The version both nodes run now; they must agree before an upgrade starts. */
async function observedVersion(deps: ObserveDeps): Promise<string> {
  const seen = await observePair(deps, { compareConfig: false });
  const versions = [...new Set(seen.nodes.map((n) => n.installedVersion))];
  if (versions.length !== 1 || versions[0] === null) {
    throw new Error(
      `the nodes do not agree on the version they run (${seen.nodes.map((n) => `${n.name}: ${n.installedVersion ?? 'unknown'}`).join(', ')}); set spec.fromVersion`,
    );
  }
  return versions[0]!;
}
