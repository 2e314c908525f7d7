// Every guard must be load-bearing: a machine with any one guard removed
// (replaced by "always true") must break at least one property, and the
// property that catches it is named here so a reader knows what each guard
// protects.
import fc from 'fast-check';
import { createMachine, GUARDS, type GuardName, upgradeMachine } from '../../src/core/machine.js';
import { failingProperties, play, runArb } from '../support/machine-properties.js';

const CAUGHT_BY: Record<GuardName, string> = {
  backupNodePassedHealth:
    'VIP_SWITCH is entered only after the backup node passed N consecutive health checks',
  vipOnUpgradedNode: 'UPGRADE_MASTER is entered only after the VIP moved to the upgraded node',
  masterNodePassedHealth:
    'COMPLETE only after the old master passed its checks and every verification passed',
  allVerificationsPassed:
    'COMPLETE only after the old master passed its checks and every verification passed',
  hasVerifiedBackup: 'ROLLBACK is entered only once a backup was verified',
  canAutoRollback: 'with auto-rollback off, a failure or timeout never starts a rollback by itself',
};

describe('removing any one guard makes a property fail', () => {
  test('the real machine passes every property (baseline for the mutants)', () => {
    expect(failingProperties(upgradeMachine)).toEqual([]);
  });

  for (const name of Object.keys(GUARDS) as GuardName[]) {
    test(`without guard ${name}`, () => {
      const mutant = createMachine(undefined, { ...GUARDS, [name]: () => true });
      expect(failingProperties(mutant)).toContain(CAUGHT_BY[name]);
    });
  }
});

test('generated runs reach every phase, so the properties are not vacuous', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(runArb, (run) => {
      for (const s of play(upgradeMachine, run)) seen.add(s.after.phase);
    }),
    { numRuns: 500, seed: 7 },
  );
  expect(seen.size).toBe(13);
});
