// Records of what the drivers did and saw (task list 1.1.4-1.1.8, 5.2.4-5.2.7).
// One small writer per table, plus the reads later issues need. Drivers take
// a RecordSink (below) rather than a database, so they can run without one
// in unit tests and dry runs.
import type { SqlExecutor } from './sql-client.js';

export type BackupKind = 'jar' | 'config' | 'database';
export type BackupState = 'CREATING' | 'CREATED' | 'VERIFIED' | 'CORRUPT' | 'MISSING' | 'DELETED';
export type HealthStatus = 'UP' | 'DOWN' | 'TIMEOUT';
export type RsyncState = 'running' | 'paused' | 'stopped' | 'failed' | 'unknown';
export type VipSwitchResult = 'RUNNING' | 'SUCCESS' | 'FAILED' | 'TIMEOUT';

export interface BackupRecord {
  upgradeId: string | null;
  node: string;
  kind: BackupKind;
  path: string;
  sizeBytes: number | null;
  md5: string | null;
  sha256: string | null;
  state: BackupState;
  createdAt?: Date;
  verifiedAt?: Date | null;
}

export interface HealthCheckRecord {
  upgradeId: string | null;
  node: string;
  checkName: string;
  status: HealthStatus;
  attempt?: number;
  responseTimeMs: number | null;
  checkedAt?: Date;
  detail?: string | null;
}

export interface VipSwitchRecord {
  upgradeId: string;
  vip: string;
  fromNode: string;
  toNode: string;
  method: string;
  attempt: number;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  result: VipSwitchResult;
  detail?: string | null;
}

export interface RsyncStatusRecord {
  upgradeId: string | null;
  node: string;
  state: RsyncState;
  changedAt?: Date;
  detail?: string | null;
}

export interface ConfigSyncRecord {
  upgradeId: string | null;
  /** node -> path -> sha256; never contents. */
  checksums: Record<string, Record<string, string>>;
  consistent: boolean;
  checkedAt?: Date;
  detail?: string | null;
}

/** Where drivers write what they did. */
export interface RecordSink {
  backup(r: BackupRecord): Promise<number>;
  updateBackupState(id: number, state: BackupState, at?: Date): Promise<void>;
  healthCheck(r: HealthCheckRecord): Promise<void>;
  vipSwitch(r: VipSwitchRecord): Promise<void>;
  rsyncStatus(r: RsyncStatusRecord): Promise<void>;
  configSync(r: ConfigSyncRecord): Promise<void>;
}

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
export class MemoryRecords implements RecordSink {
  readonly backups: (BackupRecord & { id: number })[] = [];
  readonly healthChecks: HealthCheckRecord[] = [];
  readonly vipSwitches: VipSwitchRecord[] = [];
  readonly rsyncStatuses: RsyncStatusRecord[] = [];
  readonly configSyncs: ConfigSyncRecord[] = [];

  async backup(r: BackupRecord) {
    const id = this.backups.length + 1;
    this.backups.push({ ...r, id });
    return id;
  }
  async updateBackupState(id: number, state: BackupState) {
    const b = this.backups.find((x) => x.id === id);
    if (b) b.state = state;
  }
  async healthCheck(r: HealthCheckRecord) {
    this.healthChecks.push(r);
  }
  async vipSwitch(r: VipSwitchRecord) {
    this.vipSwitches.push(r);
  }
  async rsyncStatus(r: RsyncStatusRecord) {
    this.rsyncStatuses.push(r);
  }
  async configSync(r: ConfigSyncRecord) {
    this.configSyncs.push(r);
  }
}
