// What the drivers did and saw, as records (task list 1.1.4-1.1.8, 5.2.4-5.2.7).
// The interface lives here, with the drivers that write it; the store
// implements it (src/store/records.ts) and MemoryRecords below serves unit
// tests and dry runs.
// Drivers take a RecordSink rather than a database, so they run without one
// in unit tests and dry runs.

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
