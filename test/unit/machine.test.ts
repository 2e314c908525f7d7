import fc from 'fast-check';
import {
  createMachine,
  IN_PROGRESS_PHASES,
  initialContext,
  TRANSITION_RULES,
  type UpgradeContext,
  type UpgradeEvent,
  upgradeMachine,
} from '../../src/core/machine.js';
import {
  HAPPY_PATH,
  isTerminal,
  PHASES,
  type Phase,
  TERMINAL_PHASES,
} from '../../src/core/phases.js';
import { happyEvent, NODES, PROPERTIES, runArb } from '../support/machine-properties.js';

const meta = { at: new Date('2026-03-01T10:00:00Z'), actor: 'reconciler' };

describe('upgrade state machine: properties', () => {
  for (const p of PROPERTIES) {
    test(p.name, () => {
      fc.assert(
        fc.property(runArb, (run) => p.check(upgradeMachine, run)),
        { numRuns: 2000 },
      );
    });
  }
});

/** A small set of events standing for every kind the machine can receive. */
function canonicalEvents(ctx: UpgradeContext): UpgradeEvent[] {
  const good = {
    bothNodesHealthy: true,
    replicationHealthy: true,
    vipOnHealthyNode: true,
    configConsistent: true,
    rsyncResumed: true,
  };
  const events: UpgradeEvent[] = [
    { type: 'START' },
    { type: 'PREPARED' },
    { type: 'BACKUP_VERIFIED' },
    { type: 'VERIFIED', checks: good },
    { type: 'VERIFIED', checks: { ...good, configConsistent: false } },
    { type: 'STEP_FAILED', error: 'x' },
    { type: 'ROLLBACK_REQUESTED', reason: 'x' },
    { type: 'ROLLBACK_DONE' },
    { type: 'ROLLBACK_FAILED', error: 'x' },
    { type: 'CANCEL_REQUESTED', reason: 'x' },
    { type: 'TIMED_OUT', limit: '15m' },
  ];
  for (const node of [ctx.backupNode, ctx.masterNode]) {
    events.push({ type: 'VIP_MOVED', holder: node });
    events.push({ type: 'NODE_UNREACHABLE', node, error: 'x' });
    for (const consecutivePasses of [0, ctx.requiredHealthPasses]) {
      events.push({ type: 'BACKUP_NODE_HEALTHY', node, consecutivePasses });
      events.push({ type: 'MASTER_NODE_HEALTHY', node, consecutivePasses });
    }
  }
  return events;
}

const keyOf = (ctx: UpgradeContext) => JSON.stringify({ ...ctx, reason: null });

/** Every context reachable from the start, with its successors: the whole graph. */
function explore(): Map<string, { ctx: UpgradeContext; next: string[] }> {
  const graph = new Map<string, { ctx: UpgradeContext; next: string[] }>();
  const queue: UpgradeContext[] = [];
  for (const autoRollback of [true, false]) {
    queue.push(
      initialContext({ backupNode: NODES.backup, masterNode: NODES.master, autoRollback }),
    );
  }
  while (queue.length > 0) {
    const ctx = queue.shift()!;
    const key = keyOf(ctx);
    if (graph.has(key)) continue;
    const next: string[] = [];
    for (const e of canonicalEvents(ctx)) {
      const r = upgradeMachine.transition(ctx, e, meta);
      if (r.ok) {
        next.push(keyOf(r.context));
        queue.push(r.context);
      }
    }
    graph.set(key, { ctx, next });
  }
  return graph;
}

describe('upgrade state machine: the whole reachable graph', () => {
  const graph = explore();

  test('every phase of the task list is reachable', () => {
    const seen = new Set([...graph.values()].map((n) => n.ctx.phase));
    expect([...seen].sort()).toEqual([...PHASES].sort());
  });

  test('from every reachable state a terminal state is reachable', () => {
    const canFinish = new Set(
      [...graph.entries()].filter(([, n]) => isTerminal(n.ctx.phase)).map(([k]) => k),
    );
    let grew = true;
    while (grew) {
      grew = false;
      for (const [k, n] of graph) {
        if (!canFinish.has(k) && n.next.some((x) => canFinish.has(x))) {
          canFinish.add(k);
          grew = true;
        }
      }
    }
    const stuck = [...graph.entries()].filter(([k]) => !canFinish.has(k)).map(([, n]) => n.ctx);
    expect(stuck).toEqual([]);
  });

  test('once a backup is verified, ROLLBACK is reachable from every in-progress state', () => {
    const inProgress = [...graph.values()].filter(
      (n) => n.ctx.backupVerified && (IN_PROGRESS_PHASES as readonly Phase[]).includes(n.ctx.phase),
    );
    expect(inProgress.length).toBeGreaterThan(0);
    for (const n of inProgress) {
      const reachable = n.next.map((k) => graph.get(k)!.ctx.phase);
      expect({ phase: n.ctx.phase, reachable }).toEqual({
        phase: n.ctx.phase,
        reachable: expect.arrayContaining(['ROLLBACK']),
      });
    }
  });
});

