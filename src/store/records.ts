// The store's RecordSink: one small writer per table (task list 1.1.4-1.1.8).
import type { RecordSink } from '../drivers/records.js';
import type { SqlExecutor } from './sql-client.js';

export function storeRecords(db: SqlExecutor): RecordSink {
  return {
    async backup(r) {
      const [row] = await db.query<{ id: string | number }>(
        `INSERT INTO backup_record (upgrade_id, node, kind, path, size_bytes, md5, sha256, state, created_at, verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9::timestamptz, now()), $10)
         ON CONFLICT (node, path) DO UPDATE
           SET size_bytes = EXCLUDED.size_bytes, md5 = EXCLUDED.md5, sha256 = EXCLUDED.sha256,
               state = EXCLUDED.state, verified_at = EXCLUDED.verified_at
         RETURNING id`,
        [
          r.upgradeId,
          r.node,
          r.kind,
          r.path,
          r.sizeBytes,
          r.md5,
          r.sha256,
          r.state,
          r.createdAt ?? null,
          r.verifiedAt ?? null,
        ],
      );
      return Number(row!.id);
    },
    async updateBackupState(id, state, at) {
      await db.query(
        `UPDATE backup_record
            SET state = $2,
                verified_at = CASE WHEN $2 = 'VERIFIED' THEN COALESCE($3::timestamptz, now()) ELSE verified_at END,
                deleted_at = CASE WHEN $2 = 'DELETED' THEN COALESCE($3::timestamptz, now()) ELSE deleted_at END
          WHERE id = $1`,
        [id, state, at ?? null],
      );
    },
    async healthCheck(r) {
      await db.query(
        `INSERT INTO health_check_record (upgrade_id, node, check_name, status, attempt, response_time_ms, checked_at, detail)
         VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::timestamptz, now()), $8)`,
        [
          r.upgradeId,
          r.node,
          r.checkName,
          r.status,
          r.attempt ?? 1,
          r.responseTimeMs === null ? null : Math.round(r.responseTimeMs),
          r.checkedAt ?? null,
          r.detail ?? null,
        ],
      );
    },
    async vipSwitch(r) {
      await db.query(
        `INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method, attempt, started_at, finished_at, duration_ms, result, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          r.upgradeId,
          r.vip,
          r.fromNode,
          r.toNode,
          r.method,
          r.attempt,
          r.startedAt,
          r.finishedAt,
          r.durationMs === null ? null : Math.round(r.durationMs),
          r.result,
          r.detail ?? null,
        ],
      );
    },
    async rsyncStatus(r) {
      await db.query(
        `INSERT INTO rsync_status_record (upgrade_id, node, state, changed_at, detail)
         VALUES ($1, $2, $3, COALESCE($4::timestamptz, now()), $5)`,
        [r.upgradeId, r.node, r.state, r.changedAt ?? null, r.detail ?? null],
      );
    },
    async configSync(r) {
      await db.query(
        `INSERT INTO config_sync_record (upgrade_id, checked_at, checksums, consistent, detail)
         VALUES ($1, COALESCE($2::timestamptz, now()), $3::jsonb, $4, $5)`,
        [
          r.upgradeId,
          r.checkedAt ?? null,
          JSON.stringify(r.checksums),
          r.consistent,
          r.detail ?? null,
        ],
      );
    },
  };
}

/** A sink that keeps records in memory: unit tests and dry runs. */

/** A verified backup as the status shows it: where it is and its checksums. */
export interface VerifiedBackup {
  readonly node: string;
  readonly kind: string;
  readonly path: string;
  readonly md5: string;
  readonly sha256: string;
  readonly verifiedAt: Date;
}

/** The backups of one upgrade that are verified now (a later CORRUPT or DELETED drops one). */
export async function verifiedBackups(
  db: SqlExecutor,
  upgradeId: string,
): Promise<VerifiedBackup[]> {
  const rows = await db.query<{
    node: string;
    kind: string;
    path: string;
    md5: string;
    sha256: string;
    verified_at: Date;
  }>(
    `SELECT node, kind, path, md5, sha256, verified_at FROM backup_record
      WHERE upgrade_id = $1 AND state = 'VERIFIED'
        AND md5 IS NOT NULL AND sha256 IS NOT NULL AND verified_at IS NOT NULL
      ORDER BY verified_at, id`,
    [upgradeId],
  );
  return rows.map((r) => ({
    node: r.node,
    kind: r.kind,
    path: r.path,
    md5: r.md5,
    sha256: r.sha256,
    verifiedAt: new Date(r.verified_at),
  }));
}

export interface LastVipSwitch {
  readonly from: string;
  readonly to: string;
  readonly result: string;
  readonly attempt: number;
  readonly startedAt: Date;
  /** null when the switch did not finish (still RUNNING, or no figure). */
  readonly durationMs: number | null;
}

/** The latest VIP switch attempt of one upgrade, or null when there was none. */
export async function lastVipSwitch(
  db: SqlExecutor,
  upgradeId: string,
): Promise<LastVipSwitch | null> {
  const [r] = await db.query<{
    from_node: string;
    to_node: string;
    result: string;
    attempt: number;
    started_at: Date;
    duration_ms: number | string | null;
  }>(
    `SELECT from_node, to_node, result, attempt, started_at, duration_ms FROM vip_switch_record
      WHERE upgrade_id = $1 ORDER BY started_at DESC, id DESC LIMIT 1`,
    [upgradeId],
  );
  if (!r) return null;
  return {
    from: r.from_node,
    to: r.to_node,
    result: r.result,
    attempt: Number(r.attempt),
    startedAt: new Date(r.started_at),
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
  };
}
