// A node lost past the unreachable grace (issue 12, lab fault matrix:
// kill-sshd and link-cut on b in VIP_SWITCH and UPGRADE_MASTER ended
// UNREACHABLE with a on 1.0.0 and b on 2.0.0). UNREACHABLE ends only when
// both nodes are left serving the old version; otherwise the planner halts
// (NodeUnreachable) until the node answers, then finishes by itself.
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Action } from '../../src/core/actions.js';
import { emptyJournal, type JournalFacts, recordSight } from '../../src/core/journal.js';
import { initialContext, type UpgradeContext } from '../../src/core/machine.js';
import type { NodeObservation, PairObservation } from '../../src/core/observed.js';
import { plan } from '../../src/core/planner.js';
import { FROM, runSim, TO } from '../support/run-sim.js';
import type { Fault } from '../support/sim-pair.js';

const base = { autoRollback: true, brokenTarget: false, faults: [] as (Fault | null)[] };

/** The round at which the clean run first enters a phase (its first action there). */
function roundEntering(phase: string): number {
  const clean = runSim(base);
  let entered = -1;
  clean.trace.forEach((a, i) => {
    if (entered < 0 && a.kind === 'event' && phaseAfter(a) === phase) entered = i + 1;
  });
  if (entered < 0) throw new Error(`the clean run never entered ${phase}`);
  return entered;
}

const ENTERS: Record<string, string> = {
  PREPARED: 'BACKUP',
  BACKUP_VERIFIED: 'UPGRADE_BACKUP',
  BACKUP_NODE_HEALTHY: 'VIP_SWITCH',
  VIP_MOVED: 'UPGRADE_MASTER',
  MASTER_NODE_HEALTHY: 'VERIFY',
};
const phaseAfter = (a: Action) => (a.kind === 'event' ? ENTERS[a.event.type] : undefined);

/** b (node 1) lost for `rounds` rounds from the round the upgrade enters `phase`. */
function lostIn(phase: string, rounds: number): (Fault | null)[] {
  const at = roundEntering(phase);
  const faults: (Fault | null)[] = new Array(at).fill(null);
  faults.push({ kind: 'unreachable', node: 1, rounds });
  return faults;
}

const halts = (trace: readonly Action[]) =>
  trace.filter((a): a is Extract<Action, { kind: 'halt' }> => a.kind === 'halt');

describe('a node lost past the grace, with the pair on two versions', () => {
  test.each(['VIP_SWITCH', 'UPGRADE_MASTER'])(
    'lost in %s and back after 3 minutes: halts (NodeUnreachable), never UNREACHABLE, then ends on one version',
    (phase) => {
      const r = runSim({ ...base, faults: lostIn(phase, 36) }); // 36 rounds x 5 s
      expect(r.phases).not.toContain('UNREACHABLE');
      const h = halts(r.trace);
      expect(h.length).toBeGreaterThan(0);
      expect(h[0]!.code).toBe('NodeUnreachable');
      expect(h[0]!.cause).toMatch(/node-b is unreachable/);
      expect(r.violations).toEqual([]);
      expect(r.finished).toBe(true);
      const versions = r.sim.nodes.map((n) => n.installedVersion);
      expect(versions[0]).toBe(versions[1]);
      expect(versions[0]).toBe(r.ctx.phase === 'COMPLETE' ? TO : FROM);
    },
  );

  test('no step runs on either node while halted for a lost node', () => {
    const r = runSim({ ...base, faults: lostIn('VIP_SWITCH', 36) });
    const first = r.trace.findIndex((a) => a.kind === 'halt');
    const last = r.trace.findLastIndex((a) => a.kind === 'halt');
    expect(first).toBeGreaterThanOrEqual(0);
    const between = r.trace.slice(first, last + 1).filter((a) => a.kind !== 'halt');
    expect(between).toEqual([]);
  });

  test('a node that never comes back: the time limits end it in TIMEOUT, naming the mixed pair', () => {
    const upgradeTimeout = 10 * 60_000;
    const r = runSim({
      ...base,
      faults: lostIn('VIP_SWITCH', 100_000),
      settings: { upgradeTimeout },
    });
    expect(r.phases).not.toContain('UNREACHABLE');
    expect(r.phases.at(-1)).toBe('TIMEOUT');
    expect(r.phases).toContain('ROLLBACK');
    const timedOut = r.trace.filter((a) => a.kind === 'event' && a.event.type === 'TIMED_OUT');
    expect(timedOut.at(-1)).toMatchObject({
      event: { limit: expect.stringMatching(/node-b is unreachable.*by hand/) },
    });
    // bounded: the halt rounds fit twice the upgrade timeout (5 s a round)
    expect(r.halts.length * 5000).toBeLessThanOrEqual(2 * upgradeTimeout);
    expect(r.sim.clientsServed()).toBe(true);
  });

  test('lost in BACKUP (nothing changed yet): UNREACHABLE, as before', () => {
    const r = runSim({ ...base, faults: lostIn('BACKUP', 100_000) });
    expect(r.phases.at(-1)).toBe('UNREACHABLE');
    expect(halts(r.trace)).toEqual([]);
  });
});

