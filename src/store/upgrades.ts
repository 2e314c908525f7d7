// Repository for the upgrade journal: tasks, state transitions, log lines
// and the operator-wide settings. Small typed functions over SqlClient; no
// business rules beyond what keeps the journal consistent (the state machine
// decides which transitions are legal).
import { isPhase, isTerminal, type Phase, TERMINAL_PHASES } from '../core/phases.js';
import type { SqlClient, SqlExecutor } from './sql-client.js';

export const LOG_LEVELS = ['INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const MAX_PAGE_SIZE = 500;

export interface UpgradeTask {
  upgradeId: string;
  requestUid: string | null;
  pairName: string;
  targetVersion: string;
  packagePath: string | null;
  phase: Phase;
  progressPercent: number;
  autoRollback: boolean;
  requestedBy: string;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface NewUpgradeTask {
  upgradeId: string;
  pairName: string;
  targetVersion: string;
  requestedBy: string;
  requestUid?: string;
  packagePath?: string;
  autoRollback?: boolean;
  at?: Date;
}

export interface Transition {
  from: Phase;
  to: Phase;
  cause: string;
  actor: string;
  at: Date;
}

export interface HistoryEntry {
  id: number;
  upgradeId: string;
  from: Phase | null;
  to: Phase;
  cause: string;
  actor: string;
  at: Date;
}

export interface LogEntry {
  id: number;
  upgradeId: string;
  at: Date;
  level: LogLevel;
  source: string;
  message: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

export interface UpgradeConfig {
  upgradeTimeoutMs: number;
  vipSwitchTimeoutMs: number;
  vipSwitchRetries: number;
  healthCheckTimeoutMs: number;
  healthCheckRetries: number;
  healthCheckRetryIntervalMs: number;
  healthCheckConsecutivePasses: number;
  backupRetentionCount: number;
  downtimeBudgetMs: number;
}

/** The upgrade does not exist. */
export class UpgradeNotFoundError extends Error {
  override name = 'UpgradeNotFoundError';
  constructor(readonly upgradeId: string) {
    super(`upgrade ${upgradeId} does not exist`);
  }
}

/** The task is not in the phase the caller believed (a concurrent change). */
export class PhaseConflictError extends Error {
  override name = 'PhaseConflictError';
  constructor(
    readonly upgradeId: string,
    readonly expected: Phase,
    readonly actual: Phase,
  ) {
    super(`upgrade ${upgradeId} is in phase ${actual}, not ${expected}; transition not recorded`);
  }
}

/** An upgrade with this id exists already. */
export class UpgradeExistsError extends Error {
  override name = 'UpgradeExistsError';
  constructor(readonly upgradeId: string) {
    super(`upgrade ${upgradeId} already exists`);
  }
}

/**
 * The pair already has an upgrade that has not finished. Raised only from the
 * unique index upgrade_task_one_active_per_pair (migrations/0001), the one
 * authority for "one active upgrade per pair"; the holder is looked up after
 * the refusal, for the message only.
 */
export class ActiveUpgradeExistsError extends Error {
  override name = 'ActiveUpgradeExistsError';
  constructor(
    readonly pairName: string,
    readonly active: { upgradeId: string; phase: Phase } | null = null,
  ) {
    super(
      active
        ? `pair ${pairName} already has upgrade ${active.upgradeId} (phase ${active.phase}), not finished`
        : `pair ${pairName} already has an unfinished upgrade`,
    );
  }
}

function pgCode(err: unknown): { code?: string; constraint?: string } {
  return (err ?? {}) as { code?: string; constraint?: string };
}

function checkPage(page: number, pageSize: number): void {
  if (!Number.isInteger(page) || page < 1) {
    throw new RangeError(`page must be a whole number from 1, got ${page}`);
  }
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new RangeError(
      `page size must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${pageSize}`,
    );
  }
}

const TASK_COLUMNS = `upgrade_id, request_uid::text AS request_uid, pair_name, target_version,
  package_path, phase, progress_percent, auto_rollback, requested_by,
  created_at, updated_at, started_at, finished_at`;

interface TaskRow {
  upgrade_id: string;
  request_uid: string | null;
  pair_name: string;
  target_version: string;
  package_path: string | null;
  phase: Phase;
  progress_percent: number;
  auto_rollback: boolean;
  requested_by: string;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

function toTask(r: TaskRow): UpgradeTask {
  return {
    upgradeId: r.upgrade_id,
    requestUid: r.request_uid,
    pairName: r.pair_name,
    targetVersion: r.target_version,
    packagePath: r.package_path,
    phase: r.phase,
    progressPercent: Number(r.progress_percent),
    autoRollback: r.auto_rollback,
    requestedBy: r.requested_by,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    startedAt: r.started_at ? new Date(r.started_at) : null,
    finishedAt: r.finished_at ? new Date(r.finished_at) : null,
  };
}

/**
 * Creates the task in phase IDLE and writes its first history row
 * (from NULL to IDLE, cause "created"), in one transaction.
 */
export async function createUpgradeTask(db: SqlClient, task: NewUpgradeTask): Promise<UpgradeTask> {
  const at = task.at ?? new Date();
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx.query<TaskRow>(
        `INSERT INTO upgrade_task (upgrade_id, request_uid, pair_name, target_version, package_path,
           auto_rollback, requested_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         RETURNING ${TASK_COLUMNS}`,
        [
          task.upgradeId,
          task.requestUid ?? null,
          task.pairName,
          task.targetVersion,
          task.packagePath ?? null,
          task.autoRollback ?? true,
          task.requestedBy,
          at,
        ],
      );
      await insertHistory(tx, task.upgradeId, null, 'IDLE', 'created', task.requestedBy, at);
      return toTask(row!);
    });
  } catch (err) {
    if (pgCode(err).constraint === 'upgrade_task_one_active_per_pair') {
      throw new ActiveUpgradeExistsError(task.pairName, await activeUpgradeOf(db, task.pairName));
    }
    if (pgCode(err).constraint === 'upgrade_task_pkey')
      throw new UpgradeExistsError(task.upgradeId);
    throw err;
  }
}

