-- Task list 1.2: the operator-wide upgrade settings, one typed row (id is
-- always true, so a second row is impossible). Durations are milliseconds.
-- An UpgradeRequest may override them per upgrade; these are the defaults.
CREATE TABLE upgrade_config (
  id                               boolean PRIMARY KEY DEFAULT true
    CONSTRAINT upgrade_config_single_row CHECK (id),
  -- 1.2.2 / 5.1.1
  upgrade_timeout_ms               integer NOT NULL DEFAULT 900000
    CONSTRAINT upgrade_config_upgrade_timeout_ms_check
      CHECK (upgrade_timeout_ms BETWEEN 1000 AND 86400000),
  -- 1.2.3 / 2.4.5 / 4.3.4
  vip_switch_timeout_ms            integer NOT NULL DEFAULT 30000
    CONSTRAINT upgrade_config_vip_switch_timeout_ms_check
      CHECK (vip_switch_timeout_ms BETWEEN 1000 AND 3600000),
  -- 2.4.6
  vip_switch_retries               integer NOT NULL DEFAULT 2
    CONSTRAINT upgrade_config_vip_switch_retries_check CHECK (vip_switch_retries BETWEEN 0 AND 10),
  -- 1.2.4 / 2.2.6
  health_check_timeout_ms          integer NOT NULL DEFAULT 30000
    CONSTRAINT upgrade_config_health_check_timeout_ms_check
      CHECK (health_check_timeout_ms BETWEEN 100 AND 3600000),
  -- 2.2.5
  health_check_retries             integer NOT NULL DEFAULT 3
    CONSTRAINT upgrade_config_health_check_retries_check
      CHECK (health_check_retries BETWEEN 0 AND 100),
  health_check_retry_interval_ms   integer NOT NULL DEFAULT 10000
    CONSTRAINT upgrade_config_health_check_retry_interval_ms_check
      CHECK (health_check_retry_interval_ms BETWEEN 0 AND 3600000),
  -- 4.2.8 / 4.4.8
  health_check_consecutive_passes  integer NOT NULL DEFAULT 3
    CONSTRAINT upgrade_config_health_check_consecutive_passes_check
      CHECK (health_check_consecutive_passes BETWEEN 1 AND 100),
  -- 1.2.5 / 2.3.6
  backup_retention_count           integer NOT NULL DEFAULT 1
    CONSTRAINT upgrade_config_backup_retention_count_check
      CHECK (backup_retention_count BETWEEN 1 AND 1000),
  -- 4.5.8 / 6.2.8
  downtime_budget_ms               integer NOT NULL DEFAULT 240000
    CONSTRAINT upgrade_config_downtime_budget_ms_check
      CHECK (downtime_budget_ms BETWEEN 0 AND 86400000),
  updated_at                       timestamptz NOT NULL DEFAULT now(),
  updated_by                       text NOT NULL DEFAULT 'migration 0004'
    CONSTRAINT upgrade_config_updated_by_check CHECK (updated_by <> ''),
  -- a VIP switch or a health check cannot be allowed longer than the upgrade
  CONSTRAINT upgrade_config_vip_switch_within_upgrade
    CHECK (vip_switch_timeout_ms <= upgrade_timeout_ms),
  CONSTRAINT upgrade_config_health_check_within_upgrade
    CHECK (health_check_timeout_ms <= upgrade_timeout_ms)
);

COMMENT ON TABLE upgrade_config IS 'Operator-wide upgrade defaults (task list 1.2); exactly one row';
COMMENT ON COLUMN upgrade_config.upgrade_timeout_ms IS 'Whole upgrade timeout, ms (default 15 min)';
COMMENT ON COLUMN upgrade_config.vip_switch_timeout_ms IS 'VIP switch timeout, ms (default 30 s)';
COMMENT ON COLUMN upgrade_config.vip_switch_retries IS 'VIP switch retries after the first attempt (default 2)';
COMMENT ON COLUMN upgrade_config.health_check_timeout_ms IS 'Health check timeout, ms (default 30 s)';
COMMENT ON COLUMN upgrade_config.health_check_retries IS 'Health check retries after a failed check (default 3)';
COMMENT ON COLUMN upgrade_config.health_check_retry_interval_ms IS 'Pause between health check attempts, ms (default 10 s)';
COMMENT ON COLUMN upgrade_config.health_check_consecutive_passes IS 'Consecutive passes required after a restart (default 3)';
COMMENT ON COLUMN upgrade_config.backup_retention_count IS 'Backups kept per node and kind (default 1)';
COMMENT ON COLUMN upgrade_config.downtime_budget_ms IS 'Total downtime allowed, ms (default 4 min)';

-- The defaults of the task list; the column defaults above hold the values.
INSERT INTO upgrade_config DEFAULT VALUES;
