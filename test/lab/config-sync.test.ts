// The config sync driver against the real lab pair (lab "d2b", one bring-up
// for this file): rsync job status, pause and resume (each twice; pause
// really stops the push), locking /etc/app (a write really fails), and the
// cross-node checksum comparison. Needs root and what docs/lab.md lists.
import { jest } from '@jest/globals';
import { compareConfigAcrossNodes } from '../../src/drivers/config-sync/compare.js';
import {
  ensureConfigLocked,
  ensureConfigUnlocked,
  type LockMethod,
} from '../../src/drivers/config-sync/lock.js';
import {
  ensureRsyncPaused,
  ensureRsyncPausedOnPair,
  ensureRsyncResumedOnPair,
  monitorRsyncRound,
  rsyncStatus,
} from '../../src/drivers/config-sync/sync.js';
import { DriverError } from '../../src/drivers/errors.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import { execArgv, labDown, labUp } from '../../src/lab/index.js';
import { run, sleep, waitFor } from '../../src/lab/run.js';

const NAME = 'd2b';
jest.setTimeout(300_000);

let pair: HAPair;
let pool: SshPool;
let records: MemoryRecords;
const produced: string[] = [];

async function onNode(node: 'a' | 'b', script: string, allowFail = false) {
  const [cmd, ...args] = execArgv(NAME, node, ['sh', '-c', script]);
  return run(cmd!, args, { allowFail, timeoutMs: 60_000 });
}

const ctx = () => ({ pair, shell: pool, records });

beforeAll(async () => {
  const up = await labUp({ name: NAME });
  pair = await loadHAPair(up.inventory);
  pool = new SshPool(await sshEndpoints(pair));
  records = new MemoryRecords();
});

afterAll(async () => {
  // a lock left by a failed test would stop `lab down` removing the folder
  for (const n of ['a', 'b'] as const) {
    await onNode(n, 'mount -o remount,bind,rw /etc/app; chattr -R -i /etc/app; true', true).catch(
      () => undefined,
    );
  }
  await pool?.close();
  await labDown({ name: NAME });
});

