import { jest } from '@jest/globals';
import {
  type BackupContext,
  ensureBackup,
  listBackupSets,
  restoreBackup,
  verifyBackupSet,
} from '../../src/drivers/backup/index.js';
import { DriverError } from '../../src/drivers/errors.js';
import { type BackupRecord, MemoryRecords } from '../../src/drivers/records.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import { execArgv, labDown, labUp } from '../../src/lab/index.js';
import { run, sleep } from '../../src/lab/run.js';
import { lockLab } from '../support/lab-lock.js';

const NAME = 'd2';
jest.setTimeout(300_000);

let pair: HAPair;
let pool: SshPool;
let records: UpsertRecords;
let ctx: BackupContext;
let releaseLock: () => void = () => {};
/** MemoryRecords, but one row per (node, path) like the store's upsert. */
class UpsertRecords extends MemoryRecords {
  override async backup(r: BackupRecord) {
    const old = this.backups.find((x) => x.node === r.node && x.path === r.path);
    if (!old) return super.backup(r);
    Object.assign(old, { ...r, createdAt: old.createdAt });
    return old.id;
  }
}

/** Everything our code produced, to be searched for the root key. */
const produced: string[] = [];

async function onNode(node: 'a' | 'b', script: string, allowFail = false) {
  const [cmd, ...args] = execArgv(NAME, node, ['sh', '-c', script]);
  return run(cmd!, args, { allowFail, timeoutMs: 60_000 });
}

const psql = async (sql: string) =>
  (await onNode('a', `runuser -u postgres -- psql -X -At -d app -c "${sql}"`)).stdout.trim();

async function failureOf(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DriverError) {
      produced.push(err.message);
      return err;
    }
    throw err;
  }
  throw new Error('expected a DriverError');
}

const KEY_STAT =
  'stat -c "%s %u %g %a" /etc/app/root.key; openssl dgst -sha256 -r /etc/app/root.key';

beforeAll(async () => {
  releaseLock = await lockLab(NAME);
  const up = await labUp({ name: NAME });
  pair = await loadHAPair(up.inventory);
  pool = new SshPool(await sshEndpoints(pair));
  records = new UpsertRecords();
  ctx = { pair, shell: pool, records };
  // the sync job would copy a's config changes to b: keep b out of this
  for (const n of ['a', 'b'] as const) {
    await onNode(n, pair.spec.rsync.pause);
    // a lab left up by an earlier run may hold sets already
    await onNode(
      n,
      `rm -rf ${pair.spec.paths.backupDir}/* ${pair.spec.paths.backupDir}/.partial-*`,
    );
  }
});

afterAll(async () => {
  await pool?.close();
  for (const n of ['a', 'b'] as const)
    await onNode(n, 'umount /var/backups/app 2>/dev/null; true', true).catch(() => undefined);
  await labDown({ name: NAME });
  releaseLock();
});

