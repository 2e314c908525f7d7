// `pairshift operator`: runs the reconciler until stopped (SIGINT/SIGTERM).
// Standalone: resources from a manifests folder and the store.

import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { filter, merge } from 'rxjs';
import { operatorProbes, type RunningProbes, startProbesServer } from '../api/probes-server.js';
import { parseListen, type RunningApi, startApiServer } from '../api/server.js';
import { loadApiTokens } from '../api/tokens.js';
import { UploadJanitor } from '../api/upload-janitor.js';
import { ReplicaPresence } from '../api/upload-replicas.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import type { ConfigFile } from '../config/schema.js';
import { createLogger } from '../log/logger.js';
import { notifySettingsFrom } from '../notify/notifier.js';
import { createOperatorMetrics } from '../operator/metrics.js';
import { startOperator } from '../operator/operator.js';
import { loadTrustedKey } from '../packages/signing.js';
import type { ResourceSource } from '../reconciler/source.js';
import { loadKubeConfig, namespaceFrom } from '../sources/kubernetes.js';
import type { LeaseElector } from '../sources/lease.js';
import { leaderElectedSource } from '../sources/replica.js';
import { StandaloneSource } from '../sources/standalone.js';
import { openContext } from './context.js';

export interface OperatorCliOptions {
  config?: string;
  databaseUrl?: string;
  dataDir?: string;
  manifests?: string;
  trustedKey: string[];
  workDir?: string;
  concurrency?: string;
  kubernetes?: boolean;
  kubeconfig?: string;
  namespace?: string;
  listen?: string;
  metricsListen?: string;
  shutdownGrace?: string;
}

/** Below Kubernetes' default terminationGracePeriodSeconds (30 s), with room to exit. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 25_000;

export const DEFAULT_WORK_DIR = '/var/lib/pairshift/work';
export const DEFAULT_CONCURRENCY = 4;

/** The operator's settings that have a flag, resolved. */
export interface OperatorSettings {
  /** Packages are staged here, and uploads land here (upload_* folders). */
  readonly workDir: string;
  readonly manifestsDir: string | undefined;
  readonly concurrency: number;
  readonly listen: string | undefined;
  /** Probes and metrics (/livez, /readyz, /metrics); off when undefined. */
  readonly metricsListen: string | undefined;
  /** How long a SIGTERM lets running steps and uploads finish. */
  readonly shutdownGraceMs: number;
  readonly keyPaths: readonly string[];
}

/**
 * Flag > environment > file > default, for every setting with a flag. The
 * configuration comes with the environment already applied (applyEnv), so
 * a flag given wins and otherwise the configuration's value, then the
 * default. Repeated --trusted-key flags replace packages.trustedKeys.
 */
export function resolveOperatorSettings(
  flags: Omit<OperatorCliOptions, 'trustedKey'> & { trustedKey?: string[] },
  config: ConfigFile,
): OperatorSettings {
  const manifestsDir = flags.manifests ?? config.operator?.manifestsDir;
  const concurrency = flags.concurrency ?? config.operator?.concurrency ?? DEFAULT_CONCURRENCY;
  if (!/^\d+$/.test(String(concurrency)) || Number(concurrency) < 1 || Number(concurrency) > 64) {
    throw new Error(`--concurrency: expected a whole number from 1 to 64, got "${concurrency}"`);
  }
  let shutdownGraceMs = config.operator?.shutdownGrace ?? DEFAULT_SHUTDOWN_GRACE_MS;
  if (flags.shutdownGrace !== undefined) {
    const ms = parseDuration(flags.shutdownGrace);
    if (ms === null || ms <= 0) {
      throw new Error(
        `--shutdown-grace: expected a positive duration like "25s" or "1m", got "${flags.shutdownGrace}"`,
      );
    }
    shutdownGraceMs = ms;
  }
  if (flags.metricsListen !== undefined) parseListen(flags.metricsListen);
  return {
    metricsListen: flags.metricsListen ?? config.metrics?.listen,
    shutdownGraceMs,
    workDir: resolve(flags.workDir ?? config.packages?.workDir ?? DEFAULT_WORK_DIR),
    manifestsDir: manifestsDir ? resolve(manifestsDir) : undefined,
    concurrency: Number(concurrency),
    listen: flags.listen ?? config.api?.listen,
    keyPaths: flags.trustedKey?.length ? flags.trustedKey : (config.packages?.trustedKeys ?? []),
  };
}

