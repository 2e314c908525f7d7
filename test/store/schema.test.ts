// The tables of task list 1.1/1.2 on both stores: they exist, their CHECK
// lists match the TypeScript sources of truth, the seeded defaults are the
// task list's, and nonsense rows are rejected by the specific constraint.

import { jest } from '@jest/globals';
import { PHASES, TERMINAL_PHASES } from '../../src/core/phases.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { loadUpgradeConfig } from '../../src/store/upgrades.js';
import { backends, failure, migratedStore } from './backends.js';

jest.setTimeout(120_000);

const TABLES = [
  'upgrade_task',
  'upgrade_history',
  'upgrade_progress',
  'upgrade_log',
  'backup_record',
  'vip_switch_record',
  'health_check_record',
  'rsync_status_record',
  'config_sync_record',
  'api_request_log',
  'upgrade_config',
  'schema_migrations',
  // standalone resources and the reconciler's memory (0006)
  'resource',
  'upgrade_journal',
  // webhook deliveries (0008)
  'notification_delivery',
];

/** The quoted literals of a constraint or index definition, in order. */
function literals(def: string): string[] {
  return [...def.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
}

describe.each(backends)('schema on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let seq = 0;

  /** A task in phase IDLE on its own pair; returns its id. */
  async function task(pair = `pair-${++seq}`): Promise<string> {
    const id = `up-${++seq}`;
    await db.query(
      `INSERT INTO upgrade_task (upgrade_id, pair_name, target_version, requested_by)
       VALUES ($1, $2, '2.0.0', 'test')`,
      [id, pair],
    );
    return id;
  }

  beforeAll(async () => {
    db = await migratedStore(backend);
  });
  afterAll(() => backend.teardown());

  it('has every table of task list 1.1 and 1.2', async () => {
    const rows = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
    );
    expect(rows.map((r) => r.table_name).sort()).toEqual([...TABLES].sort());
  });

  it('constrains phases to exactly PHASES, in order', async () => {
    const [row] = await db.query<{ def: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS def
         FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
        WHERE t.typname = 'upgrade_phase' AND c.conname = 'upgrade_phase_check'`,
    );
    expect(literals(row!.def)).toEqual([...PHASES]);
  });

  it('uses the phase domain for every phase column', async () => {
    const rows = await db.query<{ col: string; domain_name: string | null }>(
      `SELECT table_name || '.' || column_name AS col, domain_name
         FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name LIKE '%phase'
        ORDER BY 1`,
    );
    expect(rows).toEqual([
      { col: 'upgrade_history.from_phase', domain_name: 'upgrade_phase' },
      { col: 'upgrade_history.to_phase', domain_name: 'upgrade_phase' },
      { col: 'upgrade_progress.phase', domain_name: 'upgrade_phase' },
      { col: 'upgrade_task.phase', domain_name: 'upgrade_phase' },
    ]);
  });

  it('accepts every phase of PHASES', async () => {
    for (const phase of PHASES) {
      const id = await task();
      await db.query('UPDATE upgrade_task SET phase = $2 WHERE upgrade_id = $1', [id, phase]);
    }
  });

  it('lists exactly TERMINAL_PHASES in the one-active-upgrade-per-pair index', async () => {
    const [row] = await db.query<{ def: string }>(
      "SELECT pg_get_indexdef('upgrade_task_one_active_per_pair'::regclass) AS def",
    );
    expect(new Set(literals(row!.def))).toEqual(new Set(TERMINAL_PHASES));
  });

  it('allows one unfinished upgrade per pair, and a new one once it finished', async () => {
    const first = await task('pair-busy');
    const err = await failure(task('pair-busy'));
    expect(err.constraint).toBe('upgrade_task_one_active_per_pair');
    await db.query("UPDATE upgrade_task SET phase = 'COMPLETE' WHERE upgrade_id = $1", [first]);
    await task('pair-busy');
  });

  it('seeds the task list defaults into upgrade_config', async () => {
    expect(await loadUpgradeConfig(db)).toEqual({
      upgradeTimeoutMs: 15 * 60_000,
      vipSwitchTimeoutMs: 30_000,
      vipSwitchRetries: 2,
      healthCheckTimeoutMs: 30_000,
      healthCheckRetries: 3,
      healthCheckRetryIntervalMs: 10_000,
      healthCheckConsecutivePasses: 3,
      backupRetentionCount: 1,
      downtimeBudgetMs: 4 * 60_000,
    });
    const [n] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM upgrade_config');
    expect(n!.n).toBe(1);
  });

  it('keeps paging indexes newest first', async () => {
    const rows = await db.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes
        WHERE indexname IN ('upgrade_history_at_idx', 'upgrade_log_upgrade_at_idx',
                            'upgrade_log_upgrade_level_at_idx', 'api_request_log_at_idx')`,
    );
    expect(rows).toHaveLength(4);
    for (const r of rows) expect(r.indexdef).toMatch(/DESC, id DESC\)/);
  });

  // Each row is nonsense in exactly one way; the named constraint must be the
  // one that rejects it.
  const bad: [string, string | string[], (id: string) => [string, unknown[]]][] = [
    [
      'a phase outside PHASES',
      'upgrade_phase_check',
      (id) => ["UPDATE upgrade_task SET phase = 'DANCING' WHERE upgrade_id = $1", [id]],
    ],
    [
      'a history row with a bad phase',
      'upgrade_phase_check',
      (id) => [
        "INSERT INTO upgrade_history (upgrade_id, from_phase, to_phase, cause, actor) VALUES ($1, 'IDLE', 'idle', 'c', 'a')",
        [id],
      ],
    ],
    [
      'progress over 100 %',
      'upgrade_task_progress_percent_check',
      (id) => ['UPDATE upgrade_task SET progress_percent = 101 WHERE upgrade_id = $1', [id]],
    ],
    [
      'an upgrade id with spaces',
      'upgrade_task_upgrade_id_check',
      () => [
        "INSERT INTO upgrade_task (upgrade_id, pair_name, target_version, requested_by) VALUES ('a b', 'p-x', '1', 't')",
        [],
      ],
    ],
    [
      'a history row of an unknown upgrade',
      'upgrade_history_upgrade_id_fkey',
      () => [
        "INSERT INTO upgrade_history (upgrade_id, to_phase, cause, actor) VALUES ('nope', 'IDLE', 'c', 'a')",
        [],
      ],
    ],
    [
      'a progress step of an unknown upgrade',
      'upgrade_progress_upgrade_id_fkey',
      () => [
        "INSERT INTO upgrade_progress (upgrade_id, step, phase) VALUES ('nope', 's', 'BACKUP')",
        [],
      ],
    ],
    [
      'a DONE step without finish time',
      'upgrade_progress_done_has_finished_at',
      (id) => [
        "INSERT INTO upgrade_progress (upgrade_id, step, phase, status) VALUES ($1, 's', 'BACKUP', 'DONE')",
        [id],
      ],
    ],
    [
      'a log line of an unknown upgrade',
      'upgrade_log_upgrade_id_fkey',
      () => [
        "INSERT INTO upgrade_log (upgrade_id, level, source, message) VALUES ('nope', 'INFO', 's', 'm')",
        [],
      ],
    ],
    [
      'a log level DEBUG',
      'upgrade_log_level_check',
      (id) => [
        "INSERT INTO upgrade_log (upgrade_id, level, source, message) VALUES ($1, 'DEBUG', 's', 'm')",
        [id],
      ],
    ],
    [
      'a log line without source',
      'upgrade_log_source_check',
      (id) => [
        "INSERT INTO upgrade_log (upgrade_id, level, source, message) VALUES ($1, 'INFO', '', 'm')",
        [id],
      ],
    ],
    [
      'a negative upgrade timeout',
      // also shorter than the VIP switch and health check timeouts, and which
      // of the violated constraints PostgreSQL names first is unspecified
      [
        'upgrade_config_upgrade_timeout_ms_check',
        'upgrade_config_vip_switch_within_upgrade',
        'upgrade_config_health_check_within_upgrade',
      ],
      () => ['UPDATE upgrade_config SET upgrade_timeout_ms = -1', []],
    ],
    [
      'a zero health check timeout',
      'upgrade_config_health_check_timeout_ms_check',
      () => ['UPDATE upgrade_config SET health_check_timeout_ms = 0', []],
    ],
    [
      'a negative VIP switch timeout',
      'upgrade_config_vip_switch_timeout_ms_check',
      () => ['UPDATE upgrade_config SET vip_switch_timeout_ms = -30000', []],
    ],
    [
      'keeping zero backups',
      'upgrade_config_backup_retention_count_check',
      () => ['UPDATE upgrade_config SET backup_retention_count = 0', []],
    ],
    [
      'zero consecutive passes',
      'upgrade_config_health_check_consecutive_passes_check',
      () => ['UPDATE upgrade_config SET health_check_consecutive_passes = 0', []],
    ],
    [
      'a negative downtime budget',
      'upgrade_config_downtime_budget_ms_check',
      () => ['UPDATE upgrade_config SET downtime_budget_ms = -1', []],
    ],
    [
      'a VIP switch allowed longer than the upgrade',
      'upgrade_config_vip_switch_within_upgrade',
      () => [
        'UPDATE upgrade_config SET vip_switch_timeout_ms = 3600000, upgrade_timeout_ms = 60000',
        [],
      ],
    ],
    [
      'a second config row',
      'upgrade_config_single_row',
      () => ['INSERT INTO upgrade_config (id) VALUES (false)', []],
    ],
    [
      'a backup of kind tarball',
      'backup_record_kind_check',
      (id) => [
        "INSERT INTO backup_record (upgrade_id, node, kind, path) VALUES ($1, 'n1', 'tarball', '/b/x')",
        [id],
      ],
    ],
    [
      'a backup with a relative path',
      'backup_record_path_check',
      (id) => [
        "INSERT INTO backup_record (upgrade_id, node, kind, path) VALUES ($1, 'n1', 'jar', 'b/x')",
        [id],
      ],
    ],
    [
      'an upper-case md5',
      'backup_record_md5_check',
      (id) => [
        `INSERT INTO backup_record (upgrade_id, node, kind, path, md5) VALUES ($1, 'n1', 'jar', '/b/md5', '${'A'.repeat(32)}')`,
        [id],
      ],
    ],
    [
      'a verified backup without checksums',
      'backup_record_checksums_when_created',
      (id) => [
        "INSERT INTO backup_record (upgrade_id, node, kind, path, state, verified_at) VALUES ($1, 'n1', 'jar', '/b/v', 'VERIFIED', now())",
        [id],
      ],
    ],
    [
      'a backup of an unknown upgrade',
      'backup_record_upgrade_id_fkey',
      () => [
        "INSERT INTO backup_record (upgrade_id, node, kind, path) VALUES ('nope', 'n1', 'jar', '/b/o')",
        [],
      ],
    ],
    [
      'a VIP switch to the same node',
      'vip_switch_record_distinct_nodes',
      (id) => [
        "INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method) VALUES ($1, '198.18.0.10', 'n1', 'n1', 'manual')",
        [id],
      ],
    ],
    [
      'a VIP switch that succeeded but never finished',
      'vip_switch_record_finished_iff_result',
      (id) => [
        "INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method, result) VALUES ($1, '198.18.0.10', 'n1', 'n2', 'manual', 'SUCCESS')",
        [id],
      ],
    ],
    [
      'a negative VIP switch duration',
      'vip_switch_record_duration_ms_check',
      (id) => [
        "INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method, duration_ms) VALUES ($1, '198.18.0.10', 'n1', 'n2', 'manual', -5)",
        [id],
      ],
    ],
    [
      'a VIP switch by teleport',
      'vip_switch_record_method_check',
      (id) => [
        "INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method) VALUES ($1, '198.18.0.10', 'n1', 'n2', 'teleport')",
        [id],
      ],
    ],
    [
      'a health check status GREEN',
      'health_check_record_status_check',
      (id) => [
        "INSERT INTO health_check_record (upgrade_id, node, check_name, status) VALUES ($1, 'n1', 'db', 'GREEN')",
        [id],
      ],
    ],
    [
      'a negative response time',
      'health_check_record_response_time_ms_check',
      (id) => [
        "INSERT INTO health_check_record (upgrade_id, node, check_name, status, response_time_ms) VALUES ($1, 'n1', 'db', 'UP', -1)",
        [id],
      ],
    ],
    [
      'an rsync state "sleeping"',
      'rsync_status_record_state_check',
      (id) => [
        "INSERT INTO rsync_status_record (upgrade_id, node, state) VALUES ($1, 'n1', 'sleeping')",
        [id],
      ],
    ],
    [
      'config checksums as an array',
      'config_sync_record_checksums_check',
      (id) => [
        "INSERT INTO config_sync_record (upgrade_id, checksums, consistent) VALUES ($1, '[]', true)",
        [id],
      ],
    ],
    [
      'an HTTP status 700',
      'api_request_log_status_check',
      () => [
        "INSERT INTO api_request_log (method, path, status, duration_ms) VALUES ('GET', '/health', 700, 1)",
        [],
      ],
    ],
    [
      'an HTTP method with a space in it',
      'api_request_log_method_check',
      () => [
        "INSERT INTO api_request_log (method, path, status, duration_ms) VALUES ('GET /', '/health', 200, 1)",
        [],
      ],
    ],
    [
      'a token name of 201 characters',
      'api_request_log_token_name_check',
      () => [
        "INSERT INTO api_request_log (method, path, status, duration_ms, token_name) VALUES ('GET', '/health', 200, 1, repeat('n', 201))",
        [],
      ],
    ],
    [
      'a negative request duration',
      'api_request_log_duration_ms_check',
      () => [
        "INSERT INTO api_request_log (method, path, status, duration_ms) VALUES ('GET', '/health', 200, -1)",
        [],
      ],
    ],
  ];

  it.each(bad)('rejects %s (%s)', async (_what, constraint, statement) => {
    const id = await task();
    const [sql, params] = statement(id);
    const err = await failure(db.query(sql, params));
    expect([constraint].flat()).toContain(err.constraint);
  });

  it('bounds every upgrade_config duration and count from below', async () => {
    const rows = await db.query<{ conname: string; def: string }>(
      `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'upgrade_config'::regclass AND contype = 'c'
          AND conname ~ '_(ms|retries|passes|count)_check$'`,
    );
    expect(rows).toHaveLength(9);
    for (const r of rows) expect(r.def).toMatch(/>= \d+/);
    const own = rows.find((r) => r.conname === 'upgrade_config_upgrade_timeout_ms_check');
    expect(own?.def).toMatch(/upgrade_timeout_ms >= 1000/);
  });

  it('accepts well-formed rows in every record table', async () => {
    const id = await task();
    const md5 = 'a'.repeat(32);
    const sha = 'b'.repeat(64);
    await db.query(
      `INSERT INTO backup_record (upgrade_id, node, kind, path, size_bytes, md5, sha256, state, verified_at)
       VALUES ($1, 'n1', 'config', '/b/ok', 10, $2, $3, 'VERIFIED', now())`,
      [id, md5, sha],
    );
    await db.query(
      `INSERT INTO vip_switch_record (upgrade_id, vip, from_node, to_node, method, finished_at, duration_ms, result)
       VALUES ($1, '198.18.0.10', 'n1', 'n2', 'keepalived_priority', now(), 1200, 'SUCCESS')`,
      [id],
    );
    await db.query(
      `INSERT INTO health_check_record (upgrade_id, node, check_name, status, response_time_ms)
       VALUES ($1, 'n2', 'http', 'UP', 12)`,
      [id],
    );
    await db.query(
      "INSERT INTO rsync_status_record (upgrade_id, node, state) VALUES ($1, 'n1', 'paused')",
      [id],
    );
    await db.query(
      'INSERT INTO config_sync_record (upgrade_id, checksums, consistent) VALUES ($1, $2, true)',
      [id, JSON.stringify({ n1: { '/etc/app.conf': sha }, n2: { '/etc/app.conf': sha } })],
    );
    // Not a foreign key on purpose: a 404 for an unknown upgrade is logged too.
    await db.query(
      `INSERT INTO api_request_log (method, path, status, duration_ms, client_ip, upgrade_id)
       VALUES ('GET', '/api/v1/upgrade/progress/nope', 404, 3, '127.0.0.1', 'nope')`,
    );
  });

  it('deletes an upgrade with its journal but refuses while it has backups', async () => {
    const id = await task();
    await db.query(
      "INSERT INTO upgrade_history (upgrade_id, to_phase, cause, actor) VALUES ($1, 'IDLE', 'created', 't')",
      [id],
    );
    await db.query(
      "INSERT INTO upgrade_log (upgrade_id, level, source, message) VALUES ($1, 'INFO', 's', 'm')",
      [id],
    );
    await db.query(
      "INSERT INTO backup_record (upgrade_id, node, kind, path) VALUES ($1, 'n1', 'jar', $2)",
      [id, `/b/${id}`],
    );
    const err = await failure(db.query('DELETE FROM upgrade_task WHERE upgrade_id = $1', [id]));
    expect(err.constraint).toBe('backup_record_upgrade_id_fkey');

    await db.query('DELETE FROM backup_record WHERE upgrade_id = $1', [id]);
    await db.query('DELETE FROM upgrade_task WHERE upgrade_id = $1', [id]);
    const [left] = await db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM upgrade_history WHERE upgrade_id = $1)
            + (SELECT count(*) FROM upgrade_log WHERE upgrade_id = $1) AS n`,
      [id],
    );
    expect(Number(left!.n)).toBe(0);
  });
});
