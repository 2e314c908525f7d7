// The upgrade endpoints of task list section 3. Each handler reads and
// writes the same UpgradeRequest objects as kubectl and the reconciler,
// through the ResourceSource and the store; nothing here moves an upgrade
// itself. Handlers validate with the zod schemas of schemas.ts and answer
// errors by throwing ApiProblem.
import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { haltOf } from '../core/conditions.js';
import { emptyJournal } from '../core/journal.js';
import { initialContext, upgradeMachine } from '../core/machine.js';
import { isTerminal, type Phase } from '../core/phases.js';
import {
  ResourceError,
  type UpgradeRequest,
  type UpgradeRequestSpec,
} from '../core/upgrade-request.js';
import {
  ResourceConflictError,
  ResourceNotFoundError,
  type ResourceSource,
} from '../reconciler/source.js';
import { commitTransition } from '../store/journal-store.js';
import { listSteps } from '../store/progress-store.js';
import type { SqlClient } from '../store/sql-client.js';
import {
  ActiveUpgradeExistsError,
  createUpgradeTask,
  getUpgradeTask,
  hasVerifiedBackup,
  listHistory,
  listLogs,
  UpgradeExistsError,
  type UpgradeTask,
} from '../store/upgrades.js';
import { ApiProblem } from './problems.js';
import {
  type actionResponseSchema,
  cancelRequestSchema,
  historyQuerySchema,
  type historyResponseSchema,
  logsQuerySchema,
  type logsResponseSchema,
  type ProgressResponse,
  rollbackRequestSchema,
  type TriggerRequest,
  triggerRequestSchema,
  type triggerResponseSchema,
  upgradeIdSchema,
} from './schemas.js';
import type { Caller } from './security.js';

export interface UpgradeApiDeps {
  readonly source: ResourceSource;
  readonly db: SqlClient;
  readonly now: () => Date;
  /** The operator's default for autoRollback, recorded on the task. */
  readonly autoRollbackDefault: boolean;
}

/** Phases in which a node has already changed (a cancel becomes a rollback). */
const CHANGED: readonly Phase[] = ['UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY'];

export const STATUS_PATH = '/api/v1/upgrade/progress/';

/** Task list 3.2.5: upg-<yyyymmdd>-<8 hex>; a valid UpgradeRequest name. */
export function newUpgradeId(now: Date): string {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '');
  return `upg-${day}-${randomBytes(4).toString('hex')}`;
}