export function registerOperatorCommands(program: Command): void {
  program
    .command('operator')
    .description('run the reconciler: follow UpgradeRequests and carry them out (standalone mode)')
    .option('--config <file>', 'configuration file')
    .option('--database-url <url>', 'PostgreSQL store (default: embedded)')
    .option('--data-dir <dir>', 'embedded store folder')
    .option('--manifests <dir>', 'folder of HAPair and UpgradeRequest manifests to follow')
    .option(
      '--trusted-key <pem>',
      'trusted package signing key (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    // No commander defaults: a default here would hide the file's value
    // (resolveOperatorSettings applies them after flag, environment, file).
    .option('--work-dir <dir>', `where packages are staged (default ${DEFAULT_WORK_DIR})`)
    .option('--concurrency <n>', `upgrades reconciled at once (default ${DEFAULT_CONCURRENCY})`)
    .option('--kubernetes', 'watch HAPair and UpgradeRequest custom resources instead of a folder')
    .option(
      '--kubeconfig <file>',
      'kubeconfig (default $KUBECONFIG, ~/.kube/config, or in-cluster)',
    )
    .option(
      '--namespace <ns>',
      'namespace to watch (default: the kubeconfig context or pod namespace)',
    )
    .option(
      '--listen <host:port>',
      'serve the REST API (and /health) here, e.g. 127.0.0.1:8080 (default: api.listen in the configuration)',
    )
    .option(
      '--metrics-listen <host:port>',
      'serve /livez, /readyz and /metrics here, no token (default: metrics.listen in the configuration; off)',
    )
    .option(
      '--shutdown-grace <duration>',
      `on SIGTERM, how long running steps and uploads may finish (default ${formatDuration(DEFAULT_SHUTDOWN_GRACE_MS)})`,
    )
    .action(async (o: OperatorCliOptions) => {
      const ctx = await openContext(o);
      let resolved: OperatorSettings;
      try {
        resolved = resolveOperatorSettings(o, ctx.config);
      } catch (err) {
        await ctx.db.close();
        throw err;
      }
      const { workDir, keyPaths } = resolved;
      const logger = createLogger({
        level: ctx.config.log?.level ?? 'info',
        format: ctx.config.log?.format ?? 'auto',
      });
      if (keyPaths.length === 0) {
        await ctx.db.close();
        throw new Error(
          'no trusted package signing key: give --trusted-key or packages.trustedKeys in the configuration',
        );
      }
      const trustedKeys = await Promise.all(keyPaths.map((p) => loadTrustedKey(p)));
      let source: ResourceSource;
      let elector: LeaseElector | null = null;
      // The Lease identity, and the name of this replica's marker in the
      // upload folder (which replicas share in deploy/overlays/ha).
      const identity = process.env.POD_NAME ?? hostname();
      const presence = new ReplicaPresence({ workDir, replica: identity });
      if (o.kubernetes) {
        // Replicas may run; the one holding the Lease reconciles.
        const kubeConfig = loadKubeConfig({ kubeconfigPath: o.kubeconfig });
        const namespace = namespaceFrom(kubeConfig, o.namespace);
        const replica = leaderElectedSource({ kubeConfig, namespace, identity, log: logger });
        elector = replica.elector;
        source = replica.source;
        replica.elector.start();
      } else {
        source = new StandaloneSource({
          db: ctx.db,
          manifestsDir: resolved.manifestsDir,
          onProblem: (m) => logger.warn(m),
        });
      }
      const metrics = resolved.metricsListen ? createOperatorMetrics() : undefined;
      const op = await startOperator({
        ...(metrics ? { metrics } : {}),
        db: ctx.db,
        source,
        settings: ctx.settings,
        logger,
        trustedKeys,
        workDir,
        concurrency: resolved.concurrency,
        notifications: {
          receivers: ctx.config.notifications?.receivers ?? [],
          settings: notifySettingsFrom(ctx.config.notifications),
        },
        ...(process.env.PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS
          ? { killAfterActions: Number(process.env.PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS) }
          : {}),
      });
      // Upload folders: swept now, before the API can receive an upload (a
      // folder no upgrade uses is then left over from a killed operator or a
      // gone upgrade), then removed as their upgrades end (each finished
      // reconcile and each resource change wakes a pass; at least every minute).
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      const janitor = new UploadJanitor({
        workDir,
        source,
        logger,
        presence,
        wake$: merge(source.changes$, op.loop.events$.pipe(filter((e) => e.type === 'succeeded'))),
      });
      await janitor.sweepAtStart();
      janitor.start();
      let api: RunningApi | null = null;
      let running = true;
      const listen = resolved.listen;
      if (listen) {
        const apiConfig = ctx.config.api ?? {};
        const tokens = await loadApiTokens(apiConfig.tokens ?? [], (m) => logger.warn(m));
        if (tokens.length === 0) {
          await janitor.stop();
          await op.stop();
          await ctx.db.close();
          throw new Error(
            'the API needs at least one token: add api.tokens (name, role, tokenFile) to the configuration',
          );
        }
        await mkdir(workDir, { recursive: true, mode: 0o700 });
        api = await startApiServer(listen, {
          source,
          db: ctx.db,
          logger,
          auth: { tokens },
          allow: apiConfig.allow ?? ['127.0.0.1/32', '::1/128'],
          limits: {
            ...(apiConfig.bodyLimit ? { bodyBytes: apiConfig.bodyLimit } : {}),
            ...(apiConfig.rateLimit ? { rateLimit: apiConfig.rateLimit } : {}),
          },
          // The source's own state (a failing watch) is read by /health itself.
          operatorState: () => ({ sourceStarted: running, reconcilerRunning: !op.loop.stopped }),
          // The reconciler's writes reach the progress view at once.
          progressChanges$: op.actions$,
          autoRollbackDefault: ctx.settings.autoRollback,
          upload: {
            workDir,
            trustedKeys,
            maxBytes: apiConfig.uploadLimit ?? 1024 ** 3,
            owner: presence.self,
            leaderProblem: () =>
              presence.leaderProblem(
                elector
                  ? { leads: elector.isLeader, leader: elector.leader }
                  : { leads: true, leader: null },
              ),
          },
        }).catch(async (err: unknown) => {
          await janitor.stop();
          await op.stop();
          await ctx.db.close();
          throw new Error(`cannot serve the API on ${listen}`, { cause: err });
        });
        logger.info(`API listening on ${api.url}`);
      }
      let probes: RunningProbes | null = null;
      let probeDeps: ReturnType<typeof operatorProbes> | null = null;
      if (metrics && resolved.metricsListen) {
        metrics.readLeader(() => source.mayAct?.() ?? true);
        probeDeps = operatorProbes({
          storeQuery: () => ctx.db.query('SELECT 1'),
          sourceState: () => source.state(),
          sourceStarted: () => running,
          loopStopped: () => op.loop.stopped,
          draining: () => op.draining,
          metrics: async () => ({
            contentType: metrics.registry.contentType,
            body: await metrics.registry.metrics(),
          }),
        });
        probes = await startProbesServer(resolved.metricsListen, probeDeps).catch(
          async (err: unknown) => {
            await api?.stop();
            await janitor.stop();
            await op.stop();
            await ctx.db.close();
            throw new Error(`cannot serve probes and metrics on ${resolved.metricsListen}`, {
              cause: err,
            });
          },
        );
        logger.info(`probes and metrics listening on ${probes.url}`);
      }
      const signal = await new Promise<string>((done) => {
        process.once('SIGINT', () => done('SIGINT'));
        process.once('SIGTERM', () => done('SIGTERM'));
      });
      const grace = resolved.shutdownGraceMs;
      // A second signal while draining: the caller will not wait; go now,
      // as after a kill (the journal shows what was running).
      const again = () => {
        logger.warn('second signal while draining: exiting at once');
        process.exit(1);
      };
      process.once('SIGINT', again);
      process.once('SIGTERM', again);
      logger.info(`${signal}: draining (up to ${formatDuration(grace)}): no new step starts`);
      // Readiness is 503 from here (op.draining); the API refuses new
      // connections and lets requests in flight (uploads) finish.
      const [drained, requestsLeft] = await Promise.all([
        op.drain(grace),
        api ? api.drain(grace) : Promise.resolve(0),
      ]);
      if (!drained.clean) {
        // Not stopped cleanly: the step's RUNNING row and the journal make the
        // next operator observe it as in flight and go on from there. The
        // Lease is not released: it expires, so no replica acts while the
        // step's remote command may still be running on its node.
        logger.error(
          `shutdown grace of ${formatDuration(grace)} ran out with step(s) still running: ${drained.leftRunning.join('; ')}; exiting without waiting`,
        );
        process.exit(1);
      }
      if (requestsLeft > 0) {
        logger.warn(`shutdown grace ran out with ${requestsLeft} API request(s) still running`);
      }
      running = false;
      await api?.stop();
      await janitor.stop();
      await presence.withdraw().catch(() => undefined);
      await op.stop();
      // Released (the default): the next replica takes over at once.
      await elector?.stop();
      await probes?.stop();
      probeDeps?.stop();
      await ctx.db.close();
      logger.info('stopped: every running step finished and was recorded');
    });
}
