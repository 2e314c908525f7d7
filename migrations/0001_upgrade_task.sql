-- Task list 1.1.1-1.1.3 and 3.7: an upgrade, its state transitions, its
-- progress steps and its log lines.
--
-- Conventions for every migration in this folder:
--   * times are timestamptz; durations are integers in milliseconds, named *_ms;
--   * states are text constrained by CHECK (never a PostgreSQL enum, so a later
--     migration can widen a list with a plain ALTER);
--   * rows that belong to one upgrade reference upgrade_task(upgrade_id);
--   * no BEGIN/COMMIT here: the runner wraps each file in its own transaction.

-- The thirteen phases of src/reconciler/phases.ts (task list 2.1.1), kept in
-- one domain so that every phase column shares one list. test/store checks
-- that this list equals PHASES exactly.
CREATE DOMAIN upgrade_phase AS text
  CONSTRAINT upgrade_phase_check CHECK (VALUE IN (
    'IDLE',
    'PREPARE',
    'BACKUP',
    'UPGRADE_BACKUP',
    'VIP_SWITCH',
    'UPGRADE_MASTER',
    'VERIFY',
    'COMPLETE',
    'ROLLBACK',
    'CANCELLED',
    'FAILED',
    'TIMEOUT',
    'UNREACHABLE'
  ));

-- 1.1.1 One row per upgrade. upgrade_id is the UpgradeRequest name (or the
-- task id the REST API hands out, task list 3.2.5); request_uid is the
-- Kubernetes uid when there is one.
CREATE TABLE upgrade_task (
  upgrade_id        text PRIMARY KEY
    CONSTRAINT upgrade_task_upgrade_id_check
      CHECK (upgrade_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]*$' AND length(upgrade_id) <= 253),
  request_uid       uuid UNIQUE,
  pair_name         text NOT NULL
    CONSTRAINT upgrade_task_pair_name_check CHECK (pair_name <> ''),
  target_version    text NOT NULL
    CONSTRAINT upgrade_task_target_version_check CHECK (target_version <> ''),
  package_path      text,
  phase             upgrade_phase NOT NULL DEFAULT 'IDLE',
  progress_percent  smallint NOT NULL DEFAULT 0
    CONSTRAINT upgrade_task_progress_percent_check CHECK (progress_percent BETWEEN 0 AND 100),
  auto_rollback     boolean NOT NULL DEFAULT true,
  requested_by      text NOT NULL
    CONSTRAINT upgrade_task_requested_by_check CHECK (requested_by <> ''),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  downtime_ms       integer
    CONSTRAINT upgrade_task_downtime_ms_check CHECK (downtime_ms >= 0),
  error_message     text,
  -- task list 3.5.6: the cancel time is finished_at of a CANCELLED task
  cancel_reason     text,
  CONSTRAINT upgrade_task_finished_after_started
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at)
);

-- At most one unfinished upgrade per pair: a second trigger is a conflict
-- (task list 3.2.7, HTTP 409) even when two operators race. The list is the
-- complement of TERMINAL_PHASES; test/store checks it.
CREATE UNIQUE INDEX upgrade_task_one_active_per_pair ON upgrade_task (pair_name)
  WHERE phase NOT IN ('COMPLETE', 'CANCELLED', 'FAILED', 'TIMEOUT', 'UNREACHABLE');

-- listing upgrades newest first
CREATE INDEX upgrade_task_created_at_idx ON upgrade_task (created_at DESC, upgrade_id);

-- 1.1.2 / 2.1.3 / 5.2.1 Every state transition. from_phase is NULL only on
-- the row written when the task is created.
CREATE TABLE upgrade_history (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id  text NOT NULL REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  from_phase  upgrade_phase,
  to_phase    upgrade_phase NOT NULL,
  cause       text NOT NULL CONSTRAINT upgrade_history_cause_check CHECK (cause <> ''),
  actor       text NOT NULL CONSTRAINT upgrade_history_actor_check CHECK (actor <> ''),
  at          timestamptz NOT NULL DEFAULT now()
);
-- task list 3.6: paging all history newest first; and one upgrade's history
CREATE INDEX upgrade_history_at_idx ON upgrade_history (at DESC, id DESC);
CREATE INDEX upgrade_history_upgrade_at_idx ON upgrade_history (upgrade_id, at DESC, id DESC);

-- 1.1.3 / 3.3.3 / 5.2.2 The steps of an upgrade and how far each got; the
-- completed-steps list of the progress API is the DONE rows.
CREATE TABLE upgrade_progress (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id   text NOT NULL REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  step         text NOT NULL CONSTRAINT upgrade_progress_step_check CHECK (step <> ''),
  phase        upgrade_phase NOT NULL,
  node         text,
  status       text NOT NULL DEFAULT 'PENDING'
    CONSTRAINT upgrade_progress_status_check
      CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'FAILED', 'SKIPPED')),
  message      text,
  started_at   timestamptz,
  finished_at  timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT upgrade_progress_step_unique UNIQUE (upgrade_id, step),
  CONSTRAINT upgrade_progress_done_has_finished_at
    CHECK (status <> 'DONE' OR finished_at IS NOT NULL),
  CONSTRAINT upgrade_progress_finished_after_started
    CHECK (finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at)
);

-- 3.7 The log lines of an upgrade (time, level, source, message), read newest
-- first, paged, optionally filtered by level. Separate from upgrade_progress
-- because there are many lines per step and they are only ever appended.
CREATE TABLE upgrade_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  upgrade_id  text NOT NULL REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  at          timestamptz NOT NULL DEFAULT now(),
  level       text NOT NULL
    CONSTRAINT upgrade_log_level_check CHECK (level IN ('INFO', 'WARNING', 'ERROR')),
  source      text NOT NULL
    CONSTRAINT upgrade_log_source_check CHECK (source <> '' AND length(source) <= 200),
  message     text NOT NULL
    CONSTRAINT upgrade_log_message_check CHECK (length(message) <= 16384)
);
CREATE INDEX upgrade_log_upgrade_at_idx ON upgrade_log (upgrade_id, at DESC, id DESC);
CREATE INDEX upgrade_log_upgrade_level_at_idx ON upgrade_log (upgrade_id, level, at DESC, id DESC);
