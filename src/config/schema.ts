// The shape of pairshift's configuration file, validated with zod. Unknown
// keys are refused (a typo must not silently fall back to a default), and
// every message names the field and what was expected.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { receiverListSchema } from './receivers.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v * 1000 : parseDuration(v);
  if (ms === null || !Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a positive duration like "30s", "15m" or "1h", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const count = (min: number, max: number) =>
  z
    .number({ error: `expected a whole number from ${min} to ${max}` })
    .int({ error: `expected a whole number from ${min} to ${max}` })
    .min(min, { error: `expected a whole number from ${min} to ${max}` })
    .max(max, { error: `expected a whole number from ${min} to ${max}` });

/** Upgrade settings: task list 1.2. Every field optional here; defaults come from upgrade_config. */
export const upgradeSettingsSchema = z
  .object({
    upgradeTimeout: duration,
    vipSwitchTimeout: duration,
    vipSwitchRetries: count(0, 10),
    healthCheckTimeout: duration,
    healthCheckRetries: count(0, 20),
    healthCheckInterval: duration,
    healthCheckConsecutivePasses: count(1, 20),
    backupRetention: count(1, 100),
    downtimeBudget: duration,
    autoRollback: z.boolean({ error: 'expected true or false' }),
    unreachableGrace: duration,
  })
  .partial()
  .strict();

export const configFileSchema = z
  .object({
    store: z
      .object({
        databaseUrl: z.string().url({ error: 'expected a postgres:// URL' }).optional(),
        dataDir: z.string().min(1, { error: 'expected a folder path' }).optional(),
        passwordFile: z
          .string()
          .min(1, { error: 'expected a file path' })
          .optional()
          .describe(
            'PostgreSQL store only: a file holding the password (a Secret volume), read for every new connection; the URL then has none',
          ),
      })
      .strict()
      .optional(),
    log: z
      .object({
        level: z.enum(['error', 'warn', 'info', 'debug'], {
          error: 'expected one of error, warn, info, debug',
        }),
        format: z.enum(['json', 'pretty', 'auto'], { error: 'expected one of json, pretty, auto' }),
      })
      .partial()
      .strict()
      .optional(),
    upgrade: upgradeSettingsSchema.optional(),
    packages: z
      .object({
        /** ed25519 public keys (PEM files) whose signatures are trusted. */
        trustedKeys: z.array(z.string().regex(/^\//, { error: 'expected an absolute path' })),
        /** Where packages are staged while an upgrade runs. */
        workDir: z.string().regex(/^\//, { error: 'expected an absolute path' }),
      })
      .partial()
      .strict()
      .optional(),
    operator: z
      .object({
        /** Folder of HAPair and UpgradeRequest manifests to follow. */
        manifestsDir: z.string().min(1),
        /** Upgrades reconciled at once (different pairs). */
        concurrency: count(1, 64),
        /**
         * How long a SIGTERM waits for the running steps to finish (and API
         * uploads to drain) before the process exits anyway; keep it below
         * the pod's terminationGracePeriodSeconds (default 25s).
         */
        shutdownGrace: duration,
      })
      .partial()
      .strict()
      .optional(),
    /**
     * Probes and metrics (/livez, /readyz, /metrics) on their own port, with
     * no token and no allowlist: they reveal nothing secret. Off unless set.
     */
    metrics: z
      .object({
        /** host:port, e.g. 0.0.0.0:8081. */
        listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):\d{1,5}$/, {
          error: 'expected host:port like 0.0.0.0:8081',
        }),
      })
      .partial()
      .strict()
      .optional(),
    /**
     * Webhooks on phase changes, halts and results (docs/notifications.md).
     * Pairs add their own receivers in their HAPair (spec.notifications).
     */
    notifications: z
      .object({
        receivers: receiverListSchema,
        /** One attempt's limit (default 10s). */
        requestTimeout: duration,
        /** Events waiting per receiver at most (default 1000). */
        queueLimit: count(1, 100_000),
        retry: z
          .object({
            /** Attempts in all (default 20). */
            maxAttempts: count(1, 100),
            /** No attempt starts later than this after the event (default 15m). */
            maxAge: duration,
            /** The first retry waits up to this (default 1s), doubling each time. */
            baseDelay: duration,
            /** The longest wait between attempts (default 60s). */
            maxDelay: duration,
          })
          .partial()
          .strict(),
      })
      .partial()
      .strict()
      .optional(),
    /** The REST compatibility API (src/api); served by `pairshift operator` when listen is set. */
    api: z
      .object({
        /** host:port, e.g. 127.0.0.1:8080. */
        listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):\d{1,5}$/, {
          error: 'expected host:port like 127.0.0.1:8080',
        }),
        /** Bearer tokens; each value is read from its file, never written here. */
        tokens: z.array(
          z
            .object({
              name: z.string().min(1).max(100),
              role: z.enum(['viewer', 'operator'], { error: 'expected viewer or operator' }),
              tokenFile: z.string().regex(/^\//, { error: 'expected an absolute path' }),
            })
            .strict(),
        ),
        /** Client addresses allowed (CIDRs); default loopback only. */
        allow: z.array(z.string().min(1)),
        rateLimit: z
          .object({
            ratePerSecond: z.number().positive({ error: 'expected a positive number' }),
            burst: count(1, 100_000),
          })
          .strict(),
        /** Largest JSON body in bytes (default 64 KiB). */
        bodyLimit: count(1024, 10 * 1024 * 1024),
        /** Largest package upload in bytes (default 1 GiB). */
        uploadLimit: count(1024, 64 * 1024 ** 3),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

export type ConfigFile = z.output<typeof configFileSchema>;
export type UpgradeSettingsOverrides = z.output<typeof upgradeSettingsSchema>;
