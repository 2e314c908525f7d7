// Bring back or name (issue 12.3): every decision of core/repair.ts through
// the planner, on hand-made observations, then whole upgrades on the
// simulated pair with a database or keepalived dying mid-way.
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Action } from '../../src/core/actions.js';
import { emptyJournal, type JournalFacts, recordStep } from '../../src/core/journal.js';
import { initialContext, type UpgradeContext } from '../../src/core/machine.js';
import type { NodeObservation, PairObservation } from '../../src/core/observed.js';
import type { Phase } from '../../src/core/phases.js';
import { plan } from '../../src/core/planner.js';
import { MAX_BRING_BACKS } from '../../src/core/repair.js';
import { runSim } from '../support/run-sim.js';
import type { Fault } from '../support/sim-pair.js';

const NOW = 5_000_000;

/** A pair mid-upgrade, everything up: a primary with the VIP, b its standby. */
function nodeObs(name: string, over: Partial<NodeObservation> = {}): NodeObservation {
  const primary = name === 'a';
  return {
    name,
    reachable: true,
    appVersion: '2.0.0',
    installedVersion: '2.0.0',
    servicesRunning: true,
    healthy: true,
    dbRole: primary ? 'primary' : 'standby',
    keepalivedRunning: true,
    holdsVip: primary,
    replayLagBytes: primary ? null : 0,
    rsyncPaused: false,
    configLocked: false,
    ...over,
  };
}

function pair(a: Partial<NodeObservation> = {}, b: Partial<NodeObservation> = {}): PairObservation {
  return {
    nodes: [nodeObs('a', a), nodeObs('b', b)],
    configConsistent: true,
    migrationsApplied: true,
  };
}

function ctxIn(phase: Phase): UpgradeContext {
  return {
    ...initialContext({ masterNode: 'a', backupNode: 'b' }),
    phase,
    backupVerified: true,
  };
}

function planIn(phase: Phase, observed: PairObservation, journal?: JournalFacts): Action {
  return plan({
    ctx: ctxIn(phase),
    request: { fromVersion: '1.0.0', targetVersion: '2.0.0' },
    settings: BUILT_IN_DEFAULTS,
    observed,
    journal: journal ?? {
      ...emptyJournal(NOW),
      upgradeStartedAtMs: NOW - 1000,
      tempFilesRemoved: true,
    },
    nowMs: NOW,
  });
}

const started = (): JournalFacts => ({
  ...emptyJournal(NOW),
  upgradeStartedAtMs: NOW - 1000,
  tempFilesRemoved: true,
  backupsVerified: ['a', 'b'],
});

/** The journal after `n` attempts of a step on a node that failed. */
function tried(
  step: 'START_DATABASE' | 'START_KEEPALIVED' | 'BRING_BACK_SERVICES',
  node: string,
  n: number,
) {
  let j = started();
  for (let i = 0; i < n; i++)
    j = recordStep(j, step, node, {
      ok: false,
      kind: 'terminal',
      message: `attempt ${i + 1} failed`,
    });
  return j;
}