/** Parses with a zod schema; a failure is a 400 listing every field. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  code: 'PS-1001' | 'PS-1003' | 'PS-1004',
  what: string,
): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const errors = r.error.issues.slice(0, 20).map((i) => ({
    field: i.path.map(String).join('.') || '(whole)',
    message:
      i.code === 'unrecognized_keys'
        ? `unknown field(s): ${i.keys.slice(0, 10).join(', ')}`.slice(0, 500)
        : i.message,
  }));
  const first = errors[0]!;
  throw new ApiProblem(code, `${what}: ${first.field}: ${first.message}`, { errors });
}

export function parseUpgradeId(raw: unknown): string {
  return validate(upgradeIdSchema, raw, 'PS-1003', 'upgrade id');
}

function phaseOf(req: UpgradeRequest | null, task: UpgradeTask | null): Phase {
  return req?.status?.phase ?? task?.phase ?? 'IDLE';
}

export class UpgradeApi {
  constructor(private readonly deps: UpgradeApiDeps) {}

  async trigger(body: unknown, caller: Caller): Promise<z.output<typeof triggerResponseSchema>> {
    const t = validate(triggerRequestSchema, body, 'PS-1001', 'trigger request');
    return this.triggerValid(t, caller);
  }

  async triggerValid(
    t: TriggerRequest,
    caller: Caller,
  ): Promise<z.output<typeof triggerResponseSchema>> {
    const { source, db } = this.deps;
    const pair = await source.getHAPair(t.pair);
    if (!pair)
      throw new ApiProblem('PS-1303', `there is no HA pair named ${JSON.stringify(t.pair)}`);
    const requestedBy = `api:${caller.name}`;
    const spec: UpgradeRequestSpec = {
      pairRef: { name: t.pair },
      package: {
        path: t.package.path,
        version: t.package.version,
        ...(t.package.signature_path ? { signaturePath: t.package.signature_path } : {}),
      },
      ...(t.from_version ? { fromVersion: t.from_version } : {}),
      ...(t.options ? { options: optionsSpec(t.options) } : {}),
    };
    // The task row is written first: its unique index (one unfinished
    // upgrade per pair) is the one authority, for this process, other
    // replicas and the reconciler alike; nothing is checked before it.
    let upgradeId = '';
    for (let attempt = 0; ; attempt++) {
      upgradeId = newUpgradeId(this.deps.now());
      try {
        await createUpgradeTask(db, {
          upgradeId,
          pairName: t.pair,
          targetVersion: t.package.version,
          requestedBy,
          packagePath: t.package.path,
          autoRollback: t.options?.auto_rollback ?? this.deps.autoRollbackDefault,
          at: this.deps.now(),
        });
        break;
      } catch (e) {
        if (e instanceof ActiveUpgradeExistsError) {
          throw new ApiProblem('PS-1501', `${e.message}; wait for it to finish or cancel it`, {
            cause: e,
          });
        }
        if (e instanceof UpgradeExistsError && attempt < 3) continue;
        throw e;
      }
    }
    try {
      await source.createUpgradeRequest({
        metadata: {
          name: upgradeId,
          annotations: {
            'pairshift.io/requested-by': requestedBy,
            ...(t.reason ? { 'pairshift.io/reason': t.reason } : {}),
          },
        },
        spec,
      });
    } catch (e) {
      // Release the pair: the task never got a resource to follow.
      await this.#cancelUnstarted(upgradeId, requestedBy, e).catch(() => {});
      if (e instanceof ResourceError) throw new ApiProblem('PS-1001', e.message, { cause: e });
      throw e;
    }
    return {
      upgrade_id: upgradeId,
      status_url: `${STATUS_PATH}${upgradeId}`,
      pair: t.pair,
      target_version: t.package.version,
      phase: 'IDLE' as const,
    };
  }

  /**
   * Ends a task that never started (IDLE -> CANCELLED) through the state
   * machine and commitTransition, the path every transition takes. Its nodes
   * were never observed, so the context names none.
   */
  async #cancelUnstarted(upgradeId: string, actor: string, why: unknown): Promise<void> {
    const at = this.deps.now();
    const context = initialContext({ masterNode: '', backupNode: '' });
    const reason = `trigger failed: ${why instanceof Error ? why.message : String(why)}`;
    const r = upgradeMachine.transition(
      context,
      { type: 'CANCEL_REQUESTED', reason: reason.slice(0, 500) },
      { at, actor },
    );
    if (!r.ok) throw new Error(r.reason);
    await commitTransition(this.deps.db, upgradeId, r.record, {
      context: r.context,
      facts: emptyJournal(at.getTime()),
    });
  }

  async progress(rawId: unknown): Promise<ProgressResponse> {
    const id = parseUpgradeId(rawId);
    const { source, db } = this.deps;
    const [req, task] = await Promise.all([source.getUpgradeRequest(id), getUpgradeTask(db, id)]);
    if (!req && !task) throw new ApiProblem('PS-1302', `there is no upgrade ${id}`);
    const steps = task ? await listSteps(db, id) : [];
    const st = req?.status;
    const done = steps.filter((s) => s.status === 'DONE');
    const completed =
      done.length > 0 || !st
        ? done.map((s) => ({
            step: s.step,
            node: s.node,
            phase: s.phase,
            finished_at: s.finishedAt ? new Date(s.finishedAt).toISOString() : null,
          }))
        : st.completedSteps.map((s) => ({
            step: s.step,
            node: s.node ?? null,
            phase: null,
            finished_at: s.at,
          }));
    const running = steps.find((s) => s.status === 'RUNNING');
    const d = st?.downtime;
    return {
      upgrade_id: id,
      pair: req?.spec.pairRef.name ?? task!.pairName,
      target_version: req?.spec.package.version ?? task!.targetVersion,
      phase: phaseOf(req, task),
      progress_percent: st?.progress ?? task?.progressPercent ?? 0,
      completed_steps: completed,
      current_step: st?.currentStep ?? (running ? running.step : null),
      message: st?.message ?? null,
      estimated_completion_time: st?.estimatedCompletionTime ?? null,
      started_at: st?.startedAt ?? task?.startedAt?.toISOString() ?? null,
      finished_at: st?.finishedAt ?? task?.finishedAt?.toISOString() ?? null,
      downtime: d
        ? {
            http_longest_ms: d.httpLongestMs,
            http_total_ms: d.httpTotalMs,
            http_blind_ms: d.httpBlindMs ?? null,
            // The operator does not measure writes: nothing to publish.
            write_longest_ms: null,
            write_total_ms: null,
            lost_acknowledged_writes: null,
            budget_ms: d.budgetMs,
            within_budget: d.withinBudget,
          }
        : null,
      rollback_requested: req?.spec.rollback !== undefined,
      cancel_requested: req?.spec.cancel !== undefined,
      halted: haltOf(st?.conditions, phaseOf(req, task)),
    };
  }

  async #actionable(id: string): Promise<{ req: UpgradeRequest; phase: Phase }> {
    const { source, db } = this.deps;
    const [req, task] = await Promise.all([source.getUpgradeRequest(id), getUpgradeTask(db, id)]);
    if (!req) throw new ApiProblem('PS-1302', `there is no upgrade ${id} to act on`);
    const phase = phaseOf(req, task);
    if (isTerminal(phase)) {
      throw new ApiProblem('PS-1502', `upgrade ${id} has already finished (phase ${phase})`);
    }
    return { req, phase };
  }

  async #patch(id: string, patch: Partial<UpgradeRequestSpec>): Promise<void> {
    try {
      await this.deps.source.patchSpec(id, patch);
    } catch (e) {
      if (e instanceof ResourceConflictError) {
        throw new ApiProblem(
          'PS-1505',
          `upgrade ${id} changed while the request was made; try again`,
        );
      }
      if (e instanceof ResourceNotFoundError)
        throw new ApiProblem('PS-1302', `there is no upgrade ${id}`);
      throw e;
    }
  }

  async rollback(
    rawId: unknown,
    body: unknown,
    caller: Caller,
  ): Promise<z.output<typeof actionResponseSchema>> {
    const id = parseUpgradeId(rawId);
    const b = validate(rollbackRequestSchema, body ?? {}, 'PS-1001', 'rollback request');
    const { req, phase } = await this.#actionable(id);
    if (phase === 'ROLLBACK' || req.spec.rollback) {
      throw new ApiProblem(
        'PS-1504',
        `upgrade ${id} is already rolling back or a rollback was requested`,
      );
    }
    if (req.spec.cancel) {
      throw new ApiProblem(
        'PS-1506',
        `upgrade ${id} is being cancelled; a cancel after changes rolls back by itself`,
      );
    }
    if (!(await hasVerifiedBackup(this.deps.db, id))) {
      throw new ApiProblem(
        'PS-1503',
        `upgrade ${id} is in phase ${phase} and has no verified backup yet, so there is nothing to roll back to; nothing on the nodes has changed: cancel it instead (POST /api/v1/upgrade/cancel/${id})`,
      );
    }
    await this.#patch(id, {
      rollback: {
        reason: b.reason ?? `requested over the REST API by ${caller.name}`,
        requestedBy: `api:${caller.name}`,
        requestedAt: this.deps.now().toISOString(),
        ...(b.restore_database !== undefined ? { restoreDatabase: b.restore_database } : {}),
      },
    });
    return {
      upgrade_id: id,
      phase,
      accepted: true,
      effect: `rolling back from phase ${phase}: services stop, the backed-up jar and configuration (root key byte-exact)${b.restore_database ? ' and the database' : ''} are restored, services start and must pass their health checks`,
      status_url: `${STATUS_PATH}${id}`,
    };
  }

  async cancel(
    rawId: unknown,
    body: unknown,
    caller: Caller,
  ): Promise<z.output<typeof actionResponseSchema>> {
    const id = parseUpgradeId(rawId);
    const b = validate(cancelRequestSchema, body ?? {}, 'PS-1001', 'cancel request');
    const { req, phase } = await this.#actionable(id);
    if (phase === 'ROLLBACK' || req.spec.rollback) {
      throw new ApiProblem(
        'PS-1504',
        `upgrade ${id} is rolling back; a cancel cannot stop a rollback`,
      );
    }
    if (req.spec.cancel)
      throw new ApiProblem('PS-1506', `upgrade ${id} has already been asked to cancel`);
    await this.#patch(id, {
      cancel: {
        reason: b.reason ?? `requested over the REST API by ${caller.name}`,
        requestedBy: `api:${caller.name}`,
        requestedAt: this.deps.now().toISOString(),
      },
    });
    const effect = CHANGED.includes(phase)
      ? `a node already changed (phase ${phase}): the upgrade rolls that node back to the old version from the verified backup, resumes rsync and removes temporary files, then stops`
      : `nothing on the nodes has changed yet (phase ${phase}): the upgrade stops at the next safe point, resumes rsync, removes temporary files and ends CANCELLED`;
    return { upgrade_id: id, phase, accepted: true, effect, status_url: `${STATUS_PATH}${id}` };
  }

  async history(query: unknown): Promise<z.output<typeof historyResponseSchema>> {
    const q = validate(historyQuerySchema, query, 'PS-1004', 'query');
    const page = await listHistory(this.deps.db, q.page, q.page_size, {
      ...(q.upgrade_id ? { upgradeId: q.upgrade_id } : {}),
    });
    return {
      items: page.items.map((h) => ({
        id: h.id,
        upgrade_id: h.upgradeId,
        from_phase: h.from,
        to_phase: h.to,
        cause: h.cause,
        actor: h.actor,
        at: h.at.toISOString(),
      })),
      total: page.total,
      page: page.page,
      page_size: page.pageSize,
    };
  }

  async logs(rawId: unknown, query: unknown): Promise<z.output<typeof logsResponseSchema>> {
    const id = parseUpgradeId(rawId);
    const q = validate(logsQuerySchema, query, 'PS-1004', 'query');
    const { source, db } = this.deps;
    const [req, task] = await Promise.all([source.getUpgradeRequest(id), getUpgradeTask(db, id)]);
    if (!req && !task) throw new ApiProblem('PS-1302', `there is no upgrade ${id}`);
    const page = await listLogs(db, id, {
      page: q.page,
      pageSize: q.page_size,
      ...(q.level ? { level: q.level } : {}),
    });
    return {
      upgrade_id: id,
      items: page.items.map((l) => ({
        id: l.id,
        timestamp: l.at.toISOString(),
        level: l.level,
        source: l.source,
        message: l.message,
      })),
      total: page.total,
      page: page.page,
      page_size: page.pageSize,
    };
  }
}

function optionsSpec(
  o: NonNullable<TriggerRequest['options']>,
): NonNullable<UpgradeRequestSpec['options']> {
  const out: NonNullable<UpgradeRequestSpec['options']> = {};
  if (o.auto_rollback !== undefined) out.autoRollback = o.auto_rollback;
  if (o.upgrade_timeout !== undefined) out.upgradeTimeout = o.upgrade_timeout;
  if (o.vip_switch_timeout !== undefined) out.vipSwitchTimeout = o.vip_switch_timeout;
  if (o.health_check_timeout !== undefined) out.healthCheckTimeout = o.health_check_timeout;
  if (o.downtime_budget !== undefined) out.downtimeBudget = o.downtime_budget;
  if (o.approved !== undefined) out.approved = o.approved;
  if (o.dry_run !== undefined) out.dryRun = o.dry_run;
  return out;
}
