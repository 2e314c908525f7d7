// The shapes of the REST API, in zod: the same schemas validate requests,
// shape responses and generate the OpenAPI document (openapi.ts), so the
// document cannot drift from what the server does. Field schemas are taken
// from the UpgradeRequest's own (src/core/upgrade-request.ts) so the
// API accepts exactly what the resource does. JSON names are snake_case as
// in the task list.
import { z } from 'zod';
import { PHASES } from '../core/phases.js';
import { upgradeRequestSpecSchema, upgradeRequestStatusSchema } from '../core/upgrade-request.js';
import { LOG_LEVELS, MAX_PAGE_SIZE } from '../store/upgrades.js';
import { apiRegistry } from './registry.js';

const spec = upgradeRequestSpecSchema.shape;
const pkg = spec.package.shape;
const opts = spec.options.unwrap().shape;
const rollbackShape = spec.rollback.unwrap().shape;

/** Upgrade ids are UpgradeRequest names: DNS-1123, as kubectl would accept. */
export const UPGRADE_ID_PATTERN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
export const upgradeIdSchema = z
  .string()
  .max(253)
  .regex(UPGRADE_ID_PATTERN, { error: 'expected an upgrade id like upg-20260101-ab12cd' });

const reason = rollbackShape.reason;

export const triggerRequestSchema = z
  .object({
    pair: spec.pairRef.shape.name.describe('Name of the HAPair to upgrade'),
    package: z
      .object({
        path: pkg.path.describe('Absolute path of the signed package on the operator host'),
        version: pkg.version,
        signature_path: pkg.signaturePath,
      })
      .strict(),
    from_version: spec.fromVersion,
    reason: reason.optional(),
    options: z
      .object({
        auto_rollback: opts.autoRollback,
        upgrade_timeout: opts.upgradeTimeout,
        vip_switch_timeout: opts.vipSwitchTimeout,
        health_check_timeout: opts.healthCheckTimeout,
        downtime_budget: opts.downtimeBudget,
        approved: opts.approved,
        dry_run: opts.dryRun,
      })
      .strict()
      .optional(),
  })
  .strict()
  .register(apiRegistry, { id: 'TriggerRequest' });
export type TriggerRequest = z.output<typeof triggerRequestSchema>;

export const triggerResponseSchema = z
  .object({
    upgrade_id: upgradeIdSchema,
    status_url: z.string(),
    pair: z.string(),
    target_version: z.string(),
    phase: z.enum(PHASES),
  })
  .strict()
  .register(apiRegistry, { id: 'TriggerResponse' });

export const rollbackRequestSchema = z
  .object({
    reason: reason.optional(),
    restore_database: rollbackShape.restoreDatabase,
  })
  .strict()
  .register(apiRegistry, { id: 'RollbackRequest' });

export const cancelRequestSchema = z
  .object({ reason: reason.optional() })
  .strict()
  .register(apiRegistry, { id: 'CancelRequest' });

export const actionResponseSchema = z
  .object({
    upgrade_id: upgradeIdSchema,
    phase: z.enum(PHASES),
    accepted: z.literal(true),
    effect: z.string().describe('What the operator will do now, in words'),
    status_url: z.string(),
  })
  .strict()
  .register(apiRegistry, { id: 'ActionResponse' });

const status = upgradeRequestStatusSchema.shape;
const downtimeShape = status.downtime.unwrap().shape;
/** A write figure: the operator does not measure writes, so it is always null. */
const notMeasured = (what: string) =>
  z
    .number()
    .int()
    .min(0)
    .nullable()
    .describe(
      `${what}: not measured by the operator (its probe of the VIP is HTTP only), so always null; a client prober (pairshift probe) measures writes`,
    );

