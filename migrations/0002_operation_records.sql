-- Task list 1.1.4-1.1.8: what the drivers did and saw during an upgrade.
-- Records of one upgrade go with it (ON DELETE CASCADE) except backups:
-- backup files live on the nodes (the root key among them), so deleting an
-- upgrade while its backup rows still exist is refused (RESTRICT) rather
-- than silently forgetting where the files are.

-- 1.1.4 / 2.3 / 4.1.6 / 5.2.5 One backup file on one node.
CREATE TABLE backup_record (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id   text REFERENCES upgrade_task (upgrade_id) ON DELETE RESTRICT,
  node         text NOT NULL CONSTRAINT backup_record_node_check CHECK (node <> ''),
  kind         text NOT NULL
    CONSTRAINT backup_record_kind_check CHECK (kind IN ('jar', 'config', 'database')),
  path         text NOT NULL CONSTRAINT backup_record_path_check CHECK (path LIKE '/%'),
  size_bytes   bigint CONSTRAINT backup_record_size_bytes_check CHECK (size_bytes >= 0),
  md5          text CONSTRAINT backup_record_md5_check CHECK (md5 ~ '^[0-9a-f]{32}$'),
  sha256       text CONSTRAINT backup_record_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  state        text NOT NULL DEFAULT 'CREATING'
    CONSTRAINT backup_record_state_check
      CHECK (state IN ('CREATING', 'CREATED', 'VERIFIED', 'CORRUPT', 'MISSING', 'DELETED')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  verified_at  timestamptz,
  deleted_at   timestamptz,
  CONSTRAINT backup_record_node_path_unique UNIQUE (node, path),
  -- a finished backup always has its size and both checksums (task list 2.3.4)
  CONSTRAINT backup_record_checksums_when_created
    CHECK (state IN ('CREATING', 'MISSING')
           OR (size_bytes IS NOT NULL AND md5 IS NOT NULL AND sha256 IS NOT NULL)),
  CONSTRAINT backup_record_verified_has_verified_at
    CHECK (state <> 'VERIFIED' OR verified_at IS NOT NULL),
  CONSTRAINT backup_record_verified_after_created
    CHECK (verified_at IS NULL OR verified_at >= created_at)
);
-- retention (keep the newest N per node and kind, task list 2.3.6)
CREATE INDEX backup_record_node_kind_created_idx ON backup_record (node, kind, created_at DESC);
CREATE INDEX backup_record_upgrade_idx ON backup_record (upgrade_id);

-- 1.1.5 / 4.3.7 / 5.2.6 One attempt at moving the VIP (2 retries allowed,
-- task list 2.4.6, so attempt is 1..3 in practice).
CREATE TABLE vip_switch_record (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id   text NOT NULL REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  vip          text NOT NULL CONSTRAINT vip_switch_record_vip_check CHECK (vip <> ''),
  from_node    text NOT NULL CONSTRAINT vip_switch_record_from_node_check CHECK (from_node <> ''),
  to_node      text NOT NULL CONSTRAINT vip_switch_record_to_node_check CHECK (to_node <> ''),
  method       text NOT NULL
    CONSTRAINT vip_switch_record_method_check
      CHECK (method IN ('keepalived_priority', 'keepalived_stop', 'manual')),
  attempt      smallint NOT NULL DEFAULT 1
    CONSTRAINT vip_switch_record_attempt_check CHECK (attempt >= 1),
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  duration_ms  integer CONSTRAINT vip_switch_record_duration_ms_check CHECK (duration_ms >= 0),
  result       text NOT NULL DEFAULT 'RUNNING'
    CONSTRAINT vip_switch_record_result_check
      CHECK (result IN ('RUNNING', 'SUCCESS', 'FAILED', 'TIMEOUT')),
  detail       text,
  CONSTRAINT vip_switch_record_distinct_nodes CHECK (from_node <> to_node),
  -- finished exactly when it has a result other than RUNNING
  CONSTRAINT vip_switch_record_finished_iff_result
    CHECK ((result = 'RUNNING') = (finished_at IS NULL)),
  CONSTRAINT vip_switch_record_finished_after_started
    CHECK (finished_at IS NULL OR finished_at >= started_at)
);
CREATE INDEX vip_switch_record_upgrade_idx ON vip_switch_record (upgrade_id, started_at DESC);

-- 1.1.6 / 3.1.6 / 5.2.4 One health check of one node. upgrade_id is NULL for
-- checks made outside an upgrade (the /health endpoint, preflight dry runs).
CREATE TABLE health_check_record (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id        text REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  node              text NOT NULL CONSTRAINT health_check_record_node_check CHECK (node <> ''),
  check_name        text NOT NULL
    CONSTRAINT health_check_record_check_name_check CHECK (check_name <> ''),
  status            text NOT NULL
    CONSTRAINT health_check_record_status_check CHECK (status IN ('UP', 'DOWN', 'TIMEOUT')),
  attempt           smallint NOT NULL DEFAULT 1
    CONSTRAINT health_check_record_attempt_check CHECK (attempt >= 1),
  response_time_ms  integer
    CONSTRAINT health_check_record_response_time_ms_check CHECK (response_time_ms >= 0),
  checked_at        timestamptz NOT NULL DEFAULT now(),
  detail            text
);
CREATE INDEX health_check_record_upgrade_idx ON health_check_record (upgrade_id, checked_at DESC);
CREATE INDEX health_check_record_node_idx ON health_check_record (node, check_name, checked_at DESC);

-- 1.1.7 / 2.5.6 / 4.5.2 / 5.2.7 A change of the rsync job's state on a node.
CREATE TABLE rsync_status_record (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id  text REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  node        text NOT NULL CONSTRAINT rsync_status_record_node_check CHECK (node <> ''),
  state       text NOT NULL
    CONSTRAINT rsync_status_record_state_check
      CHECK (state IN ('running', 'paused', 'stopped', 'failed', 'unknown')),
  changed_at  timestamptz NOT NULL DEFAULT now(),
  detail      text
);
CREATE INDEX rsync_status_record_node_idx ON rsync_status_record (node, changed_at DESC);
CREATE INDEX rsync_status_record_upgrade_idx ON rsync_status_record (upgrade_id, changed_at DESC);

-- 1.1.8 / 2.5.5 / 4.5.3 One comparison of the configuration checksums of the
-- two nodes. checksums is {"<node>": {"<path>": "<sha256>", ...}, ...}; only
-- checksums are stored, never file contents (the root key is among them).
CREATE TABLE config_sync_record (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id  text REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  checked_at  timestamptz NOT NULL DEFAULT now(),
  checksums   jsonb NOT NULL
    CONSTRAINT config_sync_record_checksums_check CHECK (jsonb_typeof(checksums) = 'object'),
  consistent  boolean NOT NULL,
  detail      text
);
CREATE INDEX config_sync_record_upgrade_idx ON config_sync_record (upgrade_id, checked_at DESC);
