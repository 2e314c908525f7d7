// The planner against a simulated pair: whole upgrades with random faults
// and delays (model-based, fast-check), and the classic scenarios by name.
import fc from 'fast-check';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { emptyJournal } from '../../src/core/journal.js';
import { initialContext } from '../../src/core/machine.js';
import { HAPPY_PATH, isTerminal } from '../../src/core/phases.js';
import { plan } from '../../src/core/planner.js';
import { FROM, runSim, TO } from '../support/run-sim.js';
import { type Fault, SimPair } from '../support/sim-pair.js';

const faultArb: fc.Arbitrary<Fault | null> = fc.oneof(
  { weight: 30, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: fc.constant({ kind: 'transient' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'terminal' } as const) },
  { weight: 2, arbitrary: fc.constant({ kind: 'health-flap' } as const) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('unreachable' as const),
      node: fc.constantFrom(0 as const, 1 as const),
      rounds: fc.integer({ min: 1, max: 20 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('lag' as const),
      node: fc.constantFrom(0 as const, 1 as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('stall' as const),
      rounds: fc.integer({ min: 1, max: 400 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      node: fc.constantFrom(0 as const, 1 as const),
    }),
  },
);

/** Usually undefined: most runs see no cancel or rollback request. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}

const scenarioArb = fc.record({
  autoRollback: fc.boolean(),
  brokenTarget: fc.boolean(),
  faults: fc.array(faultArb, { maxLength: 80 }),
  cancelAtRound: rarely(fc.integer({ min: 0, max: 60 })),
  rollbackAtRound: rarely(fc.integer({ min: 0, max: 60 })),
});

describe('planner against a simulated pair with random faults and delays', () => {
  test('clients are always served, the VIP only moves to a node that passed its checks, no illegal event', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = runSim(s);
        expect(r.violations).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });

  test('every run ends in a terminal phase and is tidied up', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = runSim(s);
        expect(r.finished).toBe(true);
        expect(isTerminal(r.ctx.phase)).toBe(true);
        const tidy = r.trace.at(-1)!;
        if (tidy.kind === 'done' && !tidy.reason.includes('tidying up failed')) {
          for (const n of r.sim.nodes.filter((x) => x.unreachableRounds === 0)) {
            expect({ node: n.name, paused: n.rsyncPaused, locked: n.configLocked }).toEqual({
              node: n.name,
              paused: false,
              locked: false,
            });
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  test('a finished rollback leaves both nodes on the old version, running', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = runSim(s);
        if (!r.rolledBack) return;
        for (const n of r.sim.nodes) {
          expect({ node: n.name, version: n.installedVersion, running: n.servicesRunning }).toEqual(
            {
              node: n.name,
              version: FROM,
              running: true,
            },
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  test('COMPLETE means both nodes on the new version, migrations applied, VIP and primary together', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const r = runSim(s);
        if (r.ctx.phase !== 'COMPLETE') return;
        expect(r.sim.nodes.map((n) => [n.installedVersion, n.servicesRunning])).toEqual([
          [TO, true],
          [TO, true],
        ]);
        expect(r.sim.migrationsApplied).toBe(true);
        expect(r.sim.clientsServed()).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});

describe('named scenarios', () => {
  const base = { autoRollback: true, brokenTarget: false, faults: [] as (Fault | null)[] };

  test('no faults: the upgrade completes, the VIP ends on the node upgraded first', () => {
    const r = runSim(base);
    expect(r.violations).toEqual([]);
    expect(r.phases).toEqual(HAPPY_PATH);
    expect(r.sim.node('node-b').holdsVip).toBe(true);
    const steps = r.trace
      .filter((a) => a.kind === 'step')
      .map((a) => (a.kind === 'step' ? `${a.step}${a.node ? `@${a.node}` : ''}` : ''));
    // The order of task list 4.2: migrations, replay, stop, install, start, three checks.
    expect(
      steps.slice(steps.indexOf('RUN_MIGRATIONS'), steps.indexOf('SWITCHOVER@node-b') + 1),
    ).toEqual([
      'RUN_MIGRATIONS',
      'STOP_SERVICES@node-b',
      'INSTALL_PACKAGE@node-b',
      'START_SERVICES@node-b',
      'CHECK_HEALTH@node-b',
      'CHECK_HEALTH@node-b',
      'CHECK_HEALTH@node-b',
      'SWITCHOVER@node-b',
    ]);
  });

  test('a broken package rolls back automatically to the old version on both nodes', () => {
    const r = runSim({ ...base, brokenTarget: true });
    expect(r.violations).toEqual([]);
    expect(r.phases).toEqual(['IDLE', 'PREPARE', 'BACKUP', 'UPGRADE_BACKUP', 'ROLLBACK', 'FAILED']);
    expect(r.rolledBack).toBe(true);
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual([FROM, FROM]);
    expect(r.sim.node('node-a').holdsVip).toBe(true);
  });

  test('a broken package without auto-rollback stops in FAILED with the old master still serving', () => {
    const r = runSim({ ...base, brokenTarget: true, autoRollback: false });
    expect(r.phases.at(-1)).toBe('FAILED');
    expect(r.rolledBack).toBe(false);
    expect(r.sim.clientsServed()).toBe(true);
    expect(r.sim.node('node-a').installedVersion).toBe(FROM);
  });

  test('a rollback requested after the VIP moved brings the clients back to a restored node', () => {
    const clean = runSim(base);
    const switchRound = clean.trace.findIndex(
      (a) => a.kind === 'event' && a.event.type === 'VIP_MOVED',
    );
    const r = runSim({ ...base, rollbackAtRound: switchRound + 3 });
    expect(r.violations).toEqual([]);
    expect(r.phases).toContain('ROLLBACK');
    expect(r.rolledBack).toBe(true);
    expect(r.phases.at(-1)).toBe('FAILED');
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual([FROM, FROM]);
  });

  test('cancel before anything changed ends CANCELLED with nothing to roll back', () => {
    const r = runSim({ ...base, cancelAtRound: 2 });
    expect(r.phases.at(-1)).toBe('CANCELLED');
    expect(r.rolledBack).toBe(false);
    expect(r.sim.nodes.map((n) => [n.installedVersion, n.rsyncPaused, n.configLocked])).toEqual([
      [FROM, false, false],
      [FROM, false, false],
    ]);
  });

  test('a node gone for longer than the grace in BACKUP ends UNREACHABLE with the other still serving', () => {
    // Before any node changed; a node lost after that halts (planner-lost-node.test.ts).
    const clean = runSim(base);
    const at = clean.trace.findIndex((a) => a.kind === 'step' && a.step === 'BACKUP');
    const faults: (Fault | null)[] = new Array(at).fill(null);
    faults.push({ kind: 'unreachable', node: 1, rounds: 100 });
    const r = runSim({ ...base, faults });
    expect(r.phases.at(-1)).toBe('UNREACHABLE');
    expect(r.sim.clientsServed()).toBe(true);
  });

  test('a short blip of a node is ridden out', () => {
    const r = runSim({
      ...base,
      faults: [null, null, null, null, null, { kind: 'unreachable', node: 0, rounds: 3 }],
    });
    expect(r.phases.at(-1)).toBe('COMPLETE');
  });

  test('the grace is a setting: the same blip outlasts a 10 s grace and ends UNREACHABLE', () => {
    const blip: (Fault | null)[] = [null, null, null, null, null];
    blip.push({ kind: 'unreachable', node: 0, rounds: 3 });
    const r = runSim({ ...base, faults: blip, settings: { unreachableGrace: 10_000 } });
    expect(r.phases.at(-1)).toBe('UNREACHABLE');
    const event = r.trace.find((a) => a.kind === 'event' && a.event.type === 'NODE_UNREACHABLE');
    expect(event).toMatchObject({ event: { node: 'node-a' } });
  });

  test('the upgrade timeout ends in TIMEOUT after rolling back', () => {
    // Just before the backup node stops, its standby falls behind and does
    // not catch up for a long time.
    const clean = runSim(base);
    const at = clean.trace.findIndex((a) => a.kind === 'step' && a.step === 'RUN_MIGRATIONS');
    const faults: (Fault | null)[] = new Array(at).fill(null);
    faults[at] = { kind: 'lag', node: 1 };
    faults[at + 1] = { kind: 'stall', rounds: 100 };
    const r = runSim({ ...base, faults, settings: { upgradeTimeout: 120_000 } });
    expect(r.phases).toContain('ROLLBACK');
    expect(r.rolledBack).toBe(true);
    expect(r.phases.at(-1)).toBe('TIMEOUT');
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual([FROM, FROM]);
  });
});

describe('plan() on single observations', () => {
  const ctx = {
    ...initialContext({ backupNode: 'node-b', masterNode: 'node-a' }),
    phase: 'PREPARE' as const,
  };
  const sim = new SimPair(FROM);
  const request = { fromVersion: FROM, targetVersion: TO };

  test('a rollback pauses the sync job again before it restores a configuration (VERIFY had resumed it)', () => {
    const observed = sim.observe();
    // node-b changed to the target, stopped, off the VIP: next is its restore.
    const changedB = {
      ...observed.nodes[1],
      installedVersion: TO,
      servicesRunning: false,
    };
    const rollbackPlan = (rsyncPaused: boolean) =>
      plan({
        ctx: { ...ctx, phase: 'ROLLBACK', backupVerified: true },
        request,
        settings: BUILT_IN_DEFAULTS,
        observed: {
          ...observed,
          nodes: [
            { ...observed.nodes[0], rsyncPaused },
            { ...changedB, rsyncPaused },
          ] as const,
        },
        journal: emptyJournal(0),
        nowMs: 1000,
      });
    expect(rollbackPlan(false)).toMatchObject({ kind: 'step', step: 'PAUSE_RSYNC' });
    expect(rollbackPlan(true)).toMatchObject({ kind: 'step', step: 'RESTORE', node: 'node-b' });
  });

  test('preflight waits out a slow round before failing', () => {
    const observed = sim.observe();
    const slow = {
      ...observed,
      nodes: [{ ...observed.nodes[0], healthy: false }, observed.nodes[1]] as const,
    };
    const journal = emptyJournal(0);
    const early = plan({
      ctx,
      request,
      settings: BUILT_IN_DEFAULTS,
      observed: slow,
      journal,
      nowMs: 1000,
    });
    expect(early).toMatchObject({ kind: 'wait' });
    const late = plan({
      ctx,
      request,
      settings: BUILT_IN_DEFAULTS,
      observed: slow,
      journal,
      nowMs: 31_000,
    });
    expect(late).toMatchObject({ kind: 'event', event: { type: 'STEP_FAILED' } });
  });

  test('a step that keeps waiting fails after a few attempts; a replaying standby does not', () => {
    const observed = sim.observe();
    const stuck = (stepName: 'START_SERVICES' | 'WAIT_REPLAY', attempts: number) =>
      plan({
        ctx: { ...ctx, phase: 'UPGRADE_BACKUP', backupVerified: true },
        request,
        settings: BUILT_IN_DEFAULTS,
        observed,
        journal: {
          ...emptyJournal(0),
          lastError: {
            step: stepName,
            node: 'node-b',
            kind: 'waiting',
            message: 'not yet',
            attempts,
          },
        },
        nowMs: 1000,
      });
    expect(stuck('START_SERVICES', 2).kind).not.toBe('event');
    expect(stuck('START_SERVICES', 3)).toMatchObject({
      kind: 'event',
      event: { type: 'STEP_FAILED' },
    });
    expect(stuck('WAIT_REPLAY', 50).kind).not.toBe('event');
  });

  test('the error policy decides a failed step: a conflict is re-observed and retried up to the bound, terminal ends at once', () => {
    const observed = sim.observe();
    const failed = (kind: 'conflict' | 'transient' | 'terminal', attempts: number) =>
      plan({
        ctx: { ...ctx, phase: 'UPGRADE_BACKUP', backupVerified: true },
        request,
        settings: BUILT_IN_DEFAULTS,
        observed,
        journal: {
          ...emptyJournal(0),
          lastError: { step: 'INSTALL_PACKAGE', node: 'node-b', kind, message: 'no', attempts },
        },
        nowMs: 1000,
      });
    const gaveUp = { kind: 'event', event: { type: 'STEP_FAILED' } };
    expect(failed('conflict', 1).kind).not.toBe('event');
    expect(failed('conflict', 4).kind).not.toBe('event');
    expect(failed('conflict', 5)).toMatchObject(gaveUp);
    expect(failed('transient', 4).kind).not.toBe('event');
    expect(failed('transient', 5)).toMatchObject(gaveUp);
    expect(failed('terminal', 1)).toMatchObject(gaveUp);
  });
});
