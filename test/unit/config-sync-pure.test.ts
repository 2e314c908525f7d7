// The config sync driver's pure parts: the rsync job's status line, the
// per-file checksum listing, the cross-node comparison and the lock
// observations; plus ensure-style pause against a scripted shell.

import { lockedFromLsattr, lockedFromMountOptions } from '../../src/drivers/config-sync/lock.js';
import {
  compareListings,
  parseChecksumListing,
  parseRsyncStatus,
} from '../../src/drivers/config-sync/parse.js';
import {
  ensureRsyncPaused,
  ensureRsyncResumed,
  monitorRsyncRound,
} from '../../src/drivers/config-sync/sync.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import type { ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import type { HAPair } from '../../src/inventory/hapair.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

const labLine = (paused: boolean, loop = 'running', lastResult = 'pushed') =>
  JSON.stringify({
    job: 'config-sync',
    loop,
    paused,
    periodSeconds: 2,
    source: '/etc/app/',
    peer: '198.19.34.12',
    last: {
      lastRun: '2026-11-29T13:00:00.000Z',
      lastResult,
      holdsVip: true,
      lastError: null,
      lastPush: null,
      pushes: 3,
    },
  });

describe('rsync status', () => {
  it('reads the lab job status line', () => {
    expect(parseRsyncStatus(`${labLine(false)}\n`)).toEqual({
      state: 'running',
      paused: false,
      loopRunning: true,
      lastRun: '2026-11-29T13:00:00.000Z',
      lastResult: 'pushed',
      lastError: null,
    });
    expect(parseRsyncStatus(labLine(true)).state).toBe('paused');
    expect(parseRsyncStatus(labLine(true, 'stopped')).state).toBe('paused');
    expect(parseRsyncStatus(labLine(false, 'stopped')).state).toBe('stopped');
    expect(parseRsyncStatus(labLine(false, 'running', 'error')).state).toBe('failed');
    expect(
      parseRsyncStatus('noise before\n{"loop":"running","paused":false,"last":null}').lastRun,
    ).toBeNull();
  });

  it('names what is wrong with a bad status line', () => {
    expect(() => parseRsyncStatus('')).toThrow(/printed no JSON line/);
    expect(() => parseRsyncStatus('{oops')).toThrow(/invalid JSON/);
    expect(() => parseRsyncStatus('{"loop":"running"}')).toThrow(/bad paused/);
  });
});

describe('checksums', () => {
  it('reads NUL-terminated records, names with spaces and newlines included', () => {
    const out = `${H1} 600:0:0 ./root.key\0${H2} 640:0:0 ./sub dir/a\nb.conf\0`;
    const m = parseChecksumListing(out);
    expect([...m.keys()]).toEqual(['root.key', 'sub dir/a\nb.conf']);
    expect(m.get('root.key')).toEqual({ sha256: H1, meta: '600:0:0' });
    expect(() => parseChecksumListing('nonsense\0')).toThrow(/unexpected checksum record/);
  });

  it('lists differing files: content, owner or mode, only on one node', () => {
    const a = new Map([
      ['same', { sha256: H1, meta: '644:0:0' }],
      ['content', { sha256: H1, meta: '644:0:0' }],
      ['mode', { sha256: H1, meta: '600:0:0' }],
      ['only-a', { sha256: H1, meta: '644:0:0' }],
    ]);
    const b = new Map([
      ['same', { sha256: H1, meta: '644:0:0' }],
      ['content', { sha256: H2, meta: '644:0:0' }],
      ['mode', { sha256: H1, meta: '640:0:0' }],
      ['only-b', { sha256: H1, meta: '644:0:0' }],
    ]);
    expect(
      compareListings({ node: 'a', files: a }, { node: 'b', files: b }).map((d) => [
        d.path,
        d.reason,
      ]),
    ).toEqual([
      ['content', 'content'],
      ['mode', 'owner or mode'],
      ['only-a', 'only on one node'],
      ['only-b', 'only on one node'],
    ]);
    expect(compareListings({ node: 'a', files: a }, { node: 'b', files: a })).toEqual([]);
  });
});