describe('the standby database that stopped', () => {
  it.each(['BACKUP', 'UPGRADE_BACKUP', 'UPGRADE_MASTER', 'VERIFY'] as const)(
    'in %s starts again as a standby when the other node is the running primary',
    (phase) => {
      const a = planIn(
        phase,
        pair({}, { dbRole: 'down', dbStandbySignal: true, healthy: false }),
        started(),
      );
      expect(a).toMatchObject({ kind: 'step', step: 'START_DATABASE', node: 'b' });
      expect(a.reason).toMatch(/standby database on b is down; a is the primary/);
    },
  );

  it(`is tried ${MAX_BRING_BACKS} times, then the upgrade halts naming it`, () => {
    const obs = pair({}, { dbRole: 'down', dbStandbySignal: true, healthy: false });
    expect(planIn('VERIFY', obs, tried('START_DATABASE', 'b', 1))).toMatchObject({
      kind: 'step',
      step: 'START_DATABASE',
    });
    const h = planIn('VERIFY', obs, tried('START_DATABASE', 'b', MAX_BRING_BACKS));
    expect(h.kind).toBe('halt');
    if (h.kind !== 'halt') return;
    expect(h.cause).toMatch(/the database on b: still down after 2 attempts/);
    expect(h.did).toMatch(/attempt 2 failed/);
    expect(h.todo).toMatch(/start it by hand/);
  });

  it('a terminal failure of the start is not a failed upgrade step (the bound halts instead)', () => {
    const obs = pair({}, { dbRole: 'down', dbStandbySignal: true, healthy: false });
    // one failed attempt, terminal: the planner tries again rather than rolling back
    const a = planIn('UPGRADE_MASTER', obs, tried('START_DATABASE', 'b', 1));
    expect(a).toMatchObject({ kind: 'step', step: 'START_DATABASE', node: 'b' });
  });

  it('the count survives a success in between: a database that keeps dying halts', () => {
    let j = started();
    for (let i = 0; i < MAX_BRING_BACKS; i++)
      j = recordStep(j, 'START_DATABASE', 'b', { ok: true });
    expect(j.bringBacks).toEqual({ 'START_DATABASE@b': MAX_BRING_BACKS });
    const obs = pair({}, { dbRole: 'down', dbStandbySignal: true });
    expect(planIn('VERIFY', obs, j).kind).toBe('halt');
  });
});

describe('the primary database that stopped is not fixed by guessing', () => {
  it.each(['BACKUP', 'UPGRADE_BACKUP', 'UPGRADE_MASTER', 'VERIFY'] as const)(
    'in %s halts at once, naming the node and what a person must do',
    (phase) => {
      const a = planIn(
        phase,
        pair({ dbRole: 'down', dbStandbySignal: false, healthy: false }),
        started(),
      );
      expect(a.kind).toBe('halt');
      if (a.kind !== 'halt') return;
      expect(a.cause).toMatch(/database on a is down and was not a standby/);
      expect(a.did).toMatch(/does not start or fail over a primary by guessing/);
      expect(a.todo).toMatch(/PostgreSQL on a/);
    },
  );

  it('a standby with no running primary to follow halts too', () => {
    const a = planIn(
      'VERIFY',
      pair({ dbRole: 'unknown' }, { dbRole: 'down', dbStandbySignal: true }),
      started(),
    );
    expect(a.kind).toBe('halt');
    expect(a.kind === 'halt' && a.cause).toMatch(/a is not a running primary it could follow/);
  });

  it('not read (no standby.signal known) is not a standby to start', () => {
    const a = planIn('VERIFY', pair({}, { dbRole: 'down' }), started());
    expect(a.kind).toBe('halt');
  });
});

describe('keepalived that died', () => {
  it.each([
    ['BACKUP', 'a'],
    ['UPGRADE_BACKUP', 'b'],
    ['UPGRADE_MASTER', 'a'],
    ['VERIFY', 'b'],
  ] as const)('in %s is started again on %s', (phase, node) => {
    const a = planIn(
      phase,
      pair(
        node === 'a' ? { keepalivedRunning: false } : {},
        node === 'b' ? { keepalivedRunning: false } : {},
      ),
      started(),
    );
    expect(a).toMatchObject({ kind: 'step', step: 'START_KEEPALIVED', node });
  });

  it(`halts naming it after ${MAX_BRING_BACKS} attempts`, () => {
    const a = planIn(
      'VERIFY',
      pair({}, { keepalivedRunning: false }),
      tried('START_KEEPALIVED', 'b', 2),
    );
    expect(a.kind).toBe('halt');
    expect(a.kind === 'halt' && a.cause).toMatch(/keepalived on b: still down after 2 attempts/);
  });

  it('not read this round (the probe timed out) is left alone', () => {
    const a = planIn('VERIFY', pair({}, { keepalivedRunning: undefined }), started());
    expect(a.kind).toBe('event'); // VERIFIED: nothing to bring back
  });

  it.each(['VIP_SWITCH', 'ROLLBACK'] as const)(
    'is left to the switchover in %s (it stops keepalived itself with the stop method)',
    (phase) => {
      const a = planIn(phase, pair({}, { keepalivedRunning: false }), started());
      expect(a.kind === 'step' && a.step).not.toBe('START_KEEPALIVED');
    },
  );
});

