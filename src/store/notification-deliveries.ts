// The delivery table of notifications (migrations/0008): one row per
// receiver and event, written by the notifier's queues off the reconcile
// path. Nothing secret is stored: the receiver's name, the event's id and
// type, HTTP statuses and error texts (redacted, bounded).
import { redact } from '../log/redact.js';
import type { SqlExecutor } from './sql-client.js';

export type DeliveryOutcome = 'pending' | 'delivered' | 'gave-up' | 'dropped';

export interface DeliveryRecord {
  readonly id: number;
  readonly receiver: string;
  readonly eventId: string;
  readonly eventType: string;
  readonly upgradeId: string;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly outcome: DeliveryOutcome;
  readonly createdAt: Date;
  readonly lastAttemptAt: Date | null;
  readonly finishedAt: Date | null;
}

const MAX_ERROR_CHARS = 1000;

function bounded(error: string | null): string | null {
  return error === null ? null : (redact(error) as string).slice(0, MAX_ERROR_CHARS);
}

/**
 * A delivery about to be queued. Returns its row id, or null when this
 * receiver already has this event (delivered, given up or still pending:
 * sent once). A row left 'dropped' by an operator that stopped is taken
 * again: the event is queued anew.
 */
export async function openDelivery(
  db: SqlExecutor,
  d: { receiver: string; eventId: string; eventType: string; upgradeId: string; owner: string },
): Promise<number | null> {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO notification_delivery (receiver, event_id, event_type, upgrade_id, owner)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT ON CONSTRAINT notification_delivery_once DO UPDATE
       SET outcome = 'pending', finished_at = NULL, owner = EXCLUDED.owner
     WHERE notification_delivery.outcome = 'dropped'
     RETURNING id`,
    [d.receiver, d.eventId, d.eventType, d.upgradeId, d.owner],
  );
  return row ? Number(row.id) : null;
}

/** One attempt made; the delivery stays pending. */
export async function recordAttempt(
  db: SqlExecutor,
  id: number,
  a: { attempts: number; status: number | null; error: string | null; at: Date },
): Promise<void> {
  await db.query(
    `UPDATE notification_delivery
        SET attempts = $2, last_status = $3, last_error = $4, last_attempt_at = $5
      WHERE id = $1`,
    [id, a.attempts, a.status, bounded(a.error), a.at],
  );
}

/** The end of a delivery: delivered, gave-up or dropped (with why, when not delivered). */
export async function finishDelivery(
  db: SqlExecutor,
  id: number,
  outcome: Exclude<DeliveryOutcome, 'pending'>,
  at: Date,
  why: string | null = null,
): Promise<void> {
  await db.query(
    `UPDATE notification_delivery
        SET outcome = $2, finished_at = $3, last_error = COALESCE($4, last_error)
      WHERE id = $1`,
    [id, outcome, at, bounded(why)],
  );
}

/**
 * At start: deliveries this operator (same owner) queued before it
 * stopped, and any pending longer than a delivery may live, are marked
 * dropped, saying why. They are not resumed: the upgrade they were about
 * has moved on, and its current state is in its status.
 */
export async function dropLeftovers(
  db: SqlExecutor,
  owner: string,
  olderThan: Date,
  at: Date,
): Promise<number> {
  const rows = await db.query(
    `UPDATE notification_delivery
        SET outcome = 'dropped', finished_at = $3,
            last_error = left('not delivered before the operator stopped'
              || COALESCE(' (last error: ' || last_error || ')', ''), 1000)
      WHERE outcome = 'pending' AND (owner = $1 OR created_at < $2)
      RETURNING id`,
    [owner, olderThan, at],
  );
  return rows.length;
}

interface Row {
  id: string;
  receiver: string;
  event_id: string;
  event_type: string;
  upgrade_id: string;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  outcome: DeliveryOutcome;
  created_at: Date;
  last_attempt_at: Date | null;
  finished_at: Date | null;
}

/** An upgrade's deliveries, oldest first. */
export async function listDeliveries(
  db: SqlExecutor,
  upgradeId: string,
): Promise<DeliveryRecord[]> {
  const rows = await db.query<Row>(
    `SELECT id, receiver, event_id, event_type, upgrade_id, attempts, last_status, last_error,
            outcome, created_at, last_attempt_at, finished_at
       FROM notification_delivery WHERE upgrade_id = $1 ORDER BY id`,
    [upgradeId],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    receiver: r.receiver,
    eventId: r.event_id,
    eventType: r.event_type,
    upgradeId: r.upgrade_id,
    attempts: r.attempts,
    lastStatus: r.last_status,
    lastError: r.last_error,
    outcome: r.outcome,
    createdAt: new Date(r.created_at),
    lastAttemptAt: r.last_attempt_at ? new Date(r.last_attempt_at) : null,
    finishedAt: r.finished_at ? new Date(r.finished_at) : null,
  }));
}
