// The backup driver's pure parts: names, parsing what the node prints,
// digest comparison, retention (with properties), the database flavour map,
// and the failure path of ensureBackup against a scripted shell.
import fc from 'fast-check';
import {
  backupFileName,
  compareDigests,
  DATABASE_TOOLS,
  databaseTools,
  ensureBackup,
  freshSetName,
  isSetName,
  parseDigestLines,
  parseListing,
  parseManifest,
  parseOpensslDigest,
  parseStat,
  setStamp,
  setsToDelete,
  setTime,
} from '../../src/drivers/backup/index.js';
import { DriverError } from '../../src/drivers/errors.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import { parseHAPair } from '../../src/inventory/hapair.js';

const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('naming', () => {
  it('stamps sets in UTC, sortable, and reads the time back', () => {
    const at = new Date('2026-11-29T13:15:00.789Z');
    expect(setStamp(at)).toBe('20261129T131500Z');
    expect(setTime('20261129T131500Z')?.toISOString()).toBe('2026-11-29T13:15:00.000Z');
    expect(isSetName('20261129T131500Z')).toBe(true);
    expect(isSetName('.partial-20261129T131500Z')).toBe(false);
    expect(isSetName('20261329T131500Z')).toBe(true); // shape only; setTime says no
    expect(setTime('20261399T131500Z')).toBeUndefined();
    expect(backupFileName('jar', '20261129T131500Z')).toBe('app.jar.20261129T131500Z');
    expect(backupFileName('config', '20261129T131500Z')).toBe('config.tar.20261129T131500Z');
    expect(backupFileName('database', '20261129T131500Z')).toBe('app.dump.20261129T131500Z');
  });

  it('never reuses a taken set name', () => {
    const at = new Date('2026-11-29T13:15:00Z');
    expect(freshSetName(at, new Set(['20261129T131500Z', '20261129T131501Z']))).toBe(
      '20261129T131502Z',
    );
  });

  it('orders set names as time orders them', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
        fc.date({ min: new Date('2000-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
        (x, y) => {
          const sx = Math.floor(x.getTime() / 1000);
          const sy = Math.floor(y.getTime() / 1000);
          const nx = setStamp(x);
          const ny = setStamp(y);
          expect(Math.sign(sx - sy)).toBe(nx < ny ? -1 : nx > ny ? 1 : 0);
        },
      ),
    );
  });
});

describe('parsing', () => {
  it('reads digest lines and missing files', () => {
    const out = `12 ${MD5} ${SHA} /var/backups/app/x/app.jar.x\nMISSING /var/backups/app/x/config.tar.x\n`;
    expect(parseDigestLines(out)).toEqual({
      digests: [{ size: 12, md5: MD5, sha256: SHA, path: '/var/backups/app/x/app.jar.x' }],
      missing: ['/var/backups/app/x/config.tar.x'],
    });
    expect(() => parseDigestLines('garbage\n')).toThrow(/unexpected digest line/);
  });

  it('reads openssl dgst -r and stat output', () => {
    expect(parseOpensslDigest(`${SHA} */etc/app/root.key\n`)).toBe(SHA);
    expect(parseOpensslDigest(`${MD5} *f`, 128)).toBe(MD5);
    expect(() => parseOpensslDigest('Error: no such file')).toThrow(/not an openssl digest/);
    expect(parseStat('64 0 0 600\n')).toEqual({ size: 64, uid: 0, gid: 0, mode: '0600' });
    expect(() => parseStat('64 root root 600')).toThrow(/unexpected stat output/);
  });

  const manifest = (over: object = {}) =>
    JSON.stringify({
      format: 'pairshift-backup/1',
      set: '20261129T131500Z',
      node: 'a',
      upgradeId: 'u1',
      createdAt: '2026-11-29T13:15:00.000Z',
      files: [
        {
          kind: 'jar',
          name: 'app.jar.20261129T131500Z',
          source: '/opt/app/app.jar',
          size: 3,
          md5: MD5,
          sha256: SHA,
        },
      ],
      ...over,
    });

  it('validates manifests and lists sets, partial folders and unreadable ones', () => {
    expect(parseManifest(manifest(), 'x').files[0]!.kind).toBe('jar');
    expect(() => parseManifest(manifest({ files: [] }), 'set X')).toThrow(/^set X: manifest files/);
    expect(() => parseManifest('{', 'set X')).toThrow(/not JSON/);
    const listing = parseListing(
      [
        `SET 20261129T131500Z ${manifest()}`,
        'NOMANIFEST 20261129T120000Z',
        'PARTIAL .partial-20261129T140000Z',
        `SET 20261129T110000Z ${manifest()}`, // names another set
        'SET not-a-set {}',
      ].join('\n'),
    );
    expect(listing.sets.map((s) => s.name)).toEqual(['20261129T131500Z']);
    expect(listing.partial).toEqual(['.partial-20261129T140000Z']);
    expect(listing.unreadable.map((u) => u.name)).toEqual(['20261129T120000Z', '20261129T110000Z']);
  });

  it('compares recomputed digests with the manifest', () => {
    const m = parseManifest(manifest(), 'x');
    const dir = '/b/20261129T131500Z';
    const path = `${dir}/app.jar.20261129T131500Z`;
    expect(
      compareDigests(m, dir, {
        digests: [{ path, size: 3, md5: MD5, sha256: SHA }],
        missing: [],
      })[0]!.state,
    ).toBe('ok');
    expect(compareDigests(m, dir, { digests: [], missing: [path] })[0]!.state).toBe('missing');
    const bad = compareDigests(m, dir, {
      digests: [{ path, size: 3, md5: MD5, sha256: SHA.replace('e3', 'e4') }],
      missing: [],
    })[0]!;
    expect(bad.state).toBe('corrupt');
  });
});