describe('services that died on a node that should serve', () => {
  it.each([
    ['BACKUP', 'b'],
    ['UPGRADE_BACKUP', 'a'],
    ['VIP_SWITCH', 'a'],
    ['UPGRADE_MASTER', 'b'],
    ['VERIFY', 'a'],
  ] as const)('in %s are started again on %s', (phase, node) => {
    const down = { servicesRunning: false, healthy: false, appVersion: null };
    const a = planIn(phase, pair(node === 'a' ? down : {}, node === 'b' ? down : {}), started());
    expect(a).toMatchObject({ kind: 'step', step: 'BRING_BACK_SERVICES', node });
  });

  it.each([
    ['UPGRADE_BACKUP', 'b'],
    ['UPGRADE_MASTER', 'a'],
  ] as const)('in %s the node being upgraded is the planner’s own business (%s)', (phase, node) => {
    const down = { servicesRunning: false, healthy: false, installedVersion: '1.0.0' };
    const a = planIn(phase, pair(node === 'a' ? down : {}, node === 'b' ? down : {}), started());
    expect(a.kind === 'step' && a.step).not.toBe('BRING_BACK_SERVICES');
  });

  it('are not touched in ROLLBACK (it restores and starts nodes itself)', () => {
    const a = planIn(
      'ROLLBACK',
      pair({ servicesRunning: false, installedVersion: '2.0.0' }),
      started(),
    );
    expect(a.kind === 'step' && a.step).not.toBe('BRING_BACK_SERVICES');
  });

  it(`halt naming them after ${MAX_BRING_BACKS} attempts`, () => {
    const a = planIn(
      'VERIFY',
      pair({ servicesRunning: false }),
      tried('BRING_BACK_SERVICES', 'a', 2),
    );
    expect(a.kind).toBe('halt');
    expect(a.kind === 'halt' && a.cause).toMatch(
      /the services on a: still down after 2 attempts to start them/,
    );
  });

  it('a bring-back resets the node’s health passes like any start', () => {
    const j = recordStep({ ...started(), healthPasses: { a: 3 } }, 'BRING_BACK_SERVICES', 'a', {
      ok: true,
    });
    expect(j.healthPasses.a).toBe(0);
  });
});

