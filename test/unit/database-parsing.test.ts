// The database driver's pure parts: psql argv and output parsing, LSNs,
// pg_controldata, timeline history, postgresql.auto.conf editing, conninfo,
// the migration checks and script, the state query's row.
import fc from 'fast-check';
import { flavourFor } from '../../src/drivers/database/flavour.js';
import {
  compareLsn,
  formatLsn,
  lagBytes,
  parseLsn,
  parseLsnOrNull,
} from '../../src/drivers/database/lsn.js';
import {
  MIGRATIONS_TABLE,
  migrationProblems,
  migrationScript,
} from '../../src/drivers/database/migrations.js';
import { describeLag, parseStateRow, stateQuery } from '../../src/drivers/database/observe.js';
import { FIELD_SEP, parseBool, parseRows, psqlArgv } from '../../src/drivers/database/psql.js';
import {
  confValue,
  followConninfo,
  parseConninfo,
  parseControlData,
  parseTimelineHistory,
  setConfValue,
} from '../../src/drivers/database/server-files.js';
import type { HAPair } from '../../src/inventory/hapair.js';
import { migrationChecksum as checksum } from '../../src/packages/hash.js';

const pg = flavourFor('postgresql');

function pair(sshUser = 'root'): HAPair {
  return {
    spec: {
      ssh: { user: sshUser },
      database: {
        engine: 'postgresql',
        port: 5432,
        name: 'app',
        user: 'app',
        superuser: 'postgres',
        osUser: 'postgres',
        binDir: '/usr/lib/postgresql/15/bin',
        socketDir: '/run/postgresql',
        dataDir: '/var/lib/app/pgdata',
      },
    },
  } as unknown as HAPair;
}

describe('psql', () => {
  it('runs the node-local client as the OS user over the socket, unaligned with a unit separator', () => {
    const argv = psqlArgv(pair(), pg, 'SELECT 1');
    expect(argv.slice(0, 5)).toEqual([
      'runuser',
      '-u',
      'postgres',
      '--',
      '/usr/lib/postgresql/15/bin/psql',
    ]);
    expect(argv).toEqual(
      expect.arrayContaining(['-X', '-A', '-t', '-q', 'ON_ERROR_STOP=1', FIELD_SEP]),
    );
    expect(argv.slice(-4)).toEqual(['-h', '/run/postgresql', '-c', 'SELECT 1']);
    expect(psqlArgv(pair('deploy'), pg, 'x').slice(0, 5)).toEqual([
      'sudo',
      '-n',
      '-u',
      'postgres',
      '--',
    ]);
    expect(psqlArgv(pair('postgres'), pg, 'x')[0]).toBe('/usr/lib/postgresql/15/bin/psql');
    // a script goes through stdin in one transaction
    expect(psqlArgv(pair(), pg, null, { script: true }).slice(-3)).toEqual(['-1', '-f', '-']);
    expect(psqlArgv(pair(), flavourFor('opengauss'), 'x')[4]).toBe(
      '/usr/lib/postgresql/15/bin/gsql',
    );
  });

  it('parses rows, NULLs and separators that would fool a naive split on | or spaces', () => {
    const out = `t${FIELD_SEP}0/3000060${FIELD_SEP}\\N\nf${FIELD_SEP}a | b c${FIELD_SEP}\n`;
    expect(parseRows(out)).toEqual([
      ['t', '0/3000060', null],
      ['f', 'a | b c', ''],
    ]);
    expect(parseRows('')).toEqual([]);
    expect(parseRows('\n')).toEqual([['']]);
    expect([parseBool('t'), parseBool('f'), parseBool(null)]).toEqual([true, false, null]);
    expect(() => parseBool('yes please')).toThrow(/not a boolean/);
  });

  it('reads the state row of a standby and of a primary', () => {
    const sb = parseStateRow('b', [
      [
        't',
        null,
        '0/3000148',
        '0/3000100',
        'streaming',
        '198.18.0.11',
        '',
        'host=198.18.0.11',
        null,
      ],
    ]);
    expect(sb).toMatchObject({
      inRecovery: true,
      currentLsn: null,
      receiverStatus: 'streaming',
      timeline: null,
    });
    expect(sb.receiveLsn).toBe(parseLsn('0/3000148'));
    expect(describeLag(sb, parseLsn('0/3000200'))).toBe(
      'replayed 0/3000100 of 0/3000200, 256 B behind (received 0/3000148; WAL receiver streaming)',
    );
    const pr = parseStateRow('a', [['f', '0/3000200', null, null, null, null, 'b', '', '2']]);
    expect(pr).toMatchObject({ inRecovery: false, syncStandbyNames: 'b', timeline: 2 });
    expect(() => parseStateRow('a', [])).toThrow(/unexpected answer/);
    expect(stateQuery(pg)).toMatch(/pg_stat_wal_receiver/);
    expect(stateQuery(flavourFor('gaussdb'))).toMatch(/pg_current_xlog_location/);
  });
});

