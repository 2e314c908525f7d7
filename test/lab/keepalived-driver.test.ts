// The keepalived driver against the real lab pair (lab "d1b" for this file):
// priorities and VIP moves over SSH with the inventory, each run twice (the
// second changes nothing), the three handoff methods measured, and the ways
// it breaks: keepalived stopped on the target, a wrong host key, a node that
// does not answer.
import { jest } from '@jest/globals';
import { KeepalivedDriver } from '../../src/drivers/keepalived/driver.js';
import type { VipMoveMethod } from '../../src/drivers/keepalived/vip-plan.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { failureOf } from '../support/driver-failure.js';
import { CountingShell, poolWithWrongHostKey, startTestLab, type TestLab } from './db-vip-lab.js';

jest.setTimeout(180_000);

let lab: TestLab;
let records: MemoryRecords;
const driver = (shell = lab.shell as CountingShell | SshPool) =>
  new KeepalivedDriver({
    shell,
    pair: lab.pair,
    records,
    log: process.env.PAIRSHIFT_DRIVER_LOG
      ? (l) => process.stderr.write(`${new Date().toISOString()} ${l}\n`)
      : undefined,
  });

beforeAll(async () => {
  lab = await startTestLab('d1b');
  records = new MemoryRecords();
});
afterAll(async () => {
  await lab?.down();
});

const writesIn = (shell: CountingShell) =>
  shell.commands.filter((c) => !['cat', 'ip'].includes(c.argv[0]!) && !isReadOnlySh(c.argv));
// status and fault-file reads run through sh -c; everything else is a change
const isReadOnlySh = (argv: readonly string[]) =>
  argv[0] === 'sh' &&
  (argv[2] === lab.pair.spec.keepalived.status || (argv[2] ?? '').startsWith('cat "$1"'));