describe('retention', () => {
  const setsArb = fc
    .uniqueArray(fc.integer({ min: 0, max: 10_000 }), { maxLength: 30 })
    .chain((stamps) =>
      fc.tuple(
        fc.constant(stamps.map((s) => setStamp(new Date(Date.UTC(2026, 0, 1) + s * 1000)))),
        fc.array(fc.constantFrom('u1', 'u2', 'u3', null), {
          minLength: stamps.length,
          maxLength: stamps.length,
        }),
      ),
    )
    .map(([names, ups]) => names.map((name, i) => ({ name, upgradeId: ups[i] ?? null })));

  it('keeps the newest N and the protected ones, deletes all the rest', () => {
    fc.assert(
      fc.property(
        setsArb,
        fc.integer({ min: 1, max: 5 }),
        fc.subarray(['u1', 'u2', 'u3']),
        fc.integer({ min: 0, max: 40 }),
        (sets, keep, protUps, pick) => {
          const protectedSets = new Set(sets.length ? [sets[pick % sets.length]!.name] : []);
          const protectedUpgrades = new Set(protUps);
          const doomed = new Set(setsToDelete(sets, { keep, protectedSets, protectedUpgrades }));
          const newest = new Set(
            [...sets]
              .sort((x, y) => (x.name < y.name ? 1 : -1))
              .slice(0, keep)
              .map((s) => s.name),
          );
          for (const s of sets) {
            const isProtected =
              newest.has(s.name) ||
              protectedSets.has(s.name) ||
              (s.upgradeId !== null && protectedUpgrades.has(s.upgradeId));
            expect(doomed.has(s.name)).toBe(!isProtected);
          }
        },
      ),
    );
  });

  it('refuses to keep fewer than one set', () => {
    expect(() => setsToDelete([], { keep: 0 })).toThrow(/at least 1/);
  });
});

describe('database flavours', () => {
  it('maps each engine to its tools in binDir', () => {
    expect(databaseTools('postgresql', '/usr/lib/postgresql/15/bin/')).toEqual({
      dump: '/usr/lib/postgresql/15/bin/pg_dump',
      restore: '/usr/lib/postgresql/15/bin/pg_restore',
      client: '/usr/lib/postgresql/15/bin/psql',
    });
    expect(DATABASE_TOOLS.gaussdb.dump).toBe('gs_dump');
    expect(DATABASE_TOOLS.opengauss.client).toBe('gsql');
  });
});

const PAIR = parseHAPair(
  `apiVersion: pairshift.io/v1alpha1
kind: HAPair
metadata: {name: p}
spec:
  vip: {address: 198.18.0.100, prefixLength: 24, interface: eth0}
  ssh: {user: root, privateKeyPath: /k}
  nodes:
    - {name: a, address: 198.18.0.11, ssh: {hostKey: {fingerprint: "SHA256:${'A'.repeat(43)}"}}}
    - {name: b, address: 198.18.0.12, ssh: {hostKey: {fingerprint: "SHA256:${'B'.repeat(43)}"}}}
  keepalived: {configPath: /k.conf, instance: VI_1, start: s, stop: s, status: s, reload: s}
  services: [{name: java, port: 8080, start: s, stop: s, status: s}]
  database: {port: 5432, name: app, user: app, superuser: postgres, replicationUser: r, osUser: postgres, dataDir: /d, binDir: /bin, start: s, stop: s, status: s}
  rsync: {source: /etc/app/, direction: vip-holder-to-peer, periodSeconds: 2, pause: p, resume: r, status: s}
  paths: {appDir: /opt/app, appJar: /opt/app/app.jar, configDir: /etc/app, rootKey: /etc/app/root.key, backupDir: /var/backups/app}
`,
  'test',
);

