// A rollback ends only with the standby streaming again (lab fault matrix:
// stop-replication in VIP_SWITCH ended FAILED with b's standby not
// streaming and 2389 acknowledged writes behind, which nobody named).
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import { emptyJournal, type JournalFacts } from '../../src/core/journal.js';
import { initialContext, type UpgradeContext } from '../../src/core/machine.js';
import type { NodeObservation, PairObservation } from '../../src/core/observed.js';
import { plan } from '../../src/core/planner.js';

const FROM = '1.0.0';
const TO = '2.0.0';
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
const b = (streaming: boolean | undefined): NodeObservation => ({
  ...a,
  name: 'b',
  dbRole: 'standby',
  holdsVip: false,
  replayLagBytes: streaming === false ? null : 0,
  ...(streaming === undefined ? {} : { streaming }),
});
const ctx: UpgradeContext = {
  ...initialContext({ backupNode: 'b', masterNode: 'a', autoRollback: true }),
  phase: 'ROLLBACK',
  backupVerified: true,
};
const journal = (extra: Partial<JournalFacts> = {}): JournalFacts => ({
  ...emptyJournal(now - 10_000),
  upgradeStartedAtMs: now - 100_000,
  healthPasses: { a: 3, b: 3 },
  backupsVerified: ['a', 'b'],
  restored: ['b'],
  ...extra,
});
const planWith = (bObs: NodeObservation, j: JournalFacts, at = now) =>
  plan({
    ctx,
    request: { fromVersion: FROM, targetVersion: TO },
    settings,
    observed: {
      nodes: [a, bObs],
      configConsistent: null,
      migrationsApplied: true,
    } as PairObservation,
    journal: j,
    nowMs: at,
  });

describe('the end of a rollback and the standby', () => {
  test('standby streaming: ROLLBACK_DONE', () => {
    expect(planWith(b(true), journal())).toMatchObject({
      kind: 'event',
      event: { type: 'ROLLBACK_DONE' },
    });
  });

  test('standby not streaming: wait, naming the node and the replication', () => {
    const action = planWith(b(false), journal());
    expect(action).toMatchObject({ kind: 'wait' });
    expect(action.reason).toMatch(/standby database on b is not streaming/);
  });

  test('still not streaming past the wait bound: a halt that names it (no terminal phase with a silent broken standby)', () => {
    const first = planWith(b(false), journal());
    const j = journal({ waiting: { reason: first.reason, sinceMs: now - 61_000 } });
    const action = planWith(b(false), j);
    expect(action).toMatchObject({ kind: 'halt', code: 'WaitBoundReached' });
    if (action.kind !== 'halt') throw new Error('not a halt');
    expect(action.cause).toMatch(/standby database on b is not streaming/);
  });

  test('not read (no streaming field, e.g. another flavour): as before', () => {
    expect(planWith(b(undefined), journal())).toMatchObject({
      kind: 'event',
      event: { type: 'ROLLBACK_DONE' },
    });
  });
});