describe('backup on the lab pair', () => {
  it('backs up jar, config and database on the primary, verified; the second run changes nothing', async () => {
    const dry = await ensureBackup(ctx, { node: 'a', upgradeId: 'up-1', dryRun: true });
    expect(dry).toMatchObject({ state: 'changed', dryRun: true, set: undefined });
    expect(dry.actions.join('\n')).toMatch(/back up the database/);
    expect((await listBackupSets(ctx, 'a')).sets).toEqual([]);

    const first = await ensureBackup(ctx, { node: 'a', upgradeId: 'up-1' });
    produced.push(JSON.stringify(first));
    expect(first.state).toBe('changed');
    expect(first.files.map((f) => f.kind)).toEqual(['jar', 'config', 'database']);
    expect(first.files.map((f) => f.name)).toEqual([
      `app.jar.${first.set}`,
      `config.tar.${first.set}`,
      `app.dump.${first.set}`,
    ]);
    // the hashes are the node's files' hashes (checked with coreutils here)
    const sums = await onNode('a', `cd ${first.setDir} && md5sum * && sha256sum *`);
    for (const f of first.files) {
      expect(sums.stdout).toContain(`${f.md5}  ${f.name}`);
      expect(sums.stdout).toContain(`${f.sha256}  ${f.name}`);
    }
    expect((await onNode('a', `stat -c %a ${first.setDir}`)).stdout.trim()).toBe('700');
    const rows = records.backups.filter((r) => r.upgradeId === 'up-1');
    expect(rows.map((r) => r.state)).toEqual(['VERIFIED', 'VERIFIED', 'VERIFIED']);
    expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.sha256 ?? ''))).toBe(true);

    const second = await ensureBackup(ctx, { node: 'a', upgradeId: 'up-1' });
    expect(second).toMatchObject({ state: 'unchanged', set: first.set, deletedSets: [] });
    expect((await listBackupSets(ctx, 'a')).sets.map((s) => s.name)).toEqual([first.set]);

    // the standby gets no dump (auto): jar and config only
    const b = await ensureBackup(ctx, { node: 'b', upgradeId: 'up-1' });
    expect(b.files.map((f) => f.kind)).toEqual(['jar', 'config']);
  });

  it('restores the root key byte-exact (content, owner, group, mode), the jar and the database', async () => {
    const before = (await onNode('a', KEY_STAT)).stdout;
    const jarBefore = (await onNode('a', 'sha256sum /opt/app/app.jar')).stdout;
    await psql(
      'create table restore_probe (v int); insert into restore_probe values (1); create table dropped_later (v int)',
    );
    await sleep(1100); // set names are per second
    const backup = await ensureBackup(ctx, { node: 'a', upgradeId: 'up-r', retention: 5 });

    // damage everything the backup covers
    await onNode(
      'a',
      'head -c 64 /dev/urandom > /etc/app/root.key && chown 1234:4321 /etc/app/root.key && chmod 644 /etc/app/root.key && echo stray > /etc/app/stray.conf && echo junk >> /opt/app/app.jar',
    );
    await psql('insert into restore_probe values (2), (3)');
    // what a newer release's migration would do after the backup
    await psql(
      "create table newer_release (v int); create type newer_mood as enum ('calm'); create function newer_fn() returns int language sql as 'select 1'; alter table restore_probe add column extra text; drop table dropped_later",
    );
    expect((await onNode('a', KEY_STAT)).stdout).not.toBe(before);

    const dry = await restoreBackup(ctx, { node: 'a', upgradeId: 'up-r', dryRun: true });
    expect(dry.parts.map((p) => [p.kind, p.state])).toEqual([
      ['jar', 'changed'],
      ['config', 'changed'],
      ['database', 'changed'],
    ]);
    expect((await onNode('a', 'cat /etc/app/stray.conf')).stdout.trim()).toBe('stray'); // untouched

    const r = await restoreBackup(ctx, { node: 'a', upgradeId: 'up-r' });
    produced.push(JSON.stringify(r));
    expect(r.set).toBe(backup.set);
    expect(r.state).toBe('changed');
    expect((await onNode('a', KEY_STAT)).stdout).toBe(before);
    expect((await onNode('a', 'ls /etc/app')).stdout.split('\n').filter(Boolean).sort()).toEqual([
      'app.properties',
      'root.key',
    ]);
    expect((await onNode('a', 'sha256sum /opt/app/app.jar')).stdout).toBe(jarBefore);
    expect(await psql("select string_agg(v::text, ',') from restore_probe")).toBe('1');
    // the database is the one backed up: later objects gone, dropped ones back
    expect(
      await psql(
        "select string_agg(table_name, ',' order by table_name) from information_schema.tables where table_schema = 'public'",
      ),
    ).toMatch(/^(.*,)?dropped_later,(.*,)?restore_probe(,.*)?$/);
    expect(await psql("select to_regclass('public.newer_release') is null")).toBe('t');
    expect(await psql("select to_regtype('public.newer_mood') is null")).toBe('t');
    expect(await psql("select count(*) from pg_proc where proname = 'newer_fn'")).toBe('0');
    expect(
      await psql(
        "select count(*) from information_schema.columns where table_name = 'restore_probe' and column_name = 'extra'",
      ),
    ).toBe('0');

    // a dump can be taken from the standby, but restored only on the primary
    await ensureBackup(ctx, { node: 'b', upgradeId: 'up-sb', database: true, retention: 5 });
    await expect(
      restoreBackup(ctx, { node: 'b', upgradeId: 'up-sb', parts: ['database'] }),
    ).rejects.toThrow(/^b: while restoring .*: the database on node b is a standby/);
    await expect(
      restoreBackup(ctx, { node: 'b', upgradeId: 'up-1', parts: ['database'] }),
    ).rejects.toThrow(/holds no database backup/);

    // again: jar and config already equal the backup
    const again = await restoreBackup(ctx, {
      node: 'a',
      upgradeId: 'up-r',
      parts: ['jar', 'config'],
    });
    expect(again.state).toBe('unchanged');
  });

  it('keeps the newest N sets, never the one just made nor one an unfinished upgrade points to', async () => {
    const sets = (await listBackupSets(ctx, 'a')).sets;
    const up1 = sets.find((s) => s.manifest.upgradeId === 'up-1')!;
    const upR = sets.find((s) => s.manifest.upgradeId === 'up-r')!;
    await sleep(1100); // set names are per second
    const s2 = await ensureBackup(ctx, {
      node: 'a',
      upgradeId: 'up-2',
      database: false,
      retention: 1,
      protectedUpgrades: ['up-1'],
    });
    // keep 1 (the new one); up-1 is protected; up-r goes
    expect(s2.deletedSets).toEqual([upR.name]);
    await sleep(1100);
    const s3 = await ensureBackup(ctx, {
      node: 'a',
      upgradeId: 'up-3',
      database: false,
      retention: 1,
    });
    expect([...s3.deletedSets].sort()).toEqual([up1.name, s2.set].sort());
    expect((await listBackupSets(ctx, 'a')).sets.map((s) => s.name)).toEqual([s3.set]);
    const deleted = records.backups.filter((r) => r.node === 'a' && r.state === 'DELETED');
    expect(new Set(deleted.map((r) => r.upgradeId))).toEqual(new Set(['up-1', 'up-2', 'up-r']));
    expect((await onNode('a', `ls -A ${pair.spec.paths.backupDir}`)).stdout.trim()).toBe(s3.set);
  });

  it('finds a corrupted byte and a missing file; restore refuses before touching anything', async () => {
    const s = (await listBackupSets(ctx, 'a')).sets.find((x) => x.manifest.upgradeId === 'up-3')!;
    const jarBackup = `${pair.spec.paths.backupDir}/${s.name}/app.jar.${s.name}`;
    // flip one byte in the middle of the jar backup
    await onNode(
      'a',
      `b=$(dd if=${jarBackup} bs=1 skip=100 count=1 2>/dev/null | od -An -tu1 | tr -d ' '); printf "\\\\$(printf %o $(( (b + 1) % 256 )))" | dd of=${jarBackup} bs=1 seek=100 count=1 conv=notrunc 2>/dev/null`,
    );
    const v = await verifyBackupSet(ctx, 'a', s);
    expect(v.ok).toBe(false);
    expect(v.checks.find((c) => c.name.startsWith('app.jar'))?.state).toBe('corrupt');
    expect(records.backups.find((r) => r.path === jarBackup)?.state).toBe('CORRUPT');

    await onNode('a', 'echo changed-after-backup >> /opt/app/app.jar');
    const jarNow = (await onNode('a', 'sha256sum /opt/app/app.jar')).stdout;
    const err = await failureOf(restoreBackup(ctx, { node: 'a', set: s.name }));
    expect(err.kind).toBe('terminal');
    expect(err.node).toBe('a');
    expect(err.message).toMatch(
      new RegExp(`^a: while restoring set ${s.name} on node a: .*app\\.jar\\.${s.name} is corrupt`),
    );
    expect((await onNode('a', 'sha256sum /opt/app/app.jar')).stdout).toBe(jarNow); // untouched
    // ensureBackup of that upgrade does not pretend the set is good either
    await expect(
      ensureBackup(ctx, { node: 'a', upgradeId: 'up-3', database: false }),
    ).rejects.toThrow(/is corrupt/);

    await onNode('a', `rm ${pair.spec.paths.backupDir}/${s.name}/config.tar.${s.name}`);
    const v2 = await verifyBackupSet(ctx, 'a', s);
    expect(v2.checks.find((c) => c.name.startsWith('config.tar'))?.state).toBe('missing');
    expect(records.backups.find((r) => r.path.endsWith(`config.tar.${s.name}`))?.state).toBe(
      'MISSING',
    );
    await expect(restoreBackup(ctx, { node: 'a', set: s.name, parts: ['jar'] })).rejects.toThrow(
      /is missing/,
    );
  });

  it('fails clearly on a full backup folder and records nothing as good', async () => {
    const dir = pair.spec.paths.backupDir;
    await onNode(
      'a',
      `mount -t tmpfs -o size=1m tmpfs ${dir} && (dd if=/dev/zero of=${dir}/filler bs=4k 2>/dev/null; true)`,
    );
    try {
      const rowsBefore = records.backups.length;
      const err = await failureOf(ensureBackup(ctx, { node: 'a', upgradeId: 'up-full' }));
      expect(err.node).toBe('a');
      expect(err.kind).toBe('terminal');
      expect(err.message).toMatch(/^a: while backing up node a for upgrade up-full: /);
      expect(err.message).toMatch(/No space left on device/);
      const rows = records.backups.slice(rowsBefore);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.state === 'MISSING')).toBe(true);
      // nothing half-written left behind
      expect((await onNode('a', `ls -A ${dir}`)).stdout.trim()).toBe('filler');
    } finally {
      await onNode('a', `umount ${dir}`);
    }
  });

  it('names the node when it cannot be reached or its host key is wrong', async () => {
    const endpoints = await sshEndpoints(pair);
    const a = endpoints.find((e) => e.node === 'a')!;
    const b = endpoints.find((e) => e.node === 'b')!;
    const fast = {
      connectTimeoutMs: 3000,
      keepaliveIntervalMs: 1000,
      keepaliveCountMax: 2,
      commandTimeoutMs: 10_000,
    };
    const dead = new SshPool([{ ...a, port: 2 }], fast);
    const e1 = await failureOf(
      ensureBackup({ ...ctx, shell: dead }, { node: 'a', upgradeId: 'up-x' }),
    );
    expect(e1.kind).toBe('transient');
    expect(e1.message).toMatch(
      /^a: while backing up node a for upgrade up-x: .*cannot connect over SSH/,
    );
    await dead.close();
    const wrongKey = new SshPool([{ ...a, hostKeyFingerprints: b.hostKeyFingerprints }], fast);
    const e2 = await failureOf(
      restoreBackup({ ...ctx, shell: wrongKey }, { node: 'a', upgradeId: 'up-1' }),
    );
    expect(e2.kind).toBe('terminal');
    expect(e2.message).toMatch(/^a: .*host key .* is not pinned/);
    await wrongKey.close();
  });

  it('never lets the root key content reach a result, a record or an error', async () => {
    const key = Buffer.from(
      (await onNode('a', 'base64 -w0 /etc/app/root.key')).stdout.trim(),
      'base64',
    );
    expect(key.length).toBe(64);
    const text = [...produced, JSON.stringify(records)].join('\n');
    expect(text.length).toBeGreaterThan(1000);
    for (const form of [key.toString('hex'), key.toString('base64'), key.toString('latin1')]) {
      expect(text.includes(form)).toBe(false);
    }
    // and the manifests on the node hold hashes only
    const manifests = (await onNode('a', `cat ${pair.spec.paths.backupDir}/*/MANIFEST.json`))
      .stdout;
    expect(manifests.includes(key.toString('hex'))).toBe(false);
    expect(manifests.includes(key.toString('base64'))).toBe(false);
  });
});
