// Progress steps of an upgrade (task list 1.1.3, 5.2.2): one row per step
// and node, RUNNING while it runs, DONE or FAILED after.
import type { Phase } from '../core/phases.js';
import type { SqlExecutor } from './sql-client.js';

export type StepStatus = 'RUNNING' | 'DONE' | 'FAILED' | 'SKIPPED';

export async function markStep(
  db: SqlExecutor,
  upgradeId: string,
  step: string,
  phase: Phase,
  node: string | null,
  status: StepStatus,
  message: string | null,
  at: Date,
): Promise<void> {
  await db.query(
    `INSERT INTO upgrade_progress (upgrade_id, step, phase, node, status, message, started_at, finished_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $5 IN ('DONE', 'FAILED', 'SKIPPED') THEN $7::timestamptz END, $7)
     ON CONFLICT (upgrade_id, step) DO UPDATE
       SET phase = EXCLUDED.phase,
           status = EXCLUDED.status,
           message = EXCLUDED.message,
           started_at = CASE WHEN EXCLUDED.status = 'RUNNING' THEN EXCLUDED.started_at
                             ELSE COALESCE(upgrade_progress.started_at, EXCLUDED.started_at) END,
           finished_at = CASE WHEN EXCLUDED.status = 'RUNNING' THEN NULL ELSE $7::timestamptz END,
           updated_at = $7`,
    [upgradeId, step, phase, node, status, message, at],
  );
}

export interface ProgressRow {
  step: string;
  phase: Phase;
  node: string | null;
  status: StepStatus;
  message: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export async function listSteps(db: SqlExecutor, upgradeId: string): Promise<ProgressRow[]> {
  const rows = await db.query<{
    step: string;
    phase: Phase;
    node: string | null;
    status: StepStatus;
    message: string | null;
    started_at: Date | null;
    finished_at: Date | null;
  }>(
    `SELECT step, phase, node, status, message, started_at, finished_at
       FROM upgrade_progress WHERE upgrade_id = $1 ORDER BY COALESCE(started_at, updated_at), id`,
    [upgradeId],
  );
  return rows.map((r) => ({
    step: r.step,
    phase: r.phase,
    node: r.node,
    status: r.status,
    message: r.message,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }));
}
