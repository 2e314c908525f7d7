// Conditions from phases: what GitOps tools read (Progressing, Ready,
// Degraded, RolledBack), observedGeneration on each, and transition times
// that move only when a status flips.
import fc from 'fast-check';
import { conditionsFor, findCondition } from '../../src/core/conditions.js';
import { isTerminal, PHASES, type Phase } from '../../src/core/phases.js';
import type { Condition } from '../../src/core/upgrade-request.js';

const T0 = '2026-11-29T10:00:00Z';
const T1 = '2026-11-29T10:01:00Z';

const statuses = (cs: Condition[]) => Object.fromEntries(cs.map((c) => [c.type, c.status]));

test.each([
  [
    'IDLE',
    {
      Progressing: 'True',
      Ready: 'False',
      Degraded: 'False',
      RolledBack: 'False',
      Reconciling: 'True',
      Stalled: 'False',
    },
  ],
  [
    'VIP_SWITCH',
    {
      Progressing: 'True',
      Ready: 'False',
      Degraded: 'False',
      RolledBack: 'False',
      Reconciling: 'True',
      Stalled: 'False',
    },
  ],
  [
    'COMPLETE',
    {
      Progressing: 'False',
      Ready: 'True',
      Degraded: 'False',
      RolledBack: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    },
  ],
  [
    'CANCELLED',
    {
      Progressing: 'False',
      Ready: 'False',
      Degraded: 'False',
      RolledBack: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    },
  ],
  [
    'FAILED',
    {
      Progressing: 'False',
      Ready: 'False',
      Degraded: 'True',
      RolledBack: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    },
  ],
  [
    'TIMEOUT',
    {
      Progressing: 'False',
      Ready: 'False',
      Degraded: 'True',
      RolledBack: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    },
  ],
  [
    'UNREACHABLE',
    {
      Progressing: 'False',
      Ready: 'False',
      Degraded: 'True',
      RolledBack: 'False',
      Reconciling: 'False',
      Stalled: 'False',
    },
  ],
  [
    'ROLLBACK',
    {
      Progressing: 'True',
      Ready: 'False',
      Degraded: 'False',
      RolledBack: 'False',
      Reconciling: 'True',
      Stalled: 'False',
    },
  ],
] as const)('%s → %o', (phase, expected) => {
  const cs = conditionsFor({ phase, generation: 3, previous: [], now: T0 });
  expect(statuses(cs)).toEqual(expected);
  for (const c of cs) {
    expect(c.observedGeneration).toBe(3);
    expect(c.lastTransitionTime).toBe(T0);
  }
});

test('reasons say why: timeout, unreachable, succeeded', () => {
  const at = (phase: Phase) =>
    findCondition(conditionsFor({ phase, generation: 1, previous: [], now: T0 }), 'Degraded')
      ?.reason;
  expect(at('TIMEOUT')).toBe('TimedOut');
  expect(at('UNREACHABLE')).toBe('NodeUnreachable');
  const done = conditionsFor({
    phase: 'COMPLETE',
    generation: 1,
    previous: [],
    now: T0,
    message: 'v2 on both',
  });
  expect(findCondition(done, 'Ready')).toMatchObject({
    reason: 'Succeeded',
    message: 'v2 on both',
  });
});

test('lastTransitionTime stays while a status holds (message and generation may change)', () => {
  const first = conditionsFor({ phase: 'PREPARE', generation: 1, previous: [], now: T0 });
  const next = conditionsFor({
    phase: 'BACKUP',
    generation: 2,
    previous: first,
    now: T1,
    message: 'backing up',
  });
  expect(findCondition(next, 'Progressing')).toMatchObject({
    status: 'True',
    lastTransitionTime: T0,
    observedGeneration: 2,
    message: 'backing up',
  });
  const done = conditionsFor({ phase: 'COMPLETE', generation: 2, previous: next, now: T1 });
  expect(findCondition(done, 'Progressing')?.lastTransitionTime).toBe(T1);
  expect(findCondition(done, 'Ready')?.lastTransitionTime).toBe(T1);
  expect(findCondition(done, 'Degraded')?.lastTransitionTime).toBe(T0);
});

