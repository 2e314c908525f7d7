// Which backup sets to delete: keep the newest `keep` sets, and never a
// protected one (the set just made, sets an unfinished upgrade points to).
// Everything else goes. Pure, so it is property-tested.
export interface RetainableSet {
  readonly name: string;
  readonly upgradeId: string | null;
}

export interface RetentionPolicy {
  readonly keep: number;
  readonly protectedSets?: ReadonlySet<string>;
  readonly protectedUpgrades?: ReadonlySet<string>;
}

/** Names of the sets to delete. Set names sort in time order (naming.ts). */
export function setsToDelete(sets: readonly RetainableSet[], policy: RetentionPolicy): string[] {
  if (!Number.isInteger(policy.keep) || policy.keep < 1) {
    throw new RangeError(`backup retention must keep at least 1 set, not ${policy.keep}`);
  }
  const newestFirst = [...sets].sort((x, y) => (x.name < y.name ? 1 : x.name > y.name ? -1 : 0));
  const keep = new Set(newestFirst.slice(0, policy.keep).map((s) => s.name));
  return newestFirst
    .filter(
      (s) =>
        !keep.has(s.name) &&
        !policy.protectedSets?.has(s.name) &&
        !(s.upgradeId !== null && policy.protectedUpgrades?.has(s.upgradeId)),
    )
    .map((s) => s.name);
}
