// The UpgradeRequest resource: "move pair X to package P". Its spec is what
// the user asked for (kubectl apply, a GitOps folder, the REST API or the
// CLI all write the same object); its status is the state machine's view
// (phase, progress, steps, conditions, backups, downtime). The zod schema is
// the single source: the CRD's openAPIV3Schema is generated from it
// (src/sources/crd.ts) and the REST API validates with it.
import { z } from 'zod';
import { PHASES } from './phases.js';
import { unstorable } from './text.js';
import { VERSION_RE } from './version.js';

export const API_GROUP = 'pairshift.io';
export const API_VERSION = 'pairshift.io/v1alpha1';

const duration = z
  .string()
  .regex(/^(\d+(\.\d+)?(ms|s|m|h))+$/, { error: 'expected a duration like "30s", "15m" or "1h"' });

// The same rule as packages' and the upload's (src/core/version.ts): a
// version a package could never carry is refused when the request is made.
const version = z.string().max(32).regex(VERSION_RE, {
  error: 'expected a version MAJOR.MINOR.PATCH without leading zeros, each part at most 9 digits',
});

/** Text the store can keep (src/core/text.ts), at most max characters. */
function storable(max: number, multiline = false) {
  return z
    .string()
    .max(max)
    .superRefine((s, ctx) => {
      const why = unstorable(s, multiline);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    });
}

/** An absolute path on the operator's host. */
const absolutePath = storable(4096).regex(/^\//, { error: 'expected an absolute path' });

/** Kubernetes object names (RFC 1123 subdomain), as HAPairs are named. */
const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
    error: 'expected a name of lower-case letters, digits, "-" and "."',
  });

const request = z.object({
  reason: storable(1000, true).min(1),
  requestedBy: storable(200).optional(),
  requestedAt: storable(64).optional(),
});

export const upgradeRequestSpecSchema = z
  .object({
    pairRef: z.object({ name: objectName }).strict(),
    package: z
      .object({
        /** Where the signed package is on the operator's host. */
        path: absolutePath,
        version,
        signaturePath: absolutePath.optional(),
      })
      .strict(),
    /** The version the pair runs now; observed from the nodes when absent. */
    fromVersion: version.optional(),
    options: z
      .object({
        autoRollback: z.boolean().optional(),
        upgradeTimeout: duration.optional(),
        vipSwitchTimeout: duration.optional(),
        healthCheckTimeout: duration.optional(),
        downtimeBudget: duration.optional(),
        /** Start only when true (an approval gate); absent means approved. */
        approved: z.boolean().optional(),
        /** Plan and report only: no node is changed. */
        dryRun: z.boolean().optional(),
      })
      .strict()
      .optional(),
    /** Set to stop the upgrade at a safe point (task list 3.5). */
    cancel: request.strict().optional(),
    /** Set to roll back to the old version (task list 3.4). */
    rollback: request.extend({ restoreDatabase: z.boolean().optional() }).strict().optional(),
  })
  .strict();

export const conditionSchema = z.object({
  type: z.enum(['Progressing', 'Ready', 'Degraded', 'RolledBack', 'Reconciling', 'Stalled']),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().int().optional(),
});

export const upgradeRequestStatusSchema = z.object({
  phase: z.enum(PHASES),
  observedGeneration: z.number().int().optional(),
  progress: z.number().int().min(0).max(100),
  fromVersion: z.string().optional(),
  targetVersion: z.string().optional(),
  completedSteps: z.array(
    z.object({ step: z.string(), node: z.string().optional(), at: z.string() }),
  ),
  /** The step being run now ("UPGRADE_BACKUP/INSTALL_PACKAGE@node-b"); absent between steps. */
  currentStep: z.string().optional(),
  message: z.string().optional(),
  estimatedCompletionTime: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  conditions: z.array(conditionSchema),
  /**
   * What the last observation of the nodes could not read or found wrong
   * (a probe that timed out, the VIP answering from an unexpected node);
   * absent when it found nothing. Often the reason an upgrade waits.
   */
  problems: z.array(z.string()).optional(),
  /** The backup files verified so far: where they are and their checksums (never their content). */
  backups: z
    .array(
      z.object({
        node: z.string(),
        kind: z.string(),
        path: z.string(),
        md5: z.string(),
        sha256: z.string(),
        verifiedAt: z.string(),
      }),
    )
    .optional(),
  /** The last VIP switch attempt; durationMs is absent when the switch did not finish. */
  vipSwitch: z
    .object({
      from: z.string(),
      to: z.string(),
      result: z.string(),
      attempt: z.number().int(),
      at: z.string(),
      durationMs: z.number().optional(),
    })
    .optional(),
  /**
   * Downtime the operator's own probe of the VIP measured (HTTP). Writes are
   * not measured by the operator (a client prober, pairshift probe, does),
   * so no write figure is published here.
   */
  downtime: z
    .object({
      httpLongestMs: z.number(),
      httpTotalMs: z.number(),
      /**
       * How long the probe itself could not look (its worker starved of CPU:
       * skipped slots, late results): an outage there is not in the two
       * figures above. Absent when the probe did not report it.
       */
      httpBlindMs: z.number().optional(),
      budgetMs: z.number(),
      withinBudget: z.boolean(),
    })
    .optional(),
});

export const upgradeRequestSchema = z.object({
  apiVersion: z.literal(API_VERSION, { error: `expected apiVersion ${API_VERSION}` }),
  kind: z.literal('UpgradeRequest', { error: 'expected kind UpgradeRequest' }),
  metadata: z.object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { error: 'expected a DNS-1123 name' })
      .max(253),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().int().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
    deletionTimestamp: z.string().optional(),
  }),
  spec: upgradeRequestSpecSchema,
  status: upgradeRequestStatusSchema.optional(),
});

export type UpgradeRequestSpec = z.output<typeof upgradeRequestSpecSchema>;
export type UpgradeRequestStatus = z.output<typeof upgradeRequestStatusSchema>;
export type Condition = z.output<typeof conditionSchema>;
export type UpgradeRequest = z.output<typeof upgradeRequestSchema>;

export class ResourceError extends Error {
  override readonly name = 'ResourceError';
}

export function parseUpgradeRequest(raw: unknown, source: string): UpgradeRequest {
  const r = upgradeRequestSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.join('.') || '(document)';
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.join(', ')}`
        : issue.message;
    throw new ResourceError(`${source}: ${path}: ${message}`);
  }
  return r.data;
}
