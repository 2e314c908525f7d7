// The switchover choreography (src/drivers/switchover) with fake drivers: the
// order in which it asks the database and keepalived to act, what it undoes
// when a step fails, and its timings on an injected virtual clock. The last
// case drives the real keepalived driver over a fake node shell, with a VIP
// that never moves: the move times out at the configured budget per attempt
// on virtual time, in a few real milliseconds.
import type { DriverClock } from '../../src/drivers/clock.js';
import type { Lsn } from '../../src/drivers/database/lsn.js';
import type { DbState, RunningDb } from '../../src/drivers/database/observe.js';
import type { SwitchoverDatabase } from '../../src/drivers/database/roles.js';
import type { ControlData } from '../../src/drivers/database/server-files.js';
import { DriverError } from '../../src/drivers/errors.js';
import { KeepalivedDriver, type VipMoveResult } from '../../src/drivers/keepalived/driver.js';
import type { OutsideAnswer } from '../../src/drivers/keepalived/vip-observer.js';
import type { VipObservation } from '../../src/drivers/keepalived/vip-plan.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import {
  runSwitchover,
  type SwitchoverParts,
  type SwitchoverVip,
} from '../../src/drivers/switchover/switchover.js';
import type { HAPair } from '../../src/inventory/hapair.js';

const A = '198.18.0.11';
const B = '198.18.0.12';
const NODES = [
  { name: 'a', address: A },
  { name: 'b', address: B },
];
const LAST: Lsn = 0x3000200n;

const primary = (node: string): RunningDb => ({
  node,
  running: true,
  inRecovery: false,
  currentLsn: LAST,
  receiveLsn: null,
  replayLsn: null,
  receiverStatus: null,
  senderHost: null,
  syncStandbyNames: '',
  primaryConninfo: '',
  timeline: 1,
});
const standby = (node: string, of: string): RunningDb => ({
  node,
  running: true,
  inRecovery: true,
  currentLsn: null,
  receiveLsn: LAST,
  replayLsn: LAST,
  receiverStatus: 'streaming',
  senderHost: of,
  syncStandbyNames: '',
  primaryConninfo: `host=${of} user=replicator`,
  timeline: null,
});

/** Virtual time: sleep advances it, and so does every fake action that "takes" time. */
function virtualClock(): DriverClock & { t: number } {
  const c = {
    t: 1_000_000,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += ms;
    },
    date: () => new Date(c.t),
  };
  return c;
}

/**
 * A database pair in memory: a primary on a, a standby of it on b. Each
 * operation that changes something is logged and changes the model, so the
 * choreography's own observations see its effects.
 */
class FakeDb implements SwitchoverDatabase {
  readonly calls: string[] = [];
  readonly state = new Map<string, DbState>([
    ['a', primary('a')],
    ['b', standby('b', A)],
  ]);
  /** Failures to inject, by operation name. */
  readonly failing = new Set<string>();
  /** What waitReceivedPast reports missing (null: received). */
  missing: string | null = null;
  /** What the receiver watch reports (null: unknown, so the slow check runs). */
  receivedAtEnd: Lsn | null = LAST + 1n;
  constructor(readonly clock: DriverClock & { t: number }) {}

  #act(what: string, ms = 0): void {
    this.calls.push(what);
    this.clock.t += ms;
    const op = what.split(' ')[0]!;
    if (this.failing.has(op))
      throw new DriverError(`${op} failed`, { kind: 'terminal', node: what.split(' ')[1] });
  }
  async observe(node: string) {
    return this.state.get(node)!;
  }
  async currentLsn(node: string) {
    this.#act(`currentLsn ${node}`);
    return LAST;
  }
  async waitForReplay(node: string) {
    this.#act(`waitForReplay ${node}`);
  }
  async clearSynchronousStandbyNames(node: string) {
    this.#act(`clearSync ${node}`);
  }
  async checkpoint(node: string) {
    this.#act(`checkpoint ${node}`);
  }
  watchReceiverEnd(node: string) {
    this.calls.push(`watchReceiverEnd ${node}`);
    return Promise.resolve(this.receivedAtEnd);
  }
  async stopCleanly(node: string): Promise<ControlData> {
    this.#act(`stopCleanly ${node}`, 100);
    const control: ControlData = { state: 'shut down', checkpointLsn: LAST, timeline: 1 };
    this.state.set(node, { node, running: false, control, standbySignal: false });
    return control;
  }
  async controlData(node: string): Promise<ControlData> {
    const s = this.state.get(node)!;
    if (s.running) throw new Error('running');
    return s.control;
  }
  async waitReceivedPast(node: string, _lsn: Lsn, timeoutMs: number) {
    this.#act(`waitReceivedPast ${node}`, this.missing ? timeoutMs : 0);
    return this.missing;
  }
  async start(node: string) {
    this.#act(`start ${node}`);
    this.state.set(node, primary(node));
  }
  async promote(node: string) {
    this.#act(`promote ${node}`, 50);
    this.state.set(node, primary(node));
  }
  async rejoinAsStandby(node: string, of: string) {
    this.#act(`rejoin ${node} ${of}`);
    this.state.set(node, standby(node, NODES.find((n) => n.name === of)!.address));
  }
  async waitStreaming(node: string, primary: string, address: string) {
    this.#act(`waitStreaming ${node} ${primary} ${address}`);
  }
}