describe('LSNs', () => {
  it('parses, formats and compares as 64-bit numbers', () => {
    expect(parseLsn('0/3000060')).toBe(0x3000060n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
    expect(compareLsn(parseLsn('1/0'), parseLsn('0/FFFFFFFF'))).toBe(1);
    expect(lagBytes(parseLsn('0/200'), parseLsn('0/100'))).toBe(256n);
    expect(lagBytes(parseLsn('0/100'), parseLsn('0/200'))).toBe(0n);
    expect(parseLsnOrNull(null)).toBeNull();
    expect(() => parseLsn('0x30')).toThrow(/not a WAL position/);
    expect(() => parseLsn('1/2/3')).toThrow(/not a WAL position/);
  });

  it('orders like the numbers they stand for (property)', () => {
    const lsn = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    fc.assert(
      fc.property(lsn, lsn, (a, b) => {
        expect(parseLsn(formatLsn(a))).toBe(a);
        expect(compareLsn(parseLsn(formatLsn(a)), parseLsn(formatLsn(b)))).toBe(
          a < b ? -1 : a > b ? 1 : 0,
        );
      }),
    );
  });
});

describe('server files', () => {
  it('reads how a server stopped and its last checkpoint from pg_controldata', () => {
    const text = [
      'pg_control version number:            1300',
      'Database cluster state:               shut down',
      'Latest checkpoint location:           0/3056A28',
      "Latest checkpoint's REDO location:    0/3056A28",
      "Latest checkpoint's TimeLineID:       2",
    ].join('\n');
    expect(parseControlData(text)).toEqual({
      state: 'shut down',
      checkpointLsn: 0x3056a28n,
      timeline: 2,
    });
    expect(parseControlData(text.replace('shut down', 'shut down in recovery')).state).toBe(
      'shut down in recovery',
    );
    expect(() => parseControlData('nothing here')).toThrow(/Database cluster state/);
  });

  it('reads the branch point of the newest timeline', () => {
    expect(
      parseTimelineHistory(
        '1\t0/3056820\tno recovery target specified\n\n2\t0/3056AA0\tno recovery target specified\n',
      ),
    ).toEqual({ parent: 2, switchpoint: 0x3056aa0n });
    expect(() => parseTimelineHistory('\n')).toThrow(/empty/);
  });

  it('sets primary_conninfo in postgresql.auto.conf once, keeping the rest', () => {
    const auto =
      "# Do not edit this file manually!\nprimary_conninfo = 'host=a user=r'\nwork_mem = '8MB'\n";
    const next = setConfValue(auto, 'primary_conninfo', "host=b user=r application_name='x y'");
    expect(next.split('\n').filter((l) => l.startsWith('primary_conninfo'))).toHaveLength(1);
    expect(next).toMatch(/^work_mem = '8MB'$/m);
    expect(confValue(next, 'primary_conninfo')).toBe("host=b user=r application_name='x y'");
    expect(confValue(setConfValue('', 'primary_conninfo', 'host=b'), 'primary_conninfo')).toBe(
      'host=b',
    );
    expect(confValue(auto, 'missing')).toBeNull();
  });

  it('points a conninfo at the new primary, keeping the passfile and never adding a password', () => {
    const t =
      'host=198.18.0.11 port=5432 user=replicator passfile=/var/lib/app/pgpass application_name=d1-b';
    const c = followConninfo(t, '198.18.0.12', 'd1-a');
    expect(parseConninfo(c)).toEqual(
      new Map([
        ['host', '198.18.0.12'],
        ['port', '5432'],
        ['user', 'replicator'],
        ['passfile', '/var/lib/app/pgpass'],
        ['application_name', 'd1-a'],
      ]),
    );
    expect(c).not.toMatch(/password/);
    expect(
      parseConninfo(followConninfo("host=x application_name='a b'", 'y', "it's")).get(
        'application_name',
      ),
    ).toBe("it's");
  });
});

describe('migrations', () => {
  it('refuses what breaks the running version, naming file and line, and psql meta-commands', () => {
    const problems = migrationProblems([
      { name: '0001_ok.sql', sql: 'CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN c text;' },
      { name: '0002_drop.sql', sql: '\n\nALTER TABLE t DROP COLUMN c;' },
      { name: '0003_shell.sql', sql: 'SELECT 1;\n\\! rm -rf /\n' },
      { name: '0001_ok.sql', sql: 'SELECT 1;' },
      { name: '../evil.sql', sql: 'SELECT 1;' },
    ]);
    expect(problems[0]).toMatch(/^0002_drop\.sql line 3: .*drop/i);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^0003_shell\.sql line 2: psql meta-commands/),
        '0001_ok.sql: listed twice',
        '../evil.sql: not a NAME.sql file name',
      ]),
    );
    expect(migrationProblems([{ name: '0001_ok.sql', sql: 'CREATE TABLE t (id int);' }])).toEqual(
      [],
    );
  });

  it('builds one script that runs as the app role and records each migration with its checksum', () => {
    const m = [{ name: "0001_it's.sql", sql: 'CREATE TABLE t (id int);' }];
    const script = migrationScript('app', m);
    expect(script).toMatch(/^SET LOCAL lock_timeout = '10s';\nSET LOCAL ROLE "app";/);
    expect(script).toContain(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE}`);
    expect(script).toContain(`VALUES ('0001_it''s.sql', '${checksum(m[0]!.sql)}');`);
    expect(script.indexOf('CREATE TABLE t')).toBeLessThan(script.indexOf('INSERT INTO'));
    expect(checksum('a')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('puts only a checked LSN into the flavour SQL', () => {
    expect(pg.receivedPastSql('0/3000060', 5)).toContain("'0/3000060'::pg_lsn");
    expect(() => pg.receivedPastSql("0/1'; DROP TABLE x; --", 5)).toThrow(/not an LSN/);
    expect(flavourFor('opengauss').promoteSql).toBeNull();
  });
});
