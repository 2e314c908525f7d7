// The keepalived driver's pure planning, and ensurePriority against a fake
// node shell (write if changed, reload at most once, never on a second run).
import { interfacesHold, KeepalivedDriver } from '../../src/drivers/keepalived/driver.js';
import {
  type KeepalivedNodeState,
  planVipMove,
  preferredPriorities,
  type VipObservation,
} from '../../src/drivers/keepalived/vip-plan.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import type { HAPair } from '../../src/inventory/hapair.js';

const node = (name: string, over: Partial<KeepalivedNodeState> = {}): KeepalivedNodeState => ({
  node: name,
  running: true,
  holdsVip: false,
  priority: 100,
  faulted: false,
  ...over,
});
const obs = (
  a: KeepalivedNodeState,
  b: KeepalivedNodeState,
  outside: string | null,
): VipObservation => ({
  nodes: [a, b],
  outsideHolder: outside,
});
const kinds = (steps: { kind: string; node: string }[]) => steps.map((s) => `${s.kind} ${s.node}`);

describe('planVipMove', () => {
  const aHolds = obs(node('a', { holdsVip: true, priority: 150 }), node('b'), 'a');

  it('fault handoff: release on the holder, wait, swap priorities, clear the fault', () => {
    const steps = planVipMove(aHolds, 'b', 'fault');
    expect(kinds(steps)).toEqual([
      'set-fault a',
      'wait-vip b',
      'set-priority a',
      'set-priority b',
      'clear-fault a',
    ]);
    expect(steps.filter((s) => s.kind === 'set-priority')).toEqual([
      expect.objectContaining({ node: 'a', priority: 100 }),
      expect.objectContaining({ node: 'b', priority: 150 }),
    ]);
  });

  it('stop handoff starts the old holder again after it got the lower priority', () => {
    expect(kinds(planVipMove(aHolds, 'b', 'stop'))).toEqual([
      'stop-keepalived a',
      'wait-vip b',
      'set-priority a',
      'set-priority b',
      'start-keepalived a',
    ]);
  });

  it('priority handoff lowers the holder, then raises the target', () => {
    expect(kinds(planVipMove(aHolds, 'b', 'priority'))).toEqual([
      'set-priority a',
      'set-priority b',
      'wait-vip b',
    ]);
  });

  it('does nothing when the target holds it, is preferred and nothing is faulted or stopped', () => {
    expect(
      planVipMove(obs(node('a'), node('b', { holdsVip: true, priority: 150 }), 'b'), 'b', 'fault'),
    ).toEqual([]);
  });

  it('finishes an interrupted handoff: only what is left', () => {
    // the VIP already moved, the old holder is still in FAULT with the higher priority
    const mid = obs(
      node('a', { priority: 150, faulted: true }),
      node('b', { holdsVip: true }),
      'b',
    );
    expect(kinds(planVipMove(mid, 'b', 'fault'))).toEqual([
      'set-priority a',
      'set-priority b',
      'clear-fault a',
    ]);
    // a fault left on the target is cleared before anything else
    const tf = obs(node('a', { holdsVip: true, priority: 150 }), node('b', { faulted: true }), 'a');
    expect(kinds(planVipMove(tf, 'b', 'fault'))[0]).toBe('clear-fault b');
  });

  it('refuses a stopped target, a split brain and a fault handoff without a fault file', () => {
    expect(() =>
      planVipMove(
        obs(node('a', { holdsVip: true }), node('b', { running: false }), 'a'),
        'b',
        'fault',
      ),
    ).toThrow(/keepalived is not running on b/);
    expect(() =>
      planVipMove(
        obs(node('a', { holdsVip: true }), node('b', { holdsVip: true }), 'a'),
        'b',
        'fault',
      ),
    ).toThrow(/split brain/);
    expect(() =>
      planVipMove(
        obs(node('a', { holdsVip: true, faulted: null }), node('b', { faulted: null }), 'a'),
        'b',
        'fault',
      ),
    ).toThrow(/faultFile/);
  });

  it('gives the target the higher priority, breaking ties without relying on addresses', () => {
    expect(preferredPriorities(150, 100)).toEqual({ target: 150, other: 100 });
    expect(preferredPriorities(100, 150)).toEqual({ target: 150, other: 100 });
    expect(preferredPriorities(100, 100)).toEqual({ target: 100, other: 99 });
    expect(preferredPriorities(1, 1)).toEqual({ target: 2, other: 1 });
  });
});