/** keepalived in memory: the VIP on a until a (non-dry) move to b. */
class FakeVip implements SwitchoverVip {
  holder = 'a';
  failMove = false;
  constructor(
    readonly calls: string[],
    readonly clock: DriverClock & { t: number },
  ) {}
  async observe(): Promise<VipObservation> {
    const n = (node: string) => ({
      node,
      running: true,
      holdsVip: this.holder === node,
      priority: this.holder === node ? 150 : 100,
      faulted: false,
    });
    return { nodes: [n('a'), n('b')], outsideHolder: this.holder };
  }
  async outsideHolder(): Promise<OutsideAnswer> {
    return { kind: 'node', node: this.holder, ms: 1 };
  }
  async ensureVipOn(target: string, o: { dryRun?: boolean } = {}): Promise<VipMoveResult> {
    const base = { target, from: this.holder, method: 'fault' as const, plan: [], attempts: 1 };
    if (o.dryRun) return { ...base, outcome: 'changed', switchMs: null, totalMs: 0 };
    this.calls.push(`moveVip ${target}`);
    if (this.failMove)
      throw new DriverError('gave up after 3 attempt(s)', { kind: 'terminal', node: target });
    // answers from target after 30 ms; the rest of the 500 ms is verification
    this.clock.t += 500;
    this.holder = target;
    return { ...base, outcome: 'changed', switchMs: 30, totalMs: 500 };
  }
}

function setup() {
  const clock = virtualClock();
  const db = new FakeDb(clock);
  const vip = new FakeVip(db.calls, clock);
  const parts: SwitchoverParts = { db, vip, nodes: NODES, clock };
  return { clock, db, vip, parts };
}

const failureOf = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as DriverError,
  );