export const progressResponseSchema = z
  .object({
    upgrade_id: upgradeIdSchema,
    pair: z.string(),
    target_version: z.string(),
    phase: z.enum(PHASES),
    progress_percent: status.progress,
    completed_steps: z.array(
      z
        .object({
          step: z.string(),
          node: z.string().nullable(),
          phase: z.enum(PHASES).nullable(),
          finished_at: z.string().nullable(),
        })
        .strict(),
    ),
    current_step: z.string().nullable(),
    message: z.string().nullable(),
    estimated_completion_time: z.string().nullable(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    downtime: z
      .object({
        http_longest_ms: downtimeShape.httpLongestMs,
        http_total_ms: downtimeShape.httpTotalMs,
        http_blind_ms: z
          .number()
          .nullable()
          .describe(
            "How long the operator's probe could not look (its worker starved of CPU); an outage there is not in the figures. Null when not reported.",
          ),
        write_longest_ms: notMeasured('Longest database write outage in ms'),
        write_total_ms: notMeasured('Total database write outage in ms'),
        lost_acknowledged_writes: notMeasured('Acknowledged writes lost'),
        budget_ms: downtimeShape.budgetMs,
        within_budget: downtimeShape.withinBudget,
      })
      .strict()
      .nullable(),
    rollback_requested: z.boolean(),
    cancel_requested: z.boolean(),
    halted: z
      .object({
        reason: z
          .string()
          .describe('The Stalled condition’s reason, one word (SplitBrain, StepBudgetSpent, ...).'),
        message: z.string().describe('Why the operator cannot go on, for a person.'),
        since: z
          .string()
          .nullable()
          .describe('When the upgrade halted (the condition’s last flip).'),
      })
      .strict()
      .nullable()
      .describe(
        'Set while the upgrade is halted (its Stalled condition is True): the operator does nothing on the nodes until the cause goes away or a person acts. Null otherwise, and always null in a terminal phase.',
      ),
  })
  .strict()
  .register(apiRegistry, { id: 'ProgressResponse' });
export type ProgressResponse = z.output<typeof progressResponseSchema>;

/**
 * A query number: whole decimal digits only, as the client typed them (no
 * exponent, hex, sign, space or fraction, which Number() would accept).
 */
function wholeNumber(max: number) {
  const error = `expected a whole number from 1 to ${max}`;
  return z
    .string({ error })
    .regex(/^[1-9][0-9]{0,6}$/, { error })
    .transform(Number)
    .pipe(z.number().max(max, { error }));
}
const pageNumber = wholeNumber(1_000_000);
const pageSize = wholeNumber(MAX_PAGE_SIZE);

export const historyQuerySchema = z
  .object({
    page: pageNumber.default(1),
    page_size: pageSize.default(20),
    upgrade_id: upgradeIdSchema.optional(),
  })
  .strict();

export const logsQuerySchema = z
  .object({
    page: pageNumber.default(1),
    page_size: pageSize.default(20),
    level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).optional(),
  })
  .strict();

export const historyResponseSchema = z
  .object({
    items: z.array(
      z
        .object({
          id: z.number().int(),
          upgrade_id: z.string(),
          from_phase: z.enum(PHASES).nullable(),
          to_phase: z.enum(PHASES),
          cause: z.string(),
          actor: z.string(),
          at: z.string(),
        })
        .strict(),
    ),
    total: z.number().int().min(0),
    page: z.number().int().min(1),
    page_size: z.number().int().min(1),
  })
  .strict()
  .register(apiRegistry, { id: 'HistoryResponse' });

export const logsResponseSchema = z
  .object({
    upgrade_id: z.string(),
    items: z.array(
      z
        .object({
          id: z.number().int(),
          timestamp: z.string(),
          level: z.enum(LOG_LEVELS),
          source: z.string(),
          message: z.string(),
        })
        .strict(),
    ),
    total: z.number().int().min(0),
    page: z.number().int().min(1),
    page_size: z.number().int().min(1),
  })
  .strict()
  .register(apiRegistry, { id: 'LogsResponse' });

export const healthResponseSchema = z
  .object({
    status: z.enum(['UP', 'DOWN']),
    timestamp: z.string(),
    checks: z.array(
      z
        .object({
          name: z.enum(['store', 'source', 'reconciler']),
          status: z.enum(['UP', 'DOWN']),
          message: z.string().optional(),
          duration_ms: z.number().min(0),
        })
        .strict(),
    ),
  })
  .strict()
  .register(apiRegistry, { id: 'HealthResponse' });