test('a rollback is remembered: RolledBack=True after ROLLBACK ends, and stays', () => {
  const during = conditionsFor({ phase: 'ROLLBACK', generation: 1, previous: [], now: T0 });
  expect(findCondition(during, 'RolledBack')).toMatchObject({
    status: 'False',
    reason: 'RollingBack',
  });
  const after = conditionsFor({ phase: 'FAILED', generation: 1, previous: during, now: T1 });
  expect(findCondition(after, 'RolledBack')).toMatchObject({
    status: 'True',
    lastTransitionTime: T1,
  });
  const later = conditionsFor({
    phase: 'FAILED',
    generation: 1,
    previous: after,
    now: '2026-11-29T11:00:00Z',
  });
  expect(findCondition(later, 'RolledBack')).toMatchObject({
    status: 'True',
    lastTransitionTime: T1,
  });
});

test('property: exactly one of Progressing / Ready / terminal-not-ready; times move only on flips', () => {
  const phase = fc.constantFrom(...PHASES);
  fc.assert(
    fc.property(fc.array(phase, { minLength: 1, maxLength: 20 }), (phases) => {
      let prev: Condition[] = [];
      phases.forEach((p, i) => {
        const now = new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
        const cs = conditionsFor({ phase: p, generation: i, previous: prev, now });
        const s = statuses(cs);
        expect(s.Progressing === 'True').toBe(!isTerminal(p));
        expect(s.Ready === 'True').toBe(p === 'COMPLETE');
        if (s.Ready === 'True') expect(s.Degraded).toBe('False');
        for (const c of cs) {
          const before = findCondition(prev, c.type);
          const flipped = !before || before.status !== c.status;
          expect(c.lastTransitionTime).toBe(flipped ? now : before.lastTransitionTime);
          expect(c.observedGeneration).toBe(i);
        }
        prev = cs;
      });
    }),
  );
});

describe('Reconciling and Stalled (kstatus: abnormal-true, False when fine)', () => {
  const halt = { reason: 'SplitBrain', message: 'halted: split brain: both a and b hold the VIP' };

  test('a halt sets Stalled=True with its reason and text, and Reconciling=False', () => {
    const cs = conditionsFor({
      phase: 'UPGRADE_BACKUP',
      generation: 4,
      previous: [],
      now: T0,
      stalled: halt,
    });
    expect(findCondition(cs, 'Stalled')).toMatchObject({
      status: 'True',
      reason: 'SplitBrain',
      message: halt.message,
      observedGeneration: 4,
      lastTransitionTime: T0,
    });
    expect(findCondition(cs, 'Reconciling')).toMatchObject({ status: 'False', reason: 'Stalled' });
    // The phase's own verdicts are unchanged: still in progress, not failed.
    expect(findCondition(cs, 'Progressing')?.status).toBe('True');
    expect(findCondition(cs, 'Degraded')?.status).toBe('False');
  });

  test('the halt clears: Stalled flips to False (new transition time), Reconciling back to True', () => {
    const halted = conditionsFor({
      phase: 'ROLLBACK',
      generation: 1,
      previous: [],
      now: T0,
      stalled: halt,
    });
    const again = conditionsFor({
      phase: 'ROLLBACK',
      generation: 1,
      previous: halted,
      now: T1,
      stalled: { ...halt, message: 'same cause, other words' },
    });
    // Still halted: the transition time stays.
    expect(findCondition(again, 'Stalled')?.lastTransitionTime).toBe(T0);
    const resumed = conditionsFor({ phase: 'ROLLBACK', generation: 1, previous: again, now: T1 });
    expect(findCondition(resumed, 'Stalled')).toMatchObject({
      status: 'False',
      lastTransitionTime: T1,
    });
    expect(findCondition(resumed, 'Reconciling')).toMatchObject({
      status: 'True',
      reason: 'RollingBack',
      lastTransitionTime: T1,
    });
  });

  test('a terminal phase is never Stalled nor Reconciling, whatever is passed', () => {
    for (const phase of PHASES.filter(isTerminal)) {
      const cs = conditionsFor({ phase, generation: 1, previous: [], now: T0, stalled: halt });
      expect(findCondition(cs, 'Stalled')?.status).toBe('False');
      expect(findCondition(cs, 'Reconciling')?.status).toBe('False');
    }
  });
});
