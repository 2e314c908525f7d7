// After UNREACHABLE the tidy-up (rsync back on, temporary files removed)
// acts on the node still reachable only. Found by the operator lab test: the
// pair-wide RESUME_RSYNC sent a command to the lost node, which hung, and
// the upgrade was never marked finished.
import { runSim } from '../support/run-sim.js';
import type { Fault } from '../support/sim-pair.js';

describe('tidying up after a node was lost', () => {
  test('RESUME_RSYNC and REMOVE_TEMP_FILES name the reachable node', () => {
    const base = { autoRollback: true, brokenTarget: false, faults: [] as (Fault | null)[] };
    const clean = runSim(base);
    // Lost in BACKUP, before any node changed: the one case UNREACHABLE ends
    // (a node lost later halts until it answers: planner-lost-node.test.ts).
    const at = clean.trace.findIndex((a) => a.kind === 'step' && a.step === 'BACKUP');
    const faults: (Fault | null)[] = new Array(at).fill(null);
    faults.push({ kind: 'unreachable', node: 1, rounds: 1000 });
    const r = runSim({ ...base, faults });
    expect(r.phases.at(-1)).toBe('UNREACHABLE');
    const lostAt = r.trace.findIndex(
      (a) => a.kind === 'event' && a.event.type === 'NODE_UNREACHABLE',
    );
    const tidy = r.trace
      .slice(lostAt + 1)
      .filter((a) => a.kind === 'step')
      .map((a) => (a.kind === 'step' ? `${a.step} ${a.node}` : ''));
    expect(tidy).toEqual([
      'RESUME_RSYNC node-a',
      'UNLOCK_CONFIG node-a',
      'REMOVE_TEMP_FILES node-a',
    ]);
    expect(r.trace.at(-1)).toMatchObject({ kind: 'done' });
  });
});