describe('on the simulated pair: a component dies mid-upgrade', () => {
  // The happy run takes 31 rounds; the switchover is at round 16, so node-b
  // (node 1) is the standby before it and node-a (node 0) after.
  const happy = runSim({ autoRollback: true, brokenTarget: false, faults: [] });
  const switchedAt = happy.trace.findIndex(
    (a) => a.kind === 'event' && a.event.type === 'VIP_MOVED',
  );
  const standbyAt = (round: number) => (round < switchedAt ? 1 : 0) as 0 | 1;
  const at = (round: number, fault: Fault) =>
    Array.from({ length: round + 1 }, (_, i) => (i === round ? fault : null));
  /** Rounds in BACKUP, UPGRADE_BACKUP, UPGRADE_MASTER and VERIFY. */
  const rounds = [6, 9, 12, 19, 22, 26, 29];

  it('the happy run is what the rounds above assume', () => {
    expect(happy.ctx.phase).toBe('COMPLETE');
    expect(switchedAt).toBe(17);
  });

  it.each(rounds)('the standby database stops at round %i: brought back, COMPLETE', (round) => {
    const r = runSim({
      autoRollback: true,
      brokenTarget: false,
      faults: at(round, { kind: 'database-down', node: standbyAt(round) }),
    });
    expect(r.finished).toBe(true);
    expect(r.ctx.phase).toBe('COMPLETE');
    expect(r.sim.nodes.every((n) => !n.dbDown)).toBe(true);
    expect(r.trace.filter((a) => a.kind === 'step' && a.step === 'START_DATABASE')).toHaveLength(1);
  });

  it.each(rounds)('keepalived dies on either node at round %i: brought back, COMPLETE', (round) => {
    for (const node of [0, 1] as const) {
      const r = runSim({
        autoRollback: true,
        brokenTarget: false,
        faults: at(round, { kind: 'keepalived-down', node }),
      });
      expect(r.finished).toBe(true);
      expect(r.sim.nodes.every((n) => n.keepalivedRunning)).toBe(true);
      expect(r.trace.some((a) => a.kind === 'step' && a.step === 'START_KEEPALIVED')).toBe(true);
    }
  });

  it.each(rounds)(
    'the primary database stops at round %i: halts at once, never started by guess',
    (round) => {
      const primary = standbyAt(round) === 1 ? 0 : 1;
      const r = runSim(
        {
          autoRollback: true,
          brokenTarget: false,
          faults: at(round, { kind: 'database-down', node: primary }),
        },
        round + 5,
      );
      expect(r.trace[round]!.kind).toBe('halt');
      expect(r.trace.slice(round).every((a) => a.kind === 'halt')).toBe(true);
      const h = r.trace[round]!;
      expect(h.kind === 'halt' && h.cause).toMatch(
        /database on node-[ab] is down and was not a standby/,
      );
    },
  );

  it('a standby database that will not start: halts after the bound, naming it, no rollback', () => {
    const round = 12;
    const r = runSim(
      {
        autoRollback: true,
        brokenTarget: false,
        faults: at(round, { kind: 'database-down', node: 1, sticky: true }),
      },
      round + 10,
    );
    const starts = r.trace.filter((a) => a.kind === 'step' && a.step === 'START_DATABASE');
    expect(starts).toHaveLength(MAX_BRING_BACKS);
    const firstHalt = r.trace.findIndex((x) => x.kind === 'halt');
    expect(firstHalt).toBe(round + MAX_BRING_BACKS);
    const h = r.trace[firstHalt]!;
    expect(h.kind === 'halt' && h.cause).toBe(
      'the database on node-b: still down after 2 attempts to start it',
    );
    expect(r.phases).not.toContain('ROLLBACK');
  });

  it('keepalived that will not start: halts after the bound', () => {
    const r = runSim(
      {
        autoRollback: true,
        brokenTarget: false,
        faults: at(22, { kind: 'keepalived-down', node: 1, sticky: true }),
      },
      40,
    );
    expect(r.trace.filter((a) => a.kind === 'step' && a.step === 'START_KEEPALIVED')).toHaveLength(
      MAX_BRING_BACKS,
    );
    expect(r.trace.at(-1)!.kind).toBe('halt');
  });
});

describe('VIP_SWITCH judges the switch only on a round that read the whole pair', () => {
  // After SWITCHOVER the target's passes are 0 again: a round whose VIP
  // probe timed out used to fail the upgrade at once (lab rp, heavy load).
  const afterSwitch = { ...started(), healthPasses: { b: 0 } };
  const vipProbeLost = {
    ...pair({ holdsVip: false, dbRole: 'standby' }, { holdsVip: false, dbRole: 'primary' }),
    problems: ['b: vip: timed out after 2000 ms'],
  };

  it('waits, naming what could not be read', () => {
    const a = planIn('VIP_SWITCH', vipProbeLost, afterSwitch);
    expect(a).toMatchObject({ kind: 'wait' });
    expect(a.reason).toMatch(/not fully read \(b: vip: timed out after 2000 ms\)/);
  });

  it('fails as before when the round read everything', () => {
    const a = planIn('VIP_SWITCH', { ...vipProbeLost, problems: [] }, afterSwitch);
    expect(a).toMatchObject({ kind: 'event', event: { type: 'STEP_FAILED' } });
  });
});