/** The pair's unfinished upgrade, for messages; may have finished by the time it is read. */
async function activeUpgradeOf(
  db: SqlExecutor,
  pairName: string,
): Promise<{ upgradeId: string; phase: Phase } | null> {
  const [row] = await db
    .query<{ upgrade_id: string; phase: Phase }>(
      `SELECT upgrade_id, phase FROM upgrade_task
        WHERE pair_name = $1
          AND NOT (phase = ANY($2::text[]))
        LIMIT 1`,
      [pairName, [...TERMINAL_PHASES]],
    )
    .catch(() => []);
  return row ? { upgradeId: row.upgrade_id, phase: row.phase } : null;
}

export async function getUpgradeTask(
  db: SqlExecutor,
  upgradeId: string,
): Promise<UpgradeTask | null> {
  const [row] = await db.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM upgrade_task WHERE upgrade_id = $1`,
    [upgradeId],
  );
  return row ? toTask(row) : null;
}

async function insertHistory(
  tx: SqlExecutor,
  upgradeId: string,
  from: Phase | null,
  to: Phase,
  cause: string,
  actor: string,
  at: Date,
): Promise<number> {
  const [row] = await tx.query<{ id: string | number }>(
    `INSERT INTO upgrade_history (upgrade_id, from_phase, to_phase, cause, actor, at)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [upgradeId, from, to, cause, actor, at],
  );
  return Number(row!.id);
}

/**
 * Moves the task from `from` to `to` and records the transition, in one
 * transaction. The update only happens if the task is still in `from`
 * (compare-and-set), so two reconciles racing cannot both move it.
 * started_at is set on leaving IDLE; finished_at on entering a terminal phase.
 */
export async function recordTransition(
  db: SqlClient,
  upgradeId: string,
  t: Transition,
): Promise<HistoryEntry> {
  return db.transaction((tx) => recordTransitionIn(tx, upgradeId, t));
}

/** recordTransition inside a transaction the caller holds (to write more in the same one). */
export async function recordTransitionIn(
  tx: SqlExecutor,
  upgradeId: string,
  t: Transition,
): Promise<HistoryEntry> {
  if (!isPhase(t.from) || !isPhase(t.to)) {
    throw new RangeError(`unknown phase in transition ${String(t.from)} -> ${String(t.to)}`);
  }
  const updated = await tx.query<{ upgrade_id: string }>(
    `UPDATE upgrade_task
        SET phase = $3::text,
            updated_at = $4::timestamptz,
            started_at = CASE WHEN started_at IS NULL AND $3::text <> 'IDLE'
                              THEN $4::timestamptz ELSE started_at END,
            finished_at = CASE WHEN $5::boolean THEN $4::timestamptz ELSE finished_at END
      WHERE upgrade_id = $1 AND phase = $2::text
      RETURNING upgrade_id`,
    [upgradeId, t.from, t.to, t.at, isTerminal(t.to)],
  );
  if (updated.length === 0) {
    const current = await getUpgradeTask(tx, upgradeId);
    if (!current) throw new UpgradeNotFoundError(upgradeId);
    throw new PhaseConflictError(upgradeId, t.from, current.phase);
  }
  const id = await insertHistory(tx, upgradeId, t.from, t.to, t.cause, t.actor, t.at);
  return { id, upgradeId, from: t.from, to: t.to, cause: t.cause, actor: t.actor, at: t.at };
}

interface HistoryRow {
  id: string | number;
  upgrade_id: string;
  from_phase: Phase | null;
  to_phase: Phase;
  cause: string;
  actor: string;
  at: Date;
  total: number;
}

/**
 * State transitions newest first, optionally of one upgrade, with the total
 * count for paging (task list 3.6).
 */