describe('the lost-node decision, planned directly', () => {
  const settings = BUILT_IN_DEFAULTS;
  const now = 10_000_000;
  const a: NodeObservation = {
    name: 'a',
    reachable: true,
    appVersion: FROM,
    installedVersion: FROM,
    servicesRunning: true,
    healthy: true,
    dbRole: 'primary',
    holdsVip: true,
    replayLagBytes: null,
    rsyncPaused: true,
    configLocked: true,
  };
  const b: NodeObservation = { ...a, name: 'b', dbRole: 'standby', holdsVip: false };
  const bLost: NodeObservation = {
    ...b,
    reachable: false,
    appVersion: null,
    installedVersion: null,
    servicesRunning: false,
    healthy: false,
    dbRole: 'unknown',
  };
  const pair = (x: NodeObservation, y: NodeObservation): PairObservation => ({
    nodes: [x, y],
    configConsistent: null,
    migrationsApplied: true,
  });
  const ctxIn = (phase: UpgradeContext['phase']): UpgradeContext => ({
    ...initialContext({
      backupNode: 'b',
      masterNode: 'a',
      autoRollback: true,
      requiredHealthPasses: 3,
    }),
    phase,
    backupVerified: true,
  });
  /** The journal after b was seen with `bSeen` and then lost past the grace. */
  function journal(bSeen: NodeObservation, extra: Partial<JournalFacts> = {}): JournalFacts {
    const lostAt = now - settings.unreachableGrace - 1000;
    let j: JournalFacts = { ...emptyJournal(now - 100_000), upgradeStartedAtMs: now - 100_000 };
    j = recordSight(j, pair(a, bSeen), lostAt - 1000);
    j = recordSight(j, pair(a, bLost), lostAt);
    return { ...j, ...extra };
  }
  const planIn = (phase: UpgradeContext['phase'], j: JournalFacts) =>
    plan({
      ctx: ctxIn(phase),
      request: { fromVersion: FROM, targetVersion: TO },
      settings,
      observed: pair(a, bLost),
      journal: j,
      nowMs: now,
    });

  test('b last seen on the new version: a halt naming b, what was kept and what to do', () => {
    const action = planIn('VIP_SWITCH', journal({ ...b, installedVersion: TO, appVersion: TO }));
    expect(action).toMatchObject({ kind: 'halt', code: 'NodeUnreachable' });
    if (action.kind !== 'halt') throw new Error('not a halt');
    expect(action.cause).toContain(`b is unreachable`);
    expect(action.cause).toContain(`last seen on ${TO}`);
    expect(action.did).toContain(`the VIP and the primary stay on a, serving ${FROM}`);
    expect(action.todo).toMatch(/restore SSH and the network to b.*or cancel/);
  });

  test('the cause is the same from round to round (one Event per cause)', () => {
    const j = journal({ ...b, installedVersion: TO });
    const first = planIn('VIP_SWITCH', j);
    const later = plan({
      ctx: ctxIn('VIP_SWITCH'),
      request: { fromVersion: FROM, targetVersion: TO },
      settings,
      observed: pair(a, bLost),
      journal: j,
      nowMs: now + 30_000,
    });
    expect(later).toMatchObject({ kind: 'halt', cause: (first as { cause: string }).cause });
  });

  test('b last seen on the old version but a step on it cut off: unknown, so halt', () => {
    const j = journal(b);
    const cut: JournalFacts = {
      ...j,
      lastSeen: { ...j.lastSeen, b: { ...j.lastSeen!.b!, changedSince: true } },
    };
    expect(planIn('UPGRADE_BACKUP', cut)).toMatchObject({ kind: 'halt' });
  });

  test('b last seen stopped on the old version: halt (ending would leave b down)', () => {
    expect(planIn('UPGRADE_BACKUP', journal({ ...b, servicesRunning: false }))).toMatchObject({
      kind: 'halt',
    });
  });

  test('b last seen serving the old version, unchanged: UNREACHABLE', () => {
    expect(planIn('UPGRADE_BACKUP', journal(b))).toMatchObject({
      kind: 'event',
      event: { type: 'NODE_UNREACHABLE', node: 'b' },
    });
  });

  test('a round that read b only in part is not a sight of b', () => {
    const j = recordSight(emptyJournal(now), pair(a, b), now);
    const partial = recordSight(
      j,
      { ...pair(a, { ...b, servicesRunning: false }), problems: ['b: services: timed out'] },
      now + 1000,
    );
    expect(partial.lastSeen?.b).toEqual(j.lastSeen?.b);
    expect(partial.lastSeen?.a?.atMs).toBe(now + 1000);
  });

  test("a person's cancel is still fed to the machine while halted", () => {
    const j = journal({ ...b, installedVersion: TO }, { cancelRequested: 'give up' });
    expect(planIn('VIP_SWITCH', j)).toMatchObject({
      kind: 'event',
      event: { type: 'CANCEL_REQUESTED' },
    });
  });
});