describe('keepalived driver on lab d1b', () => {
  it('observes the VIP on a from inside and from outside both nodes', async () => {
    const o = await driver().observe();
    expect(o.outsideHolder).toBe('a');
    expect(o.nodes.map((n) => [n.node, n.holdsVip, n.running, n.priority, n.faulted])).toEqual([
      ['a', true, true, 150, false],
      ['b', false, true, 100, false],
    ]);
  });

  it('sets a priority once, and a second run writes and reloads nothing', async () => {
    const first = await driver().ensurePriority('b', 90);
    expect(first).toMatchObject({ outcome: 'changed', before: 100, after: 90 });
    expect(await driver().readConfig('b')).toMatch(/priority 90\n/);
    const counting = new CountingShell(lab.shell);
    const second = await driver(counting).ensurePriority('b', 90);
    expect(second.outcome).toBe('unchanged');
    expect(writesIn(counting)).toEqual([]);
    // dry run reports the change without making it
    const dry = await driver().ensurePriority('b', 100, { dryRun: true });
    expect(dry).toMatchObject({ outcome: 'changed', after: 100 });
    expect(await driver().readConfig('b')).toMatch(/priority 90\n/);
    await driver().ensurePriority('b', 100);
    // an impossible priority is refused before anything is written
    const bad = await failureOf(driver().ensurePriority('b', 300));
    expect(bad.kind).toBe('terminal');
    expect(bad.message).toMatch(/1 to 255/);
  });

  it('does nothing when the VIP is already where it should be', async () => {
    const counting = new CountingShell(lab.shell);
    const r = await driver(counting).ensureVipOn('a', { upgradeId: 'u1' });
    expect(r.outcome).toBe('unchanged');
    expect(writesIn(counting)).toEqual([]);
  });

  it('dry run shows the plan and changes nothing', async () => {
    const r = await driver().ensureVipOn('b', { dryRun: true });
    expect(r.outcome).toBe('changed');
    expect(r.plan.map((s) => `${s.kind} ${s.node}`)).toEqual([
      'set-fault a',
      'wait-vip b',
      'set-priority a',
      'set-priority b',
      'clear-fault a',
    ]);
    expect((await driver().observe()).outsideHolder).toBe('a');
  });

  it('moves the VIP to b by a FAULT handoff in well under a second, keeps it there, and a second run does nothing', async () => {
    const r = await driver().ensureVipOn('b', { upgradeId: 'u1' });
    expect(r).toMatchObject({ outcome: 'changed', from: 'a', method: 'fault', attempts: 1 });
    expect(r.switchMs).toBeLessThan(1000);
    const o = await driver().observe();
    expect(o.outsideHolder).toBe('b');
    const [a, b] = o.nodes;
    expect(b.priority).toBeGreaterThan(a.priority);
    expect([a.faulted, b.faulted, a.holdsVip, b.holdsVip]).toEqual([false, false, false, true]);
    const rec = records.vipSwitches.at(-1)!;
    expect(rec).toMatchObject({
      fromNode: 'a',
      toNode: 'b',
      method: 'keepalived_fault',
      result: 'SUCCESS',
      attempt: 1,
    });
    const counting = new CountingShell(lab.shell);
    expect((await driver(counting).ensureVipOn('b', { upgradeId: 'u1' })).outcome).toBe(
      'unchanged',
    );
    expect(writesIn(counting)).toEqual([]);
  });

  it('measures the three handoff methods (stop, priority, fault) back and forth', async () => {
    await driver().ensureVipOn('b', { upgradeId: 'u1' }); // where the previous test left it
    const figures: Record<string, number[]> = { stop: [], priority: [], fault: [] };
    const order: [VipMoveMethod, string][] = [
      ['stop', 'a'],
      ['stop', 'b'],
      ['priority', 'a'],
      ['priority', 'b'],
      ['fault', 'a'],
      ['fault', 'b'],
    ];
    for (const [method, to] of order) {
      const r = await driver().ensureVipOn(to, { method, upgradeId: 'u1' });
      expect(r.outcome).toBe('changed');
      figures[method]!.push(Math.round(r.switchMs!));
    }
    process.stdout.write(`VIP switch ms by method: ${JSON.stringify(figures)}\n`);
    expect(Math.max(...figures.fault!)).toBeLessThan(1000);
    expect(Math.max(...figures.stop!)).toBeLessThan(2000);
    expect(records.vipSwitches.map((v) => v.method)).toEqual(
      expect.arrayContaining(['keepalived_stop', 'keepalived_priority', 'keepalived_fault']),
    );
    // back to a for the failure tests
    await driver().ensureVipOn('a', { upgradeId: 'u1' });
  });

  it('refuses to move the VIP to a node whose keepalived is stopped; the pair keeps serving', async () => {
    const k = lab.pair.spec.keepalived;
    await lab.shell.exec('b', ['sh', '-c', k.stop]);
    try {
      const e = await failureOf(driver().ensureVipOn('b', { upgradeId: 'u1' }));
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/keepalived is not running on b/);
      const o = await driver().observe();
      expect(o.outsideHolder).toBe('a');
      const health = await lab.inLab('client', [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `http://${lab.pair.spec.vip.address}:8080/health`,
      ]);
      expect(health.stdout).toBe('200');
    } finally {
      await lab.shell.exec('b', ['sh', '-c', k.start]);
    }
  });

  it('refuses a node whose host key is not the pinned one, and names an unreachable node', async () => {
    const wrongKey = await poolWithWrongHostKey(lab.pair, 'b');
    try {
      const e = await failureOf(driver(wrongKey).ensureVipOn('b'));
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/b: .*host key .* is not pinned/);
    } finally {
      await wrongKey.close();
    }
    // an address in the lab's /24 that nobody holds: connect times out
    const endpoints = await sshEndpoints(lab.pair);
    const unreachable = new SshPool(
      endpoints.map((e) =>
        e.node === 'b' ? { ...e, host: lab.pair.spec.vip.address.replace(/\.\d+$/, '.13') } : e,
      ),
      {
        connectTimeoutMs: 1500,
        keepaliveIntervalMs: 500,
        keepaliveCountMax: 2,
        commandTimeoutMs: 5000,
      },
    );
    try {
      const e = await failureOf(driver(unreachable).observe());
      expect(e.kind).toBe('transient');
      expect(e.message).toMatch(/^b: while observing keepalived on b: cannot connect over SSH/);
    } finally {
      await unreachable.close();
    }
    // nothing moved
    expect((await driver().observe()).outsideHolder).toBe('a');
  });
});