export async function listHistory(
  db: SqlExecutor,
  page: number,
  pageSize: number,
  filter: { upgradeId?: string } = {},
): Promise<Page<HistoryEntry>> {
  checkPage(page, pageSize);
  const upgradeId = filter.upgradeId ?? null;
  const [count] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM upgrade_history WHERE ($1::text IS NULL OR upgrade_id = $1)',
    [upgradeId],
  );
  const rows = await db.query<HistoryRow>(
    `SELECT id, upgrade_id, from_phase, to_phase, cause, actor, at
       FROM upgrade_history
      WHERE ($1::text IS NULL OR upgrade_id = $1)
      ORDER BY at DESC, id DESC
      LIMIT $2 OFFSET $3`,
    [upgradeId, pageSize, (page - 1) * pageSize],
  );
  return {
    items: rows.map((r) => ({
      id: Number(r.id),
      upgradeId: r.upgrade_id,
      from: r.from_phase,
      to: r.to_phase,
      cause: r.cause,
      actor: r.actor,
      at: new Date(r.at),
    })),
    total: Number(count?.n ?? 0),
    page,
    pageSize,
  };
}

export interface NewLogEntry {
  level: LogLevel;
  source: string;
  message: string;
  at?: Date;
}

/** Appends one log line to an upgrade (task list 3.7); returns its id. */
export async function appendLog(
  db: SqlExecutor,
  upgradeId: string,
  entry: NewLogEntry,
): Promise<number> {
  if (!(LOG_LEVELS as readonly string[]).includes(entry.level)) {
    throw new RangeError(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${entry.level}`);
  }
  try {
    const [row] = await db.query<{ id: string | number }>(
      `INSERT INTO upgrade_log (upgrade_id, at, level, source, message)
       VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      [upgradeId, entry.at ?? new Date(), entry.level, entry.source, entry.message],
    );
    return Number(row!.id);
  } catch (err) {
    if (pgCode(err).code === '23503') throw new UpgradeNotFoundError(upgradeId);
    throw err;
  }
}

interface LogRow {
  id: string | number;
  upgrade_id: string;
  at: Date;
  level: LogLevel;
  source: string;
  message: string;
}

/** One upgrade's log lines newest first, paged, optionally of one level. */
export async function listLogs(
  db: SqlExecutor,
  upgradeId: string,
  opts: { page: number; pageSize: number; level?: LogLevel },
): Promise<Page<LogEntry>> {
  checkPage(opts.page, opts.pageSize);
  const level = opts.level ?? null;
  if (level !== null && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new RangeError(`log level must be one of ${LOG_LEVELS.join(', ')}, got ${level}`);
  }
  const [count] = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM upgrade_log WHERE upgrade_id = $1 AND ($2::text IS NULL OR level = $2)',
    [upgradeId, level],
  );
  const rows = await db.query<LogRow>(
    `SELECT id, upgrade_id, at, level, source, message
       FROM upgrade_log
      WHERE upgrade_id = $1 AND ($2::text IS NULL OR level = $2)
      ORDER BY at DESC, id DESC
      LIMIT $3 OFFSET $4`,
    [upgradeId, level, opts.pageSize, (opts.page - 1) * opts.pageSize],
  );
  return {
    items: rows.map((r) => ({
      id: Number(r.id),
      upgradeId: r.upgrade_id,
      at: new Date(r.at),
      level: r.level,
      source: r.source,
      message: r.message,
    })),
    total: Number(count?.n ?? 0),
    page: opts.page,
    pageSize: opts.pageSize,
  };
}

/** The operator-wide defaults of task list 1.2 (one row, seeded by 0004). */
export async function loadUpgradeConfig(db: SqlExecutor): Promise<UpgradeConfig> {
  const [row] = await db.query<Record<string, number>>(
    `SELECT upgrade_timeout_ms, vip_switch_timeout_ms, vip_switch_retries,
            health_check_timeout_ms, health_check_retries, health_check_retry_interval_ms,
            health_check_consecutive_passes, backup_retention_count, downtime_budget_ms
       FROM upgrade_config`,
  );
  if (!row) throw new Error('upgrade_config has no row; run `pairshift db migrate`');
  return {
    upgradeTimeoutMs: Number(row.upgrade_timeout_ms),
    vipSwitchTimeoutMs: Number(row.vip_switch_timeout_ms),
    vipSwitchRetries: Number(row.vip_switch_retries),
    healthCheckTimeoutMs: Number(row.health_check_timeout_ms),
    healthCheckRetries: Number(row.health_check_retries),
    healthCheckRetryIntervalMs: Number(row.health_check_retry_interval_ms),
    healthCheckConsecutivePasses: Number(row.health_check_consecutive_passes),
    backupRetentionCount: Number(row.backup_retention_count),
    downtimeBudgetMs: Number(row.downtime_budget_ms),
  };
}

/**
 * Whether the upgrade's backups were verified: the history holds the one
 * transition the machine takes on BACKUP_VERIFIED (BACKUP -> UPGRADE_BACKUP).
 * The API asks this before it accepts a rollback, from the history every
 * transition writes, not from the reconciler's private journal.
 */
export async function hasVerifiedBackup(db: SqlExecutor, upgradeId: string): Promise<boolean> {
  const [row] = await db.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM upgrade_history
                     WHERE upgrade_id = $1 AND from_phase = 'BACKUP' AND to_phase = 'UPGRADE_BACKUP') AS found`,
    [upgradeId],
  );
  return row?.found === true;
}
