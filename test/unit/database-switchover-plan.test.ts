// The switchover's plan from observed state (pure): which steps are left for
// every state a run can find the pair in, and which states are refused.
import type { RunningDb, StoppedDb } from '../../src/drivers/database/observe.js';
import type { ClusterState } from '../../src/drivers/database/server-files.js';
import {
  followsAddress,
  planSwitchover,
  type SwitchoverObservation,
} from '../../src/drivers/switchover/plan.js';

const A = '198.18.0.11';
const B = '198.18.0.12';

const primary = (node: string, over: Partial<RunningDb> = {}): RunningDb => ({
  node,
  running: true,
  inRecovery: false,
  currentLsn: 0x3000200n,
  receiveLsn: null,
  replayLsn: null,
  receiverStatus: null,
  senderHost: null,
  syncStandbyNames: '',
  primaryConninfo: '',
  timeline: 1,
  ...over,
});
const standby = (node: string, of: string, over: Partial<RunningDb> = {}): RunningDb => ({
  node,
  running: true,
  inRecovery: true,
  currentLsn: null,
  receiveLsn: 0x3000200n,
  replayLsn: 0x3000200n,
  receiverStatus: 'streaming',
  senderHost: of,
  syncStandbyNames: '',
  primaryConninfo: `host=${of} user=replicator`,
  timeline: null,
  ...over,
});
const stopped = (node: string, state: ClusterState): StoppedDb => ({
  node,
  running: false,
  control: { state, checkpointLsn: 0x3000200n, timeline: 1 },
  standbySignal: state === 'shut down in recovery',
});
const obs = (
  from: SwitchoverObservation['from'],
  to: SwitchoverObservation['to'],
  vipHolder: string | null,
): SwitchoverObservation => ({ from, to, vipHolder, toAddress: B });

describe('planSwitchover a -> b', () => {
  it('plans the whole sequence from a primary on a and a standby on b', () => {
    expect(planSwitchover(obs(primary('a'), standby('b', A), 'a'))).toEqual([
      'check-standby-caught-up',
      'checkpoint',
      'stop-old-primary',
      'check-final-lsn-received',
      'promote',
      'move-vip',
      'rejoin-old-primary',
      'verify-streaming',
    ]);
  });

  it('clears synchronous_standby_names on the target first when it is set', () => {
    const steps = planSwitchover(
      obs(primary('a'), standby('b', A, { syncStandbyNames: 'd1-a' }), 'a'),
    );
    expect(steps.slice(0, 3)).toEqual([
      'check-standby-caught-up',
      'clear-synchronous-standby-names',
      'checkpoint',
    ]);
  });

  it('resumes after the old primary was stopped cleanly', () => {
    expect(
      planSwitchover(
        obs(stopped('a', 'shut down'), standby('b', A, { receiverStatus: null }), 'a'),
      ),
    ).toEqual([
      'check-final-lsn-received',
      'promote',
      'move-vip',
      'rejoin-old-primary',
      'verify-streaming',
    ]);
  });

  it('resumes after promotion: the VIP, then the old primary', () => {
    expect(
      planSwitchover(obs(stopped('a', 'shut down'), primary('b', { timeline: 2 }), 'a')),
    ).toEqual(['move-vip', 'rejoin-old-primary', 'verify-streaming']);
    expect(planSwitchover(obs(stopped('a', 'shut down'), primary('b'), 'b'))).toEqual([
      'rejoin-old-primary',
      'verify-streaming',
    ]);
  });

  it('re-points a standby that follows the wrong primary, and waits for one not yet streaming', () => {
    expect(planSwitchover(obs(standby('a', A), primary('b'), 'b'))).toEqual([
      'rejoin-old-primary',
      'verify-streaming',
    ]);
    expect(
      planSwitchover(obs(standby('a', B, { receiverStatus: 'starting' }), primary('b'), 'b')),
    ).toEqual(['verify-streaming']);
  });

  it('has nothing left to do when b is primary with the VIP and a streams from it', () => {
    expect(planSwitchover(obs(standby('a', B), primary('b'), 'b'))).toEqual([]);
  });

  it('refuses states that need a person (or pg_rewind)', () => {
    expect(() => planSwitchover(obs(primary('a'), primary('b'), 'a'))).toThrow(/split brain/);
    expect(() => planSwitchover(obs(standby('a', B), standby('b', A), 'a'))).toThrow(/no primary/);
    expect(() => planSwitchover(obs(stopped('a', 'in production'), standby('b', A), 'a'))).toThrow(
      /did not shut down cleanly/,
    );
    expect(() =>
      planSwitchover(obs(primary('a'), stopped('b', 'shut down in recovery'), 'a')),
    ).toThrow(/database on b is not running/);
    expect(() => planSwitchover(obs(stopped('a', 'in crash recovery'), primary('b'), 'b'))).toThrow(
      /without pg_rewind/,
    );
  });

  it('knows whom a standby follows, from its receiver or its conninfo', () => {
    expect(followsAddress(standby('a', B), B)).toBe(true);
    expect(followsAddress(standby('a', B, { senderHost: null }), B)).toBe(true);
    expect(followsAddress(standby('a', A, { senderHost: null }), B)).toBe(false);
    expect(followsAddress(primary('a'), B)).toBe(false);
  });
});