describe('lock observations', () => {
  it('reads lsattr and findmnt', () => {
    expect(
      lockedFromLsattr('----i---------e------- /etc/app\n----i---------e------- /etc/app/x\n'),
    ).toBe('yes');
    expect(
      lockedFromLsattr('----i---------e------- /etc/app\n--------------e------- /etc/app/x\n'),
    ).toBe('partly');
    expect(lockedFromLsattr('--------------e------- /etc/app\n')).toBe('no');
    expect(lockedFromMountOptions('ro,relatime\n')).toBe('yes');
    expect(lockedFromMountOptions('rw,relatime,discard\n')).toBe('no');
    expect(lockedFromMountOptions('')).toBe('no');
  });
});

/** A job that really pauses and resumes (a flag), like the lab's sync-ctl. */
class FakeJob implements NodeShell {
  paused = false;
  readonly commands: string[] = [];
  async exec(_node: string, argv: readonly string[]): Promise<ExecResult> {
    const cmd = argv[2]!;
    this.commands.push(cmd);
    if (cmd === 'PAUSE') this.paused = true;
    if (cmd === 'RESUME') this.paused = false;
    return {
      exitCode: 0,
      signal: undefined,
      stdout: labLine(this.paused),
      stderr: '',
      durationMs: 1,
    };
  }
}

describe('ensure-style pause and resume', () => {
  const pair = {
    spec: { rsync: { pause: 'PAUSE', resume: 'RESUME', status: 'STATUS' } },
  } as unknown as HAPair;

  it('acts only when the job is not already as wanted, and records each change', async () => {
    const shell = new FakeJob();
    const records = new MemoryRecords();
    const ctx = { pair, shell, records };
    expect((await ensureRsyncPaused(ctx, 'a', { dryRun: true })).state).toBe('changed');
    expect(shell.paused).toBe(false);
    expect((await ensureRsyncPaused(ctx, 'a', { upgradeId: 'u1' })).state).toBe('changed');
    expect((await ensureRsyncPaused(ctx, 'a', { upgradeId: 'u1' })).state).toBe('unchanged');
    expect(shell.commands.filter((c) => c === 'PAUSE')).toHaveLength(1);
    expect((await ensureRsyncResumed(ctx, 'a')).state).toBe('changed');
    expect(records.rsyncStatuses.map((r) => [r.node, r.state, r.upgradeId])).toEqual([
      ['a', 'paused', 'u1'],
      ['a', 'running', null],
    ]);
  });

  it('is a conflict when the job does not follow', async () => {
    const shell = new FakeJob();
    shell.exec = async () => ({
      exitCode: 0,
      signal: undefined,
      stdout: labLine(false),
      stderr: '',
      durationMs: 1,
    });
    await expect(
      ensureRsyncPaused({ pair, shell, records: new MemoryRecords() }, 'b'),
    ).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(
        /^b: while pausing the rsync job: the job still reports paused=false after `PAUSE`/,
      ),
    });
  });
});

describe('monitoring rounds', () => {
  it('records each node once, then only changes; an unreadable node is unknown', async () => {
    const nodes = { a: new FakeJob(), b: new FakeJob() };
    let bDown = false;
    const shell: NodeShell = {
      exec: (node, argv) => {
        if (node === 'b' && bDown) return Promise.reject(new Error('connection refused'));
        return nodes[node as 'a' | 'b'].exec(node, argv);
      },
    };
    const pair = {
      spec: {
        nodes: [{ name: 'a' }, { name: 'b' }],
        rsync: { pause: 'PAUSE', resume: 'RESUME', status: 'STATUS' },
      },
    } as unknown as HAPair;
    const records = new MemoryRecords();
    const ctx = { pair, shell, records };
    let seen = await monitorRsyncRound(ctx, new Map());
    expect(records.rsyncStatuses.map((r) => [r.node, r.state])).toEqual([
      ['a', 'running'],
      ['b', 'running'],
    ]);
    seen = await monitorRsyncRound(ctx, seen);
    expect(records.rsyncStatuses).toHaveLength(2);
    nodes.a.paused = true;
    bDown = true;
    seen = await monitorRsyncRound(ctx, seen);
    expect(records.rsyncStatuses.slice(2).map((r) => [r.node, r.state])).toEqual([
      ['a', 'paused'],
      ['b', 'unknown'],
    ]);
    expect(records.rsyncStatuses.at(-1)?.detail).toMatch(/connection refused/);
    expect([...seen]).toEqual([
      ['a', 'paused'],
      ['b', 'unknown'],
    ]);
  });
});
