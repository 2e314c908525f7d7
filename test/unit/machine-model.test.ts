// Model-based test (fast-check commands): a second, deliberately naive
// description of the upgrade — a few booleans and nested ifs, written from the
// task list rather than from the transition table — is run side by side with
// the real machine. Every command sends one event to both and they must agree
// on whether it is accepted and on the phase that follows.
import fc from 'fast-check';
import {
  initialContext,
  type UpgradeContext,
  type UpgradeEvent,
  upgradeMachine,
} from '../../src/core/machine.js';
import type { Phase } from '../../src/core/phases.js';
import { eventArb, NODES } from '../support/machine-properties.js';

interface Model {
  phase: Phase;
  autoRollback: boolean;
  backupTaken: boolean;
  rollbackEndsIn: Phase;
}

interface Real {
  ctx: UpgradeContext;
}

const PASSES = 3;
const finished = (p: Phase) =>
  ['COMPLETE', 'CANCELLED', 'FAILED', 'TIMEOUT', 'UNREACHABLE'].includes(p);

/** The naive model: what the task list says should happen next, or null to refuse. */
function expected(m: Model, e: UpgradeEvent): Phase | null {
  if (finished(m.phase)) return null;
  const rollbackOr = (fallback: Phase) => (m.autoRollback && m.backupTaken ? 'ROLLBACK' : fallback);
  if (m.phase === 'ROLLBACK') {
    if (e.type === 'ROLLBACK_DONE') return m.rollbackEndsIn;
    if (e.type === 'ROLLBACK_FAILED') return 'FAILED';
    if (e.type === 'TIMED_OUT') return 'TIMEOUT';
    if (e.type === 'NODE_UNREACHABLE') return 'UNREACHABLE';
    return null;
  }
  if (e.type === 'CANCEL_REQUESTED') {
    if (m.phase === 'IDLE' || m.phase === 'PREPARE' || m.phase === 'BACKUP') return 'CANCELLED';
    return m.backupTaken ? 'ROLLBACK' : null;
  }
  if (m.phase === 'IDLE') return e.type === 'START' ? 'PREPARE' : null;
  // From here the upgrade is moving.
  if (e.type === 'STEP_FAILED') return rollbackOr('FAILED');
  if (e.type === 'TIMED_OUT') return rollbackOr('TIMEOUT');
  if (e.type === 'NODE_UNREACHABLE') return 'UNREACHABLE';
  if (e.type === 'ROLLBACK_REQUESTED') return m.backupTaken ? 'ROLLBACK' : null;
  if (m.phase === 'PREPARE' && e.type === 'PREPARED') return 'BACKUP';
  if (m.phase === 'BACKUP' && e.type === 'BACKUP_VERIFIED') return 'UPGRADE_BACKUP';
  if (m.phase === 'UPGRADE_BACKUP' && e.type === 'BACKUP_NODE_HEALTHY') {
    return e.node === NODES.backup && e.consecutivePasses >= PASSES ? 'VIP_SWITCH' : null;
  }
  if (m.phase === 'VIP_SWITCH' && e.type === 'VIP_MOVED') {
    return e.holder === NODES.backup ? 'UPGRADE_MASTER' : null;
  }
  if (m.phase === 'UPGRADE_MASTER' && e.type === 'MASTER_NODE_HEALTHY') {
    return e.node === NODES.master && e.consecutivePasses >= PASSES ? 'VERIFY' : null;
  }
  if (m.phase === 'VERIFY' && e.type === 'VERIFIED') {
    return Object.values(e.checks).every(Boolean) ? 'COMPLETE' : null;
  }
  return null;
}

class SendEvent implements fc.Command<Model, Real> {
  constructor(readonly event: UpgradeEvent) {}
  check() {
    return true;
  }
  run(m: Model, r: Real) {
    const want = expected(m, this.event);
    const got = upgradeMachine.transition(r.ctx, this.event, { at: new Date(0), actor: 'model' });
    expect({
      phase: m.phase,
      event: this.event.type,
      next: got.ok ? got.context.phase : null,
    }).toEqual({
      phase: m.phase,
      event: this.event.type,
      next: want,
    });
    if (!got.ok || want === null) return;
    if (want === 'ROLLBACK' && m.phase !== 'ROLLBACK') {
      m.rollbackEndsIn =
        this.event.type === 'CANCEL_REQUESTED'
          ? 'CANCELLED'
          : this.event.type === 'TIMED_OUT'
            ? 'TIMEOUT'
            : 'FAILED';
    }
    if (this.event.type === 'BACKUP_VERIFIED') m.backupTaken = true;
    m.phase = want;
    r.ctx = got.context;
  }
  toString() {
    return JSON.stringify(this.event);
  }
}

/** Events weighted towards the ones that move the upgrade on, so runs go deep. */
const forward = fc.constantFrom<UpgradeEvent>(
  { type: 'START' },
  { type: 'PREPARED' },
  { type: 'BACKUP_VERIFIED' },
  { type: 'BACKUP_NODE_HEALTHY', node: NODES.backup, consecutivePasses: PASSES },
  { type: 'VIP_MOVED', holder: NODES.backup },
  { type: 'MASTER_NODE_HEALTHY', node: NODES.master, consecutivePasses: PASSES },
  {
    type: 'VERIFIED',
    checks: {
      bothNodesHealthy: true,
      replicationHealthy: true,
      vipOnHealthyNode: true,
      configConsistent: true,
      rsyncResumed: true,
    },
  },
  { type: 'ROLLBACK_DONE' },
);

test('the machine agrees with a naive model of the task list on every event sequence', () => {
  const commands = fc.commands(
    [
      forward.map((e) => new SendEvent(e)),
      forward.map((e) => new SendEvent(e)),
      eventArb.map((e) => new SendEvent(e)),
    ],
    { maxCommands: 30 },
  );
  fc.assert(
    fc.property(fc.boolean(), commands, (autoRollback, cmds) => {
      const model: Model = {
        phase: 'IDLE',
        autoRollback,
        backupTaken: false,
        rollbackEndsIn: 'FAILED',
      };
      const real: Real = {
        ctx: initialContext({
          backupNode: NODES.backup,
          masterNode: NODES.master,
          autoRollback,
          requiredHealthPasses: PASSES,
        }),
      };
      fc.modelRun(() => ({ model, real }), cmds);
    }),
    { numRuns: 1500 },
  );
});