describe('interfacesHold', () => {
  const out =
    '2: eth0    inet 198.18.0.11/24 scope global eth0\\       valid_lft forever\n' +
    '2: eth0    inet 198.18.0.100/24 scope global secondary eth0\\       valid_lft forever\n';
  it('finds the VIP as an address with a prefix, not as a substring', () => {
    expect(interfacesHold(out, '198.18.0.100')).toBe(true);
    expect(interfacesHold(out, '198.18.0.10')).toBe(false);
    expect(interfacesHold(out, '198.18.0.1')).toBe(false);
  });
});

/** A node shell over in-memory files: cat, the atomic write, and the declared commands. */
class FakeShell implements NodeShell {
  readonly files = new Map<string, string>();
  readonly log: string[] = [];
  running = true;
  async exec(node: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const ok = (stdout = '', exitCode = 0): ExecResult => ({
      exitCode,
      signal: undefined,
      stdout,
      stderr: '',
      durationMs: 1,
    });
    if (argv[0] === 'cat') return ok(this.files.get(`${node}:${argv[1]}`) ?? '');
    if (argv[0] === 'sh' && argv[2]?.includes('cat > "$t"')) {
      this.log.push(`write ${node}`);
      this.files.set(`${node}:${argv[4]}`, String(opts?.stdin));
      return ok();
    }
    if (argv[0] === 'sh' && argv[2] === 'status') return ok('', this.running ? 0 : 3);
    if (argv[0] === 'sh' && argv[2] === 'reload') {
      this.log.push(`reload ${node}`);
      return ok();
    }
    throw new Error(`unexpected command ${argv.join(' ')}`);
  }
}

describe('ensurePriority', () => {
  const pair = {
    metadata: { name: 'p' },
    spec: {
      vip: { address: '198.18.0.100' },
      nodes: [{ name: 'a' }, { name: 'b' }],
      keepalived: {
        configPath: '/k.conf',
        instance: 'VI_1',
        status: 'status',
        reload: 'reload',
        start: 's',
        stop: 't',
      },
    },
  } as unknown as HAPair;
  const conf = '# mine\nvrrp_instance VI_1 {\n  state BACKUP\n  priority 100 # keep\n}\n';

  it('writes and reloads once when different, and nothing when equal', async () => {
    const shell = new FakeShell();
    shell.files.set('b:/k.conf', conf);
    const d = new KeepalivedDriver({ shell, pair });
    expect(await d.ensurePriority('b', 90)).toEqual({
      outcome: 'changed',
      node: 'b',
      before: 100,
      after: 90,
    });
    expect(shell.files.get('b:/k.conf')).toBe(conf.replace('priority 100', 'priority 90'));
    expect(shell.log).toEqual(['write b', 'reload b']);
    expect((await d.ensurePriority('b', 90)).outcome).toBe('unchanged');
    expect(shell.log).toEqual(['write b', 'reload b']);
    expect((await d.ensurePriority('b', 80, { dryRun: true })).outcome).toBe('changed');
    expect(shell.log).toHaveLength(2);
  });

  it('does not reload a stopped keepalived (it reads the file when it starts)', async () => {
    const shell = new FakeShell();
    shell.files.set('a:/k.conf', conf);
    shell.running = false;
    await new KeepalivedDriver({ shell, pair }).ensurePriority('a', 120);
    expect(shell.log).toEqual(['write a']);
  });

  it('names an unknown node and a missing instance', async () => {
    const shell = new FakeShell();
    shell.files.set('a:/k.conf', 'vrrp_instance OTHER {\n}\n');
    const d = new KeepalivedDriver({ shell, pair });
    await expect(d.ensurePriority('c', 100)).rejects.toThrow(/no node "c"/);
    await expect(d.ensurePriority('a', 100)).rejects.toThrow(/no vrrp_instance VI_1/);
  });
});
