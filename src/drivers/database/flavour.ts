// The database "flavour": what differs between PostgreSQL and its forks
// GaussDB / openGauss, chosen by HAPair spec.database.engine. They speak the
// same wire protocol and most SQL, but their tools and a few functions have
// other names, and openGauss configures a standby differently (no
// standby.signal, replconninfoN instead of primary_conninfo, `gs_ctl build`
// rather than pg_basebackup). Only the PostgreSQL flavour is tested here (the
// lab runs PostgreSQL 15); docs/drivers.md says what the others assume.

export type Engine = 'postgresql' | 'gaussdb' | 'opengauss';

export interface DatabaseFlavour {
  readonly engine: Engine;
  /** Interactive SQL client in binDir. */
  readonly sqlClient: string;
  /** Server control tool in binDir (start/stop/promote/status). */
  readonly ctl: string;
  /** Logical dump tool (used by the backup driver). */
  readonly dump: string;
  /** Reads pg_control of a stopped server. */
  readonly controldata: string;
  /** SQL expressions. */
  readonly sql: {
    readonly currentLsn: string;
    readonly receiveLsn: string;
    readonly replayLsn: string;
    /** A query returning (status, sender_host) of the WAL receiver, or no row. */
    readonly walReceiver: string;
  };
  /**
   * SQL that promotes a standby and returns once it accepts writes, polling
   * every 10 ms on the server (pg_ctl promote -w and pg_promote(true) both
   * poll every 100 ms, on the clients' outage path); null: use promoteArgs.
   */
  readonly promoteSql: string | null;
  /**
   * SQL run on the standby while the primary stops: returns once its WAL
   * receiver stopped streaming (the primary closes replication only after
   * sending its last record), printing what it received. Null: not available.
   */
  receiverEndSql(seconds: number): string | null;
  /** SQL that returns once the standby has received past $LSN, or fails after ~seconds. */
  receivedPastSql(lsn: string, seconds: number): string | null;
  /** argv (after binDir/ctl) that promotes a standby and waits for it. */
  promoteArgs(dataDir: string, waitSeconds: number): string[];
  /**
   * How a stopped old primary is told to come back as a standby:
   * 'standby.signal' (PostgreSQL 12+: the file plus primary_conninfo) or
   * 'start-as-standby' (openGauss: `gs_ctl start -M standby`, replconninfo1).
   */
  readonly standbyMode: 'standby.signal' | 'start-as-standby';
  /** Configuration parameter naming the upstream primary. */
  readonly conninfoParameter: string;
}

const POSTGRESQL: DatabaseFlavour = {
  engine: 'postgresql',
  sqlClient: 'psql',
  ctl: 'pg_ctl',
  dump: 'pg_dump',
  controldata: 'pg_controldata',
  sql: {
    currentLsn: 'pg_current_wal_lsn()',
    receiveLsn: 'pg_last_wal_receive_lsn()',
    replayLsn: 'pg_last_wal_replay_lsn()',
    walReceiver: 'SELECT status, sender_host FROM pg_stat_wal_receiver',
  },
  promoteSql: [
    'DO $pairshift$ BEGIN',
    '  PERFORM pg_promote(false);',
    '  FOR i IN 1..6000 LOOP',
    '    IF NOT pg_is_in_recovery() THEN RETURN; END IF;',
    '    PERFORM pg_sleep(0.01);',
    '  END LOOP;',
    "  RAISE EXCEPTION 'pairshift: still in recovery 60 s after pg_promote';",
    'END $pairshift$',
  ].join('\n'),
  receiverEndSql: (seconds) =>
    [
      'DO $pairshift$ BEGIN',
      `  FOR i IN 1..${Math.max(1, Math.round(seconds * 200))} LOOP`,
      "    IF NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN RETURN; END IF;",
      '    PERFORM pg_sleep(0.005);',
      '  END LOOP;',
      'END $pairshift$;',
      'SELECT pg_last_wal_receive_lsn()::text',
    ].join('\n'),
  receivedPastSql: (lsn, seconds) =>
    [
      'DO $pairshift$ BEGIN',
      `  FOR i IN 1..${Math.max(1, Math.round(seconds * 100))} LOOP`,
      `    IF pg_last_wal_receive_lsn() > '${checkLsnText(lsn)}'::pg_lsn THEN RETURN; END IF;`,
      '    PERFORM pg_sleep(0.01);',
      '  END LOOP;',
      "  RAISE EXCEPTION 'pairshift: final WAL not received: received only %', pg_last_wal_receive_lsn();",
      'END $pairshift$',
    ].join('\n'),
  promoteArgs: (dataDir, waitSeconds) => [
    'promote',
    '-D',
    dataDir,
    '-w',
    '-t',
    String(waitSeconds),
  ],
  standbyMode: 'standby.signal',
  conninfoParameter: 'primary_conninfo',
};

// openGauss 2.x/3.x and GaussDB (its commercial build) keep PostgreSQL 9.2's
// "xlog" names and have no pg_stat_wal_receiver view.
const OPENGAUSS: DatabaseFlavour = {
  engine: 'opengauss',
  sqlClient: 'gsql',
  ctl: 'gs_ctl',
  dump: 'gs_dump',
  controldata: 'pg_controldata',
  sql: {
    currentLsn: 'pg_current_xlog_location()',
    receiveLsn: 'pg_last_xlog_receive_location()',
    replayLsn: 'pg_last_xlog_replay_location()',
    walReceiver:
      "SELECT CASE WHEN receiver_state = 'Normal' THEN 'streaming' ELSE lower(receiver_state) END, split_part(channel, ':', 1) FROM pg_stat_get_wal_receiver()",
  },
  promoteSql: null,
  receiverEndSql: () => null,
  receivedPastSql: () => null,
  // gs_ctl failover promotes a standby whose primary is gone (ours was stopped cleanly).
  promoteArgs: (dataDir, waitSeconds) => ['failover', '-D', dataDir, '-t', String(waitSeconds)],
  standbyMode: 'start-as-standby',
  conninfoParameter: 'replconninfo1',
};

export function flavourFor(engine: Engine): DatabaseFlavour {
  switch (engine) {
    case 'postgresql':
      return POSTGRESQL;
    case 'opengauss':
      return OPENGAUSS;
    case 'gaussdb':
      return { ...OPENGAUSS, engine: 'gaussdb' };
  }
}

/** An LSN's text, checked before it goes into SQL. */
function checkLsnText(lsn: string): string {
  if (!/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(lsn)) throw new Error(`not an LSN: ${lsn}`);
  return lsn;
}
