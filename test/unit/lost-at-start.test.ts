// The reconciler's give-up path when it cannot connect to a node (the
// runtime cannot be built: an operator restarted mid-upgrade, SSH gone)
// used to end UNREACHABLE whatever the phase, leaving a mixed pair (b on
// 2.0.0 holding the VIP, a on 1.0.0) with nobody watching it. It now takes
// the lost-node rule (core/lost-node.ts lostAtStartAction): end only when
// both nodes are left serving the old version, else halt NodeUnreachable;
// the time limits still run. The upgrades here are stopped part way on the
// simulated pair, so the journal (last sights, clocks) is the real one.
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Action } from '../../src/core/actions.js';
import { lostAtStartAction } from '../../src/core/lost-node.js';
import { FROM, runSim, type SimResult, TO } from '../support/run-sim.js';

const settings = BUILT_IN_DEFAULTS;
const base = { autoRollback: true, brokenTarget: false, faults: [] };

/** The clean upgrade stopped at the first round in `phase` that satisfies `also`. */
function stoppedIn(phase: string, also: (r: { b: string }) => boolean = () => true): SimResult {
  const r = runSim({
    ...base,
    stopWhen: (ctx, _j, sim) => ctx.phase === phase && also({ b: sim.nodes[1].installedVersion }),
  });
  if (!r.stopped) throw new Error(`the clean run never stood in ${phase}`);
  return r;
}

/** What the reconciler does when node-b cannot be connected to `afterMs` after the stop. */
function decide(r: SimResult, afterMs = 90_000, fromVersion: string | null = FROM): Action {
  return lostAtStartAction({
    ctx: r.ctx,
    fromVersion,
    settings,
    journal: r.journal,
    nowMs: r.nowMs + afterMs,
    node: 'node-b',
    error: 'cannot prepare the upgrade: node-b: cannot connect over SSH: connect ETIMEDOUT',
  });
}

describe('a node that cannot be connected to, past the start retries', () => {
  test.each([
    ['VIP_SWITCH', 'b upgraded, the VIP still on a'],
    ['UPGRADE_MASTER', 'b upgraded and holding the VIP'],
  ])(
    'in %s (%s): halts NodeUnreachable naming b and what it last ran; never ends UNREACHABLE',
    (phase) => {
      const r = stoppedIn(phase);
      expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual([FROM, TO]); // a mixed pair
      const a = decide(r);
      expect(a).toMatchObject({ kind: 'halt', code: 'NodeUnreachable' });
      if (a.kind !== 'halt') throw new Error('not a halt');
      expect(a.cause).toContain(`node-b is unreachable`);
      expect(a.cause).toContain(`last seen on ${TO}`);
      expect(a.cause).toContain(`in ${phase}`);
      expect(a.cause).toContain(`would not leave both nodes serving ${FROM}`);
      expect(a.todo).toMatch(/restore SSH and the network to node-b/);
    },
  );

  test('the cause does not change from try to try (one Event per cause)', () => {
    const r = stoppedIn('UPGRADE_MASTER');
    const first = decide(r, 90_000);
    const later = lostAtStartAction({
      ctx: r.ctx,
      fromVersion: FROM,
      settings,
      journal: r.journal,
      nowMs: r.nowMs + 150_000,
      node: 'node-b',
      error: 'cannot prepare the upgrade: node-b: read ECONNRESET',
    });
    expect(first.kind === 'halt' && later.kind === 'halt' && first.cause === later.cause).toBe(
      true,
    );
  });

  test('in UPGRADE_BACKUP with b installed but not started: halts too (b is not serving the old version)', () => {
    const r = stoppedIn('UPGRADE_BACKUP', ({ b }) => b === TO);
    expect(decide(r)).toMatchObject({ kind: 'halt', code: 'NodeUnreachable' });
  });

  test('before any node changed (BACKUP), or with both nodes last seen on the old version: UNREACHABLE as before', () => {
    expect(decide(stoppedIn('BACKUP'))).toMatchObject({
      kind: 'event',
      event: { type: 'NODE_UNREACHABLE', node: 'node-b' },
    });
    // UPGRADE_BACKUP before b was touched: both last seen serving 1.0.0
    const untouched = stoppedIn('UPGRADE_BACKUP');
    expect(untouched.sim.nodes.map((n) => n.installedVersion)).toEqual([FROM, FROM]);
    expect(decide(untouched)).toMatchObject({
      kind: 'event',
      event: { type: 'NODE_UNREACHABLE' },
    });
  });

  test('the version the pair ran before was never read: halts rather than guess', () => {
    const untouched = stoppedIn('UPGRADE_BACKUP');
    expect(decide(untouched, 90_000, null)).toMatchObject({ kind: 'halt' });
  });

  test('the time limits still run: past upgradeTimeout TIMED_OUT, naming the mixed pair', () => {
    const r = stoppedIn('UPGRADE_MASTER');
    const started = r.journal.upgradeStartedAtMs!;
    const a = decide(r, started + settings.upgradeTimeout + 1 - r.nowMs);
    expect(a).toMatchObject({ kind: 'event', event: { type: 'TIMED_OUT' } });
    if (a.kind !== 'event' || a.event.type !== 'TIMED_OUT') throw new Error('not TIMED_OUT');
    expect(a.event.limit).toMatch(/node-b is unreachable.*by hand/);
  });
});
