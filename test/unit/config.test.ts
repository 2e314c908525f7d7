import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import {
  applyEnv,
  ConfigError,
  envVarFor,
  loadConfigFile,
  parseConfig,
  resolveUpgradeSettings,
} from '../../src/config/load.js';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';

describe('durations', () => {
  test.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(['', 'fast', '30', '-5s', '5 s', '5d', 's'])('%j is refused', (text) =>
    expect(parseDuration(text)).toBeNull(),
  );

  test('format and parse round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 * 3_600_000 }), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});

describe('configuration file', () => {
  test('a full file parses to milliseconds', () => {
    const c = parseConfig(
      `store:\n  dataDir: /var/lib/pairshift\nlog:\n  level: debug\n  format: json\nupgrade:\n  upgradeTimeout: 20m\n  vipSwitchTimeout: 10s\n  backupRetention: 2\n  autoRollback: false\n`,
      'pairshift.yaml',
    );
    expect(c).toEqual({
      store: { dataDir: '/var/lib/pairshift' },
      log: { level: 'debug', format: 'json' },
      upgrade: {
        upgradeTimeout: 1_200_000,
        vipSwitchTimeout: 10_000,
        backupRetention: 2,
        autoRollback: false,
      },
    });
  });

  test('an empty file is an empty configuration', () => {
    expect(parseConfig('', 'x.yaml')).toEqual({});
  });

  test.each([
    [
      'upgrade:\n  vipSwitchTimeout: fast\n',
      'x.yaml: upgrade.vipSwitchTimeout: expected a positive duration like "30s", "15m" or "1h", got "fast"',
    ],
    [
      'upgrade:\n  backupRetention: 0\n',
      'x.yaml: upgrade.backupRetention: expected a whole number from 1 to 100',
    ],
    [
      'upgrade:\n  backupRetention: 1.5\n',
      'x.yaml: upgrade.backupRetention: expected a whole number from 1 to 100',
    ],
    ['upgrade:\n  vipSwitchTimout: 30s\n', 'x.yaml: upgrade: unknown field "vipSwitchTimout"'],
    ['log:\n  level: loud\n', 'x.yaml: log.level: expected one of error, warn, info, debug'],
    ['store:\n  databaseUrl: not a url\n', 'x.yaml: store.databaseUrl: expected a postgres:// URL'],
    ['upgrade: [1, 2]\n', 'x.yaml: upgrade:'],
    ['- just\n- a list\n', 'x.yaml: expected a mapping of sections (store, log, upgrade)'],
    ['upgrade:\n  vipSwitchTimeout: [\n', 'x.yaml: not valid YAML at line'],
  ])('%j gives one clear error', (text, message) => {
    let err: unknown;
    try {
      parseConfig(text, 'x.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg.startsWith(message)).toBe(true);
    expect(msg).not.toContain('\n');
  });

  test('a missing file says so', async () => {
    await expect(loadConfigFile('/nonexistent/pairshift.yaml')).rejects.toThrow(
      '/nonexistent/pairshift.yaml: cannot read the configuration file (no such file)',
    );
  });

  test('a file on disk is read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pairshift-cfg-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(f, 'upgrade:\n  downtimeBudget: 1s\n');
    expect(await loadConfigFile(f)).toEqual({ upgrade: { downtimeBudget: 1000 } });
  });
});

describe('environment overrides', () => {
  test('variable names follow the setting names', () => {
    expect(envVarFor('upgradeTimeout')).toBe('PAIRSHIFT_UPGRADE_TIMEOUT');
    expect(envVarFor('vipSwitchTimeout')).toBe('PAIRSHIFT_UPGRADE_VIP_SWITCH_TIMEOUT');
    expect(envVarFor('healthCheckConsecutivePasses')).toBe(
      'PAIRSHIFT_UPGRADE_HEALTH_CHECK_CONSECUTIVE_PASSES',
    );
  });

  test('the environment wins over the file', () => {
    const c = applyEnv(
      { upgrade: { vipSwitchTimeout: 10_000, backupRetention: 2 }, log: { level: 'info' } },
      {
        PAIRSHIFT_UPGRADE_VIP_SWITCH_TIMEOUT: '5s',
        PAIRSHIFT_UPGRADE_AUTO_ROLLBACK: 'false',
        PAIRSHIFT_UPGRADE_UNREACHABLE_GRACE: '2m',
        PAIRSHIFT_LOG_LEVEL: 'debug',
        PAIRSHIFT_DATA_DIR: '/tmp/x',
      },
    );
    expect(c.upgrade).toEqual({
      vipSwitchTimeout: 5000,
      backupRetention: 2,
      autoRollback: false,
      unreachableGrace: 120_000,
    });
    expect(c.log).toEqual({ level: 'debug' });
    expect(c.store).toEqual({ dataDir: '/tmp/x' });
  });

  test('a bad variable is named in the error', () => {
    expect(() => applyEnv({}, { PAIRSHIFT_UPGRADE_BACKUP_RETENTION: 'lots' })).toThrow(
      'PAIRSHIFT_UPGRADE_BACKUP_RETENTION: expected a whole number from 1 to 100',
    );
    expect(() => applyEnv({}, { PAIRSHIFT_LOG_FORMAT: 'xml' })).toThrow(
      'PAIRSHIFT_LOG_FORMAT: expected one of json, pretty, auto',
    );
  });

  test('settings resolve: built-in < store < file/env', () => {
    const s = resolveUpgradeSettings(
      { backupRetention: 3, vipSwitchTimeout: 20_000 },
      { upgrade: { vipSwitchTimeout: 7000 } },
    );
    expect(s).toEqual({ ...BUILT_IN_DEFAULTS, backupRetention: 3, vipSwitchTimeout: 7000 });
  });
});