describe('config sync on the lab pair', () => {
  it('reads the job status on both nodes', async () => {
    const a = await rsyncStatus(ctx(), 'a');
    expect(a).toMatchObject({ paused: false, loopRunning: true });
    expect(['running', 'failed']).toContain(a.state);
    await waitFor(
      'a first push',
      async () => ((await rsyncStatus(ctx(), 'a')).lastResult === 'pushed' ? true : undefined),
      15_000,
      250,
    );
    expect((await rsyncStatus(ctx(), 'b')).lastResult).toBe('standby');
    // a monitoring round records both nodes; the next one nothing new
    const monitor = new MemoryRecords();
    const seen = await monitorRsyncRound({ pair, shell: pool, records: monitor }, new Map());
    expect([...seen.values()]).toEqual(['running', 'running']);
    await monitorRsyncRound({ pair, shell: pool, records: monitor }, seen);
    expect(monitor.rsyncStatuses.map((r) => [r.node, r.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ]);
  });

  it('pauses (twice: the second changes nothing); while paused a change on the VIP holder stays there; resume delivers it', async () => {
    const dry = await ensureRsyncPausedOnPair(ctx(), { upgradeId: null, dryRun: true });
    expect(dry.state).toBe('changed');
    expect((await rsyncStatus(ctx(), 'a')).paused).toBe(false);

    const first = await ensureRsyncPausedOnPair(ctx(), { upgradeId: null });
    expect(first.state).toBe('changed');
    expect(first.nodes.map((n) => [n.node, n.state, n.after.state])).toEqual([
      ['a', 'changed', 'paused'],
      ['b', 'changed', 'paused'],
    ]);
    const second = await ensureRsyncPausedOnPair(ctx(), { upgradeId: null });
    expect(second.state).toBe('unchanged');
    expect(records.rsyncStatuses.map((r) => [r.node, r.state])).toEqual([
      ['a', 'paused'],
      ['b', 'paused'],
    ]);

    const stamp = `v=${Date.now()}`;
    await onNode('a', `echo '${stamp}' > /etc/app/driver-test.conf`);
    await sleep(5000); // more than two sync periods
    expect((await onNode('b', 'cat /etc/app/driver-test.conf', true)).code).not.toBe(0);
    const diff = await compareConfigAcrossNodes(ctx(), { upgradeId: null });
    expect(diff.consistent).toBe(false);
    expect(diff.differences.map((d) => [d.path, d.reason])).toEqual([
      ['driver-test.conf', 'only on one node'],
    ]);
    expect(records.configSyncs.at(-1)).toMatchObject({
      consistent: false,
      detail: 'driver-test.conf: only on one node',
    });

    const resumed = await ensureRsyncResumedOnPair(ctx(), { upgradeId: null });
    expect(resumed.state).toBe('changed');
    expect((await ensureRsyncResumedOnPair(ctx(), { upgradeId: null })).state).toBe('unchanged');
    await waitFor(
      'the change on b after resume',
      async () =>
        (await onNode('b', 'cat /etc/app/driver-test.conf', true)).stdout.trim() === stamp
          ? true
          : undefined,
      15_000,
      250,
    );
    expect(records.rsyncStatuses.slice(2).map((r) => r.node)).toEqual(['a', 'b']);
    expect(records.rsyncStatuses.slice(2).every((r) => r.state !== 'paused')).toBe(true);
  });

  it('finds the nodes consistent, root key included by hash only; a changed mode is a difference', async () => {
    const same = await compareConfigAcrossNodes(ctx(), { upgradeId: null });
    expect(same.consistent).toBe(true);
    const keySum = (await onNode('a', 'sha256sum /etc/app/root.key')).stdout.split(' ')[0];
    expect(same.checksums.a!['root.key']).toBe(keySum);
    expect(same.checksums.b!['root.key']).toBe(keySum);
    produced.push(JSON.stringify(same), JSON.stringify(records));

    await ensureRsyncPaused(ctx(), 'a');
    await onNode('b', 'chmod 640 /etc/app/root.key');
    const diff = await compareConfigAcrossNodes(ctx());
    expect(diff.differences.map((d) => [d.path, d.reason])).toEqual([
      ['root.key', 'owner or mode'],
    ]);
    await onNode('b', 'chmod 600 /etc/app/root.key');
    await ensureRsyncResumedOnPair(ctx());
  });

  for (const method of ['immutable', 'readonly-mount'] as LockMethod[]) {
    it(`locks /etc/app (${method}): a write really fails while locked and works after unlock`, async () => {
      const dir = pair.spec.paths.configDir;
      await ensureRsyncPausedOnPair(ctx());
      await onNode('a', 'echo before-lock > /etc/app/driver-test.conf');
      const first = await ensureConfigLocked(ctx(), { node: 'a', dir, method });
      expect(first).toMatchObject({ state: 'changed', before: 'no', after: 'yes', method });
      expect((await ensureConfigLocked(ctx(), { node: 'a', dir, method })).state).toBe('unchanged');
      for (const attempt of [
        'echo more >> /etc/app/app.properties',
        'touch /etc/app/new-file',
        'rm /etc/app/driver-test.conf',
        'mv /etc/app/driver-test.conf /etc/app/renamed.conf',
      ]) {
        const r = await onNode('a', attempt, true);
        expect({ attempt, failed: r.code !== 0 }).toEqual({ attempt, failed: true });
        expect(r.stderr).toMatch(/Operation not permitted|Read-only file system/);
      }
      const dryUnlock = await ensureConfigUnlocked(ctx(), { node: 'a', dir, method, dryRun: true });
      expect(dryUnlock.state).toBe('changed');
      expect((await onNode('a', 'touch /etc/app/new-file', true)).code).not.toBe(0);
      expect((await ensureConfigUnlocked(ctx(), { node: 'a', dir, method })).state).toBe('changed');
      expect((await ensureConfigUnlocked(ctx(), { node: 'a', dir, method })).state).toBe(
        'unchanged',
      );
      await onNode(
        'a',
        'echo unlocked > /etc/app/driver-test.conf && rm /etc/app/driver-test.conf',
      );
      await ensureRsyncResumedOnPair(ctx());
    });
  }

  it('picks the immutable method on the lab (ext4) by itself', async () => {
    const dir = pair.spec.paths.configDir;
    const r = await ensureConfigLocked(ctx(), { node: 'b', dir });
    expect(r.method).toBe('immutable');
    expect((await onNode('b', 'lsattr -d /etc/app')).stdout).toMatch(/^\S*i\S* /);
    await ensureConfigUnlocked(ctx(), { node: 'b', dir });
  });

  it('names the node when it cannot be reached', async () => {
    const [a] = await sshEndpoints(pair);
    const dead = new SshPool([{ ...a!, port: 2 }], {
      connectTimeoutMs: 3000,
      keepaliveIntervalMs: 1000,
      keepaliveCountMax: 2,
      commandTimeoutMs: 5000,
    });
    try {
      await ensureRsyncPaused({ pair, shell: dead, records }, 'a');
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(DriverError);
      expect((err as DriverError).message).toMatch(
        /^a: while pausing the rsync job: while reading the rsync job status: cannot connect over SSH/,
      );
      expect((err as DriverError).kind).toBe('transient');
    } finally {
      await dead.close();
    }
  });

  it('never lets the root key content reach a result or a record', async () => {
    const key = Buffer.from(
      (await onNode('a', 'base64 -w0 /etc/app/root.key')).stdout.trim(),
      'base64',
    );
    expect(key.length).toBe(64);
    const text = [...produced, JSON.stringify(records)].join('\n');
    for (const form of [key.toString('hex'), key.toString('base64'), key.toString('latin1')]) {
      expect(text.includes(form)).toBe(false);
    }
  });
});
