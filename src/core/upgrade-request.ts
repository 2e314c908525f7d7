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

/**
 * A time the operator writes (Date.toISOString()). `format: date-time` in
 * the CRD documents it and lets the API server check it; zod stays lenient
 * because the operator is the only writer of these.
 */
const timestamp = () => z.string().meta({ format: 'date-time' });

// Descriptions (.describe) are what `kubectl explain` shows: the CRD
// generator copies them, and test/unit/crd.test.ts fails on a field without.
const request = z.object({
  reason: storable(1000, true).min(1).describe('Why: kept in the history and the log.'),
  requestedBy: storable(200).optional().describe('Who asked (a user or a tool); free text.'),
  requestedAt: z.iso
    .datetime({ offset: true, error: 'expected an RFC 3339 time like 2026-11-29T10:15:00Z' })
    .optional()
    .describe('When it was asked, RFC 3339 (the REST API fills it in).'),
});

export const upgradeRequestSpecSchema = z
  .object({
    pairRef: z
      .object({ name: objectName.describe('Name of the HAPair, in the same namespace.') })
      .strict()
      .describe('The pair to upgrade (an HAPair). Cannot change once set.'),
    package: z
      .object({
        path: absolutePath.describe(
          "Where the signed package is on the operator's host (absolute path).",
        ),
        version: version.describe('The version the package carries, MAJOR.MINOR.PATCH.'),
        signaturePath: absolutePath
          .optional()
          .describe('The detached signature; default: the package path with .sig appended.'),
      })
      .strict()
      .describe('The signed package to install. Cannot change once set.'),
    fromVersion: version
      .optional()
      .describe('The version the pair runs now; observed from the nodes when absent.'),
    options: z
      .object({
        autoRollback: z
          .boolean()
          .optional()
          .describe('Roll back by itself when a step fails after BACKUP (default true).'),
        upgradeTimeout: duration
          .optional()
          .describe(
            'Budget for the whole upgrade (default 15m); past it the upgrade ends in TIMEOUT.',
          ),
        vipSwitchTimeout: duration
          .optional()
          .describe('Budget for one VIP switch attempt (default 30s).'),
        healthCheckTimeout: duration
          .optional()
          .describe('Timeout of one /health check of a node (default 30s).'),
        downtimeBudget: duration
          .optional()
          .describe('Client-visible downtime allowed, checked in VERIFY (default 4m).'),
        approved: z
          .boolean()
          .optional()
          .describe(
            'An approval gate: false waits in IDLE until set to true; absent means approved.',
          ),
        dryRun: z
          .boolean()
          .optional()
          .describe('Plan and report only: the package is verified, no node is changed.'),
      })
      .strict()
      .optional()
      .describe('How to run the upgrade; every field has a default from the operator settings.'),
    cancel: request
      .strict()
      .optional()
      .describe('Set to stop the upgrade at a safe point (task list 3.5).'),
    rollback: request
      .extend({
        restoreDatabase: z
          .boolean()
          .optional()
          .describe('Also restore the database from the backup taken in BACKUP (default false).'),
      })
      .strict()
      .optional()
      .describe('Set to roll back to the old version (task list 3.4).'),
  })
  .strict();

export const conditionSchema = z.object({
  type: z
    .enum(['Progressing', 'Ready', 'Degraded', 'RolledBack', 'Reconciling', 'Stalled'])
    .describe('The condition (docs/kubernetes.md, "Conditions"); one entry per type.'),
  status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
  reason: z.string().describe('Why, in one UpperCamelCase word (e.g. SplitBrain).'),
  message: z.string().describe('Why, for a person.'),
  lastTransitionTime: timestamp().describe(
    'When status last flipped (not when the message changed).',
  ),
  observedGeneration: z
    .number()
    .int()
    .optional()
    .describe('metadata.generation of the spec this verdict is about.'),
});