describe('the switchover choreography', () => {
  it('orders the database and VIP actions: stop cleanly, promote, then the VIP, then rejoin', async () => {
    const { db, parts, vip } = setup();
    const r = await runSwitchover(parts, 'b', { upgradeId: 'u' });
    expect(db.calls).toEqual([
      'currentLsn a',
      'waitForReplay b',
      'checkpoint a',
      'watchReceiverEnd b',
      'stopCleanly a',
      'promote b',
      'moveVip b',
      `rejoin a b`,
      `waitStreaming a b ${B}`,
    ]);
    expect(vip.holder).toBe('b');
    expect(r).toMatchObject({ outcome: 'changed', from: 'a', to: 'b' });
    // a re-run observes the finished state and changes nothing
    const again = await runSwitchover(parts, 'b');
    expect(again.outcome).toBe('unchanged');
    expect(db.calls).toHaveLength(9);
  });

  it('times the outage on the injected clock: from the stop to promoted and answering on the VIP', async () => {
    const { parts } = setup();
    const r = await runSwitchover(parts, 'b');
    // stop 100 + promote 50 + the VIP answering 30 ms into its move; verification not counted
    expect(r.writeOutageMs).toBe(180);
    expect(r.vipSwitchMs).toBe(30);
    expect(r.timings['stop-old-primary']).toBe(100);
    expect(r.timings['move-vip']).toBe(500);
  });

  it('a standby without the final WAL: the old primary is started again, nothing promoted, the VIP stays', async () => {
    const { db, parts, vip } = setup();
    db.receivedAtEnd = null;
    db.missing = 'received 0/3000100';
    const e = await failureOf(runSwitchover(parts, 'b', { finalLsnTimeoutMs: 2000 }));
    expect(e).toBeInstanceOf(DriverError);
    expect(e.kind).toBe('terminal');
    expect(e.message).toMatch(/did not receive the old primary's final record.*within 2 s/);
    expect(db.calls.slice(-3)).toEqual(['stopCleanly a', 'waitReceivedPast b', 'start a']);
    expect(db.calls).not.toContain('promote b');
    expect(db.calls).not.toContain('moveVip b');
    expect(vip.holder).toBe('a');
  });

  it('a failed promotion of a standby starts the old primary again and never moves the VIP', async () => {
    const { db, parts, vip } = setup();
    db.failing.add('promote');
    // the promotion failed before it changed anything: b is still a standby
    const promote = db.promote.bind(db);
    db.promote = async (node) => {
      await promote(node).catch((err) => {
        db.state.set('b', standby('b', A));
        throw err;
      });
    };
    const e = await failureOf(runSwitchover(parts, 'b'));
    expect(e.message).toMatch(/a was started again as the primary and keeps the VIP/);
    expect(db.calls.slice(-2)).toEqual(['promote b', 'start a']);
    expect(db.calls).not.toContain('moveVip b');
    expect(vip.holder).toBe('a');
  });

  it('a VIP that does not move after the promotion: says so, and does not start the old primary (two primaries)', async () => {
    const { db, parts, vip } = setup();
    vip.failMove = true;
    const e = await failureOf(runSwitchover(parts, 'b'));
    expect(e.message).toMatch(/b is the new primary but the VIP did not move to it/);
    expect(db.calls.slice(-2)).toEqual(['promote b', 'moveVip b']);
    expect(db.calls).not.toContain('start a');
  });

  it('refuses what it cannot do safely before acting: a standby that is not running', async () => {
    const { db, parts } = setup();
    db.state.set('b', {
      node: 'b',
      running: false,
      control: { state: 'in production', checkpointLsn: LAST, timeline: 1 },
      standbySignal: false,
    });
    const e = await failureOf(runSwitchover(parts, 'b'));
    expect(e.kind).toBe('terminal');
    expect(e.message).toMatch(/database on b is not running/);
    expect(db.calls).toEqual([]);
  });
});

/**
 * keepalived's node-side commands over in-memory state: the VIP stays on a
 * whatever happens (b never takes it), the fault file is a file.
 */
class KeepalivedShell implements NodeShell {
  readonly fault = new Map<string, string>([
    ['a', '0'],
    ['b', '0'],
  ]);
  readonly writes: string[] = [];
  async exec(node: string, argv: readonly string[], _o?: ExecOptions): Promise<ExecResult> {
    const ok = (stdout = ''): ExecResult => ({
      exitCode: 0,
      signal: undefined,
      stdout,
      stderr: '',
      durationMs: 1,
    });
    const line = argv.join(' ');
    if (argv[0] === 'cat' && argv[1] === '/k.conf')
      return ok(`vrrp_instance VI_1 {\n  priority ${node === 'a' ? 150 : 100}\n}\n`);
    if (line === 'sh -c status') return ok();
    if (argv[0] === 'ip') return ok(node === 'a' ? `2: eth0    inet ${VIP}/24 scope global` : '');
    if (argv[2]?.startsWith('cat "$1"')) return ok(`${this.fault.get(node)}\n`);
    if (argv[2]?.startsWith('printf')) {
      this.writes.push(`fault ${node}=${argv[4]}`);
      this.fault.set(node, argv[4]!);
      return ok();
    }
    throw new Error(`unexpected command on ${node}: ${line}`);
  }
}

const VIP = '198.18.0.100';

describe('the switchover with the keepalived driver on virtual time', () => {
  it('a VIP that never moves times out at the configured budget per attempt, then undoes the release', async () => {
    const clock = virtualClock();
    const shell = new KeepalivedShell();
    const records = new MemoryRecords();
    const pair = {
      metadata: { name: 'p' },
      spec: {
        vip: { address: VIP },
        nodes: [{ name: 'a' }, { name: 'b' }],
        keepalived: {
          configPath: '/k.conf',
          instance: 'VI_1',
          status: 'status',
          reload: 'reload',
          start: 'start',
          stop: 'stop',
          faultFile: '/fault',
          advertIntervalSeconds: 1,
        },
      },
    } as unknown as HAPair;
    const keepalived = new KeepalivedDriver({
      shell,
      pair,
      records,
      now: clock.now,
      sleep: clock.sleep,
      // seen from outside, a answers on the VIP whatever happens
      lookOutside: async () => ({ kind: 'node', node: 'a', ms: 1 }),
    });
    const db = new FakeDb(clock);
    const real = performance.now();
    let vipStarted = 0;
    const promote = db.promote.bind(db);
    db.promote = async (node) => {
      await promote(node);
      vipStarted = clock.t;
    };
    const e = await failureOf(
      runSwitchover({ db, vip: keepalived, nodes: NODES, clock }, 'b', {
        upgradeId: 'u',
        vipTimeoutMs: 30_000,
        vipRetries: 1,
      }),
    );
    const virtualMs = clock.t - vipStarted;
    expect(e.message).toMatch(/the VIP did not move to it/);
    expect(e.message).toMatch(/gave up after 2 attempt\(s\)/);
    expect(e.message).toMatch(/did not answer from b within 30000 ms/);
    // two attempts of 30 s each on virtual time, a look's poll period over at most
    expect(virtualMs).toBeGreaterThanOrEqual(60_000);
    expect(virtualMs).toBeLessThan(60_000 + 2 * 50);
    expect(performance.now() - real).toBeLessThan(5000);
    // each attempt released a (fault on) and the failure undid it (fault off)
    expect(shell.writes).toEqual(['fault a=1', 'fault a=0', 'fault a=1', 'fault a=0']);
    expect(shell.fault.get('a')).toBe('0');
    // both attempts recorded as TIMEOUT with their virtual duration
    expect(records.vipSwitches.map((r) => [r.attempt, r.result])).toEqual([
      [1, 'TIMEOUT'],
      [2, 'TIMEOUT'],
    ]);
    for (const r of records.vipSwitches) expect(r.durationMs).toBeGreaterThanOrEqual(30_000);
    // and dated on the injected clock: the two attempts span a virtual minute
    const [first, second] = records.vipSwitches;
    expect(
      (second!.finishedAt?.getTime() ?? 0) - first!.startedAt.getTime(),
    ).toBeGreaterThanOrEqual(60_000);
    expect(db.calls).not.toContain('start a');
  });
});