describe('upgrade state machine: examples', () => {
  test('the happy path visits the phases of task list section 4 in order', () => {
    let ctx = initialContext({ backupNode: 'b', masterNode: 'a' });
    const visited: Phase[] = [ctx.phase];
    while (!isTerminal(ctx.phase)) {
      const r = upgradeMachine.transition(ctx, happyEvent(ctx), meta);
      if (!r.ok) throw new Error(r.reason);
      expect(r.record).toMatchObject({ from: ctx.phase, to: r.context.phase, actor: 'reconciler' });
      expect(r.record.at).toEqual(meta.at);
      ctx = r.context;
      visited.push(ctx.phase);
    }
    expect(visited).toEqual(HAPPY_PATH);
  });

  test('a refusal says what was refused and why, and is not an exception', () => {
    const ctx = {
      ...initialContext({ backupNode: 'b', masterNode: 'a' }),
      phase: 'UPGRADE_BACKUP' as const,
    };
    const r = upgradeMachine.transition(
      ctx,
      { type: 'BACKUP_NODE_HEALTHY', node: 'b', consecutivePasses: 2 },
      meta,
    );
    expect(r).toEqual({
      ok: false,
      phase: 'UPGRADE_BACKUP',
      event: 'BACKUP_NODE_HEALTHY',
      reason: 'BACKUP_NODE_HEALTHY refused in UPGRADE_BACKUP: backupNodePassedHealth',
    });
  });

  test('a timeout during a rollback-able phase rolls back and ends in TIMEOUT', () => {
    let ctx: UpgradeContext = {
      ...initialContext({ backupNode: 'b', masterNode: 'a' }),
      phase: 'VIP_SWITCH',
      backupVerified: true,
    };
    const t = upgradeMachine.transition(ctx, { type: 'TIMED_OUT', limit: 'VIP switch 30s' }, meta);
    if (!t.ok) throw new Error(t.reason);
    expect(t.context.phase).toBe('ROLLBACK');
    expect(t.record.cause).toContain('VIP switch 30s');
    ctx = t.context;
    const done = upgradeMachine.transition(ctx, { type: 'ROLLBACK_DONE' }, meta);
    if (!done.ok) throw new Error(done.reason);
    expect(done.context.phase).toBe('TIMEOUT');
  });

  test('cancel before any node changed stops without a rollback; afterwards it rolls back', () => {
    const base = initialContext({ backupNode: 'b', masterNode: 'a' });
    const early = upgradeMachine.transition(
      { ...base, phase: 'BACKUP' },
      { type: 'CANCEL_REQUESTED', reason: 'window closed' },
      meta,
    );
    expect(early.ok && early.context.phase).toBe('CANCELLED');
    const late = upgradeMachine.transition(
      { ...base, phase: 'UPGRADE_MASTER', backupVerified: true },
      { type: 'CANCEL_REQUESTED', reason: 'window closed' },
      meta,
    );
    expect(late.ok && late.context).toMatchObject({
      phase: 'ROLLBACK',
      rollbackOutcome: 'CANCELLED',
    });
  });

  test('a rollback cannot be cancelled half way', () => {
    const ctx = {
      ...initialContext({ backupNode: 'b', masterNode: 'a' }),
      phase: 'ROLLBACK' as const,
    };
    expect(upgradeMachine.transition(ctx, { type: 'CANCEL_REQUESTED', reason: 'x' }, meta).ok).toBe(
      false,
    );
  });

  test('the table names only known phases, and every terminal phase has a way in', () => {
    const targets = new Set<string>();
    for (const r of TRANSITION_RULES) {
      for (const f of r.from) expect(PHASES).toContain(f);
      if (typeof r.to === 'string') targets.add(r.to);
    }
    for (const t of TERMINAL_PHASES.filter((p) => p !== 'CANCELLED' && p !== 'FAILED')) {
      expect(targets).toContain(t);
    }
    expect(createMachine().rules).toBe(TRANSITION_RULES);
  });
});
