// Upgrade settings (task list 1.2) as the reconciler uses them, all times in
// milliseconds. BUILT_IN_DEFAULTS mirror the seed rows of upgrade_config; the
// store's values win over them, and the file and environment win over both.
export interface UpgradeSettings {
  readonly upgradeTimeout: number;
  readonly vipSwitchTimeout: number;
  readonly vipSwitchRetries: number;
  readonly healthCheckTimeout: number;
  readonly healthCheckRetries: number;
  readonly healthCheckInterval: number;
  readonly healthCheckConsecutivePasses: number;
  readonly backupRetention: number;
  readonly downtimeBudget: number;
  readonly autoRollback: boolean;
  /**
   * How long a node may go without answering SSH before the upgrade stops
   * as UNREACHABLE (not in upgrade_config: file and environment only).
   */
  readonly unreachableGrace: number;
}

export const BUILT_IN_DEFAULTS: UpgradeSettings = {
  upgradeTimeout: 15 * 60_000,
  vipSwitchTimeout: 30_000,
  vipSwitchRetries: 2,
  healthCheckTimeout: 30_000,
  healthCheckRetries: 3,
  healthCheckInterval: 10_000,
  healthCheckConsecutivePasses: 3,
  backupRetention: 1,
  downtimeBudget: 4 * 60_000,
  autoRollback: true,
  unreachableGrace: 60_000,
};

/** The store's upgrade_config row (task list 1.2), in the reconciler's terms. */
export function settingsFromStore(row: {
  upgradeTimeoutMs: number;
  vipSwitchTimeoutMs: number;
  vipSwitchRetries: number;
  healthCheckTimeoutMs: number;
  healthCheckRetries: number;
  healthCheckRetryIntervalMs: number;
  healthCheckConsecutivePasses: number;
  backupRetentionCount: number;
  downtimeBudgetMs: number;
}): Partial<UpgradeSettings> {
  return {
    upgradeTimeout: row.upgradeTimeoutMs,
    vipSwitchTimeout: row.vipSwitchTimeoutMs,
    vipSwitchRetries: row.vipSwitchRetries,
    healthCheckTimeout: row.healthCheckTimeoutMs,
    healthCheckRetries: row.healthCheckRetries,
    healthCheckInterval: row.healthCheckRetryIntervalMs,
    healthCheckConsecutivePasses: row.healthCheckConsecutivePasses,
    backupRetention: row.backupRetentionCount,
    downtimeBudget: row.downtimeBudgetMs,
  };
}
