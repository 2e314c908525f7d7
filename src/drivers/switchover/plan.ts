// The controlled switchover, planned from what was observed (pure). Each run
// of the switchover observes both nodes and the VIP and plans only what is
// left, so re-running after any step (an operator killed half-way) finishes
// the job without repeating anything harmful:
//
//   from = primary, to = standby          -> the whole sequence
//   from stopped cleanly, to = standby    -> check final LSN, promote, ...
//   to = primary, VIP elsewhere           -> move the VIP, rejoin from
//   to = primary, from stopped            -> rejoin from as standby
//   to = primary, from standby of to      -> nothing (or only verify)
//
// Anything else (two primaries, no primary, the old primary crashed rather
// than stopped) is refused with the reason: those need a person, or
// pg_rewind, which this driver never runs on its own.
import type { DbState, RunningDb } from '../database/observe.js';

export type SwitchoverStep =
  | 'check-standby-caught-up'
  | 'clear-synchronous-standby-names'
  | 'checkpoint'
  | 'stop-old-primary'
  | 'check-final-lsn-received'
  | 'promote'
  | 'move-vip'
  | 'rejoin-old-primary'
  | 'verify-streaming';

export interface SwitchoverObservation {
  readonly from: DbState;
  readonly to: DbState;
  /** Node the VIP answers from (outside view), or null. */
  readonly vipHolder: string | null;
  /** Address of the target node (what the old primary must follow). */
  readonly toAddress: string;
}

export class SwitchoverRefused extends Error {
  override readonly name = 'SwitchoverRefused';
}

const FULL: SwitchoverStep[] = [
  'check-standby-caught-up',
  'clear-synchronous-standby-names',
  'checkpoint',
  'stop-old-primary',
  'check-final-lsn-received',
  'promote',
  'move-vip',
  'rejoin-old-primary',
  'verify-streaming',
];

/** Is `s` a standby streaming (or about to) from the given address? */
export function followsAddress(s: RunningDb, address: string): boolean {
  return s.inRecovery && (s.senderHost === address || hostIn(s.primaryConninfo) === address);
}

function hostIn(conninfo: string): string | null {
  const m = /(?:^|\s)host\s*=\s*'?([^\s']+)/.exec(conninfo);
  return m ? m[1]! : null;
}

export function planSwitchover(o: SwitchoverObservation): SwitchoverStep[] {
  const { from, to } = o;
  const toName = to.node;
  const fromName = from.node;
  if (!to.running) {
    throw new SwitchoverRefused(
      `the database on ${toName} is not running (${to.control.state}); start it as a standby first`,
    );
  }
  if (to.inRecovery) {
    // Not promoted yet.
    if (from.running && !from.inRecovery) {
      const steps = [...FULL];
      if (!to.syncStandbyNames) steps.splice(steps.indexOf('clear-synchronous-standby-names'), 1);
      return steps;
    }
    if (from.running) {
      // (a running primary returned above)
      throw new SwitchoverRefused(
        `both ${fromName} and ${toName} are standbys: there is no primary to switch over from`,
      );
    }
    // from is stopped
    if (from.control.state === 'shut down') {
      const steps = FULL.slice(FULL.indexOf('check-final-lsn-received'));
      if (to.syncStandbyNames) steps.unshift('clear-synchronous-standby-names');
      return steps;
    }
    throw new SwitchoverRefused(
      `the old primary ${fromName} is stopped but did not shut down cleanly (${from.control.state}); its last WAL may not have reached ${toName}: start it again (it recovers as the primary) and retry`,
    );
  }
  // `to` is already a primary.
  const steps: SwitchoverStep[] = [];
  if (from.running && !from.inRecovery) {
    throw new SwitchoverRefused(
      `both ${fromName} and ${toName} are primaries (split brain); ${fromName} needs pg_rewind or a new base backup, which this driver does not do on its own`,
    );
  }
  if (o.vipHolder !== toName) steps.push('move-vip');
  if (!from.running) {
    if (from.control.state !== 'shut down' && from.control.state !== 'shut down in recovery') {
      throw new SwitchoverRefused(
        `${fromName} is stopped without a clean shutdown (${from.control.state}); it cannot rejoin without pg_rewind`,
      );
    }
    steps.push('rejoin-old-primary', 'verify-streaming');
  } else if (!followsAddress(from, o.toAddress)) {
    steps.push('rejoin-old-primary', 'verify-streaming');
  } else if (from.receiverStatus !== 'streaming') {
    steps.push('verify-streaming');
  }
  return steps;
}
