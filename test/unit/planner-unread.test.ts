// A node read only in part (its installed-version, services and VIP probes
// timed out on a loaded machine) must not be acted on from the stand-ins
// the observer leaves: unknown version, stopped, not holding the VIP. The
// lab fault matrix (stop-replication on b in VIP_SWITCH, load average 40)
// saw a rollback with b already restored plan a SWITCHOVER to b: only a
// round in which a (on 1.0.0, holding the VIP) read as "changed" leads
// there. Read the same way, the rollback picks a as the node to restore
// and, its services read as stopped, RESTOREs the node serving the clients.
import type { Action } from '../../src/core/actions.js';
import { runSim } from '../support/run-sim.js';
import type { Fault } from '../support/sim-pair.js';

const NODE_CHANGING = [
  'STOP_SERVICES',
  'INSTALL_PACKAGE',
  'RESTORE',
  'SWITCHOVER',
  'START_SERVICES',
];

/** The round the run first plans in `phase` (the round after the event that entered it). */
function roundEntering(s: Parameters<typeof runSim>[0], phase: string): number {
  const r = runSim(s);
  let phaseIndex = r.phases.indexOf(phase);
  if (phaseIndex < 0) throw new Error(`never entered ${phase}`);
  // phases[k] is entered by the k-th event of the trace
  for (let i = 0; i < r.trace.length; i++) {
    const a = r.trace[i]!;
    if (a.kind === 'event' && --phaseIndex === 0) return i + 1;
  }
  throw new Error(`never entered ${phase}`);
}

/** Steps on `node` planned in rounds [from, from + rounds). */
function stepsOn(trace: readonly Action[], node: string, from: number, rounds: number): string[] {
  return trace
    .slice(from, from + rounds)
    .filter((a): a is Extract<Action, { kind: 'step' }> => a.kind === 'step')
    .filter((a) => a.node === node && NODE_CHANGING.includes(a.step))
    .map((a) => `${a.step} on ${a.node}`);
}

describe('a node read only in part is not acted on', () => {
  const broken = { autoRollback: true, brokenTarget: true, faults: [] as (Fault | null)[] };

  test('the rollback does not restore, stop or switch over on a from stand-ins; it ends with both on the old version', () => {
    const at = roundEntering(broken, 'ROLLBACK');
    const faults: (Fault | null)[] = new Array(at).fill(null);
    faults.push({ kind: 'unread', node: 0, rounds: 4 });
    const r = runSim({ ...broken, faults });
    expect(stepsOn(r.trace, 'node-a', at, 4)).toEqual([]);
    expect(r.trace.slice(at, at + 4).map((a) => a.kind)).toEqual(['wait', 'wait', 'wait', 'wait']);
    expect(r.violations).toEqual([]);
    expect(r.finished).toBe(true);
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual(['1.0.0', '1.0.0']);
  });

  test('the same with b restored already: no SWITCHOVER to b from a read as changed', () => {
    // the round after b, restored, passed its last health check of the rollback
    const clean = runSim(broken);
    const proven =
      clean.trace.findLastIndex(
        (a) => a.kind === 'step' && a.step === 'CHECK_HEALTH' && a.node === 'node-b',
      ) + 1;
    expect(
      clean.trace.slice(0, proven).some((a) => a.kind === 'step' && a.step === 'RESTORE'),
    ).toBe(true);
    // only a's installed version unread: it still reads as holding the VIP
    const faults: (Fault | null)[] = new Array(proven).fill(null);
    faults.push({ kind: 'unread', node: 0, rounds: 4, probes: ['installed version'] });
    const r = runSim({ ...broken, faults });
    const during = r.trace.slice(proven, proven + 4);
    expect(during.filter((a) => a.kind === 'step')).toEqual([]);
    expect(r.finished).toBe(true);
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual(['1.0.0', '1.0.0']);
  });

  test('upgrading b: no INSTALL_PACKAGE on b while its version and services are not read', () => {
    const clean = { autoRollback: true, brokenTarget: false, faults: [] as (Fault | null)[] };
    const r0 = runSim(clean);
    const stopAt = r0.trace.findIndex((a) => a.kind === 'step' && a.step === 'STOP_SERVICES');
    const faults: (Fault | null)[] = new Array(stopAt).fill(null);
    faults.push({ kind: 'unread', node: 1, rounds: 3 });
    const r = runSim({ ...clean, faults });
    expect(stepsOn(r.trace, 'node-b', stopAt, 3)).toEqual([]);
    expect(r.phases.at(-1)).toBe('COMPLETE');
  });

  test('a node that stays read in part: the wait is bounded (WaitBoundReached), then it goes on', () => {
    const at = roundEntering(broken, 'ROLLBACK');
    const faults: (Fault | null)[] = new Array(at).fill(null);
    faults.push({ kind: 'unread', node: 0, rounds: 30 }); // 150 s at 5 s a wait
    const r = runSim({ ...broken, faults });
    const halts = r.trace.filter((a) => a.kind === 'halt');
    expect(halts.length).toBeGreaterThan(0);
    expect(halts[0]).toMatchObject({ code: 'WaitBoundReached' });
    expect((halts[0] as Extract<Action, { kind: 'halt' }>).cause).toMatch(
      /node-a was not read in whole/,
    );
    expect(r.finished).toBe(true);
    expect(r.sim.nodes.map((n) => n.installedVersion)).toEqual(['1.0.0', '1.0.0']);
  });
});