/** A shell that answers by the script's first line; the config tar fails with ENOSPC. */
class ScriptedShell implements NodeShell {
  readonly calls: string[] = [];
  async exec(node: string, argv: readonly string[], _o?: ExecOptions): Promise<ExecResult> {
    const script = argv[2] ?? '';
    this.calls.push(script);
    const ok = (stdout = ''): ExecResult => ({
      exitCode: 0,
      signal: undefined,
      stdout,
      stderr: '',
      durationMs: 1,
    });
    if (script.includes('tar --numeric-owner -cf')) {
      throw new DriverError('command failed', {
        kind: 'terminal',
        node,
        exitCode: 2,
        stderrTail:
          'tar: /var/backups/app/.partial-x/config.tar.x: Wrote only 4096 of 10240 bytes: No space left on device',
      });
    }
    if (script.includes('openssl dgst')) return ok(`3 ${MD5} ${SHA} ${argv[4]}\n`);
    return ok();
  }
}

describe('ensureBackup when a step fails', () => {
  it('removes the partial set, marks its rows MISSING and says which node and step', async () => {
    const shell = new ScriptedShell();
    const records = new MemoryRecords();
    const err = await ensureBackup(
      { pair: PAIR, shell, records, now: () => new Date('2026-11-29T13:15:00Z') },
      { node: 'a', upgradeId: 'u1', database: false },
    ).catch((e: unknown) => e as DriverError);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).message).toMatch(
      /^a: while backing up node a for upgrade u1: while backing up the config folder \(\/etc\/app\) to \/var\/backups\/app\/\.partial-20261129T131500Z\/config\.tar\.20261129T131500Z: command failed \(exit 2\): .*No space left on device/,
    );
    expect(records.backups.map((r) => [r.kind, r.state])).toEqual([
      ['jar', 'MISSING'],
      ['config', 'MISSING'],
    ]);
    expect(shell.calls.at(-1)).toBe('rm -rf -- "$@"');
    expect(shell.calls.some((c) => c.includes('mv -T'))).toBe(false); // never finalized
  });

  it('plans without acting in a dry run', async () => {
    const shell = new ScriptedShell();
    const r = await ensureBackup(
      {
        pair: PAIR,
        shell,
        records: new MemoryRecords(),
        now: () => new Date('2026-11-29T13:15:00Z'),
      },
      { node: 'a', upgradeId: 'u1', database: false, dryRun: true },
    );
    expect(r.state).toBe('changed');
    expect(r.actions).toEqual([
      'back up the jar to /var/backups/app/20261129T131500Z/app.jar.20261129T131500Z',
      'back up the config folder to /var/backups/app/20261129T131500Z/config.tar.20261129T131500Z',
    ]);
    expect(shell.calls).toHaveLength(1); // only the listing
  });
});

describe('verification against the operator’s records', () => {
  const SET = '20261129T131500Z';
  const path = `/var/backups/app/${SET}/app.jar.${SET}`;
  const manifestLine = `SET ${SET} ${JSON.stringify({
    format: 'pairshift-backup/1',
    set: SET,
    node: 'a',
    upgradeId: 'u1',
    createdAt: '2026-11-29T13:15:00.000Z',
    files: [
      {
        kind: 'jar',
        name: `app.jar.${SET}`,
        source: '/opt/app/app.jar',
        size: 3,
        md5: MD5,
        sha256: SHA,
      },
    ],
  })}\n`;
  // the node's file matches its (rewritten) manifest ...
  const shell: NodeShell = {
    async exec(_n, argv) {
      const script = argv[2] ?? '';
      const stdout = script.includes('MANIFEST.json') ? manifestLine : `3 ${MD5} ${SHA} ${path}\n`;
      return { exitCode: 0, signal: undefined, stdout, stderr: '', durationMs: 1 };
    },
  };

  it('catches a file altered together with its manifest', async () => {
    const records = new MemoryRecords();
    const recordedSha = 'f'.repeat(64); // ... but not what the operator recorded
    const ctx = {
      pair: PAIR,
      shell,
      records,
      recordedDigests: async (_n: string, p: string) =>
        p === path ? { size: 3, md5: MD5, sha256: recordedSha } : undefined,
    };
    const err = await ensureBackup(ctx, { node: 'a', upgradeId: 'u1' }).catch(
      (e: unknown) => e as DriverError,
    );
    expect((err as DriverError).message).toMatch(
      /app\.jar\.20261129T131500Z is corrupt \(recorded sha256 ffffffffffffffff/,
    );
    expect(records.backups[0]).toMatchObject({ path, state: 'CORRUPT', sha256: recordedSha });
    // without the operator's record the manifest is all there is, and it agrees
    const again = await ensureBackup(
      { pair: PAIR, shell, records: new MemoryRecords() },
      { node: 'a', upgradeId: 'u1' },
    );
    expect(again.state).toBe('unchanged');
  });
});
