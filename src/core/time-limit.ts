// The upgrade's time limits, in one place for the planner and for the
// reconciler's path without a runtime (a node that cannot be connected to):
// the whole upgrade on one clock, and a rollback on its own clock so a
// rollback started by a timeout gets time to finish. Pure.

import { formatDuration } from '../config/duration.js';
import type { UpgradeSettings } from '../config/settings.js';
import { type Action, event } from './actions.js';
import type { JournalFacts } from './journal.js';
import type { UpgradeContext } from './machine.js';

/**
 * TIMED_OUT once the current clock ran past upgradeTimeout, else null.
 * `note` adds to the limit's words (what a lost node leaves to do by hand).
 */
export function timeLimitEvent(
  ctx: UpgradeContext,
  j: JournalFacts,
  settings: UpgradeSettings,
  nowMs: number,
  note: () => string,
): Action | null {
  const limitStart = ctx.phase === 'ROLLBACK' ? j.phaseEnteredAtMs : j.upgradeStartedAtMs;
  if (limitStart === null || nowMs - limitStart <= settings.upgradeTimeout) return null;
  const what = ctx.phase === 'ROLLBACK' ? 'rollback' : 'upgrade';
  return event(
    {
      type: 'TIMED_OUT',
      limit: `${what} timeout ${formatDuration(settings.upgradeTimeout)}${note()}`,
    },
    `the ${what} ran past its time limit`,
  );
}