export const upgradeRequestStatusSchema = z.object({
  phase: z.enum(PHASES).describe('Where the state machine is (docs/state-machine.md).'),
  observedGeneration: z
    .number()
    .int()
    .optional()
    .describe('metadata.generation of the spec the operator last acted on.'),
  progress: z.number().int().min(0).max(100).describe('Percent done, 0 to 100.'),
  fromVersion: z.string().optional().describe('The version the pair ran before the upgrade.'),
  targetVersion: z.string().optional().describe("The package's version."),
  completedSteps: z
    .array(
      z.object({
        step: z.string().describe('PHASE/STEP, e.g. BACKUP/BACKUP_DATABASE.'),
        node: z.string().optional().describe('The node it ran on; absent for a pair-wide step.'),
        at: timestamp().describe('When it finished.'),
      }),
    )
    .describe('Every step done so far, in order.'),
  currentStep: z
    .string()
    .optional()
    .describe(
      'The step being run now ("UPGRADE_BACKUP/INSTALL_PACKAGE@node-b"); absent between steps.',
    ),
  message: z.string().optional().describe('What is happening or why it ended, for a person.'),
  estimatedCompletionTime: timestamp()
    .optional()
    .describe('When the upgrade should end, estimated from the steps left.'),
  startedAt: timestamp().optional().describe('When the upgrade left IDLE.'),
  finishedAt: timestamp().optional().describe('When it reached a terminal phase.'),
  conditions: z
    .array(conditionSchema)
    .describe(
      'Ready, Progressing, Degraded, RolledBack, Reconciling and Stalled (what GitOps tools read).',
    ),
  /**
   * What the last observation of the nodes could not read or found wrong
   * (a probe that timed out, the VIP answering from an unexpected node);
   * absent when it found nothing. Often the reason an upgrade waits.
   */
  problems: z
    .array(z.string())
    .optional()
    .describe('What the last look at the nodes could not read or found wrong; often why it waits.'),
  backups: z
    .array(
      z.object({
        node: z.string().describe('The node the backup is on.'),
        kind: z.string().describe('jar, config or database.'),
        path: z.string().describe('The backup file on that node.'),
        md5: z.string().describe('MD5 of the file, hex.'),
        sha256: z.string().describe('SHA-256 of the file, hex.'),
        verifiedAt: timestamp().describe('When the checksums were verified.'),
      }),
    )
    .optional()
    .describe('The backup files verified so far: where and their checksums (never their content).'),
  vipSwitch: z
    .object({
      from: z.string().describe('The node that held the VIP.'),
      to: z.string().describe('The node meant to take it.'),
      result: z.string().describe('SUCCESS, or how the attempt ended.'),
      attempt: z.number().int().describe('Which attempt, from 1.'),
      at: timestamp().describe('When the attempt started.'),
      durationMs: z
        .number()
        .optional()
        .describe('How long the switch took; absent when it did not finish.'),
    })
    .optional()
    .describe('The last VIP switch attempt.'),
  /**
   * Downtime the operator's own probe of the VIP measured (HTTP). Writes are
   * not measured by the operator (a client prober, pairshift probe, does),
   * so no write figure is published here.
   */
  downtime: z
    .object({
      httpLongestMs: z.number().describe('Longest HTTP outage through the VIP, ms.'),
      httpTotalMs: z.number().describe('All HTTP outages through the VIP added up, ms.'),
      /**
       * How long the probe itself could not look (its worker starved of CPU:
       * skipped slots, late results): an outage there is not in the two
       * figures above. Absent when the probe did not report it.
       */
      httpBlindMs: z
        .number()
        .optional()
        .describe(
          'How long the probe itself could not look (starved of CPU); not in the figures above.',
        ),
      budgetMs: z.number().describe('The downtime budget, ms.'),
      withinBudget: z.boolean().describe('httpLongestMs within budgetMs.'),
    })
    .optional()
    .describe(
      "Downtime measured by the operator's own HTTP probe of the VIP (writes are not measured here).",
    ),
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
