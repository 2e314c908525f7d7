// The state machine's transitions land in upgrade_history with time, cause
// and actor, on both stores (task list 2.1.3), and a stale context loses.
import { jest } from '@jest/globals';
import { initialContext, type UpgradeContext, upgradeMachine } from '../../src/core/machine.js';
import { HAPPY_PATH } from '../../src/core/phases.js';
import { applyEvent, type PhaseChange, PhaseNotifier } from '../../src/core/transitions.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { storeJournal } from '../../src/store/transition-journal.js';
import {
  createUpgradeTask,
  getUpgradeTask,
  listHistory,
  PhaseConflictError,
} from '../../src/store/upgrades.js';
import { happyEvent } from '../support/machine-properties.js';
import { backends, migratedStore } from './backends.js';

jest.setTimeout(120_000);

describe.each(backends)('transitions journaled on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let clock = 0;
  const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, clock++));

  beforeAll(async () => {
    db = await migratedStore(backend);
  });
  afterAll(() => backend.teardown());

  test('a whole upgrade leaves one history row per transition, in order', async () => {
    await createUpgradeTask(db, {
      upgradeId: 'u-happy',
      pairName: 'p1',
      at: new Date(Date.UTC(2025, 11, 31)),
      targetVersion: '2.0.0',
      requestedBy: 'alice',
    });
    const notifier = new PhaseNotifier();
    const seen: PhaseChange[] = [];
    notifier.changesOf('u-happy').subscribe((c) => seen.push(c));
    const deps = { machine: upgradeMachine, journal: storeJournal(db), notifier, now };
    let ctx: UpgradeContext = initialContext({ backupNode: 'b', masterNode: 'a' });
    while (ctx.phase !== 'COMPLETE') {
      const r = await applyEvent(deps, 'u-happy', ctx, happyEvent(ctx), 'reconciler');
      if (!r.ok) throw new Error(r.reason);
      ctx = r.context;
    }
    const history = await listHistory(db, 1, 50, { upgradeId: 'u-happy' });
    // The first row is the task's creation (null -> IDLE), then each transition.
    const [created, ...oldestFirst] = [...history.items].reverse();
    expect(created).toMatchObject({ from: null, to: 'IDLE', actor: 'alice' });
    expect(oldestFirst.map((h) => `${h.from}>${h.to}`)).toEqual(
      seen.map((c) => `${c.from}>${c.to}`),
    );
    expect(oldestFirst.map((h) => h.to)).toEqual(HAPPY_PATH.slice(1));
    expect(oldestFirst.every((h) => h.actor === 'reconciler' && h.cause.length > 0)).toBe(true);
    expect(oldestFirst.map((h, i) => h.at.getTime() - (seen[i]?.at.getTime() ?? 0))).toEqual(
      new Array(7).fill(0),
    );
    const task = await getUpgradeTask(db, 'u-happy');
    expect(task?.phase).toBe('COMPLETE');
    expect(task?.finishedAt).not.toBeNull();
  });

  test('a transition from a stale phase is refused by the store and not announced', async () => {
    await createUpgradeTask(db, {
      upgradeId: 'u-race',
      pairName: 'p2',
      targetVersion: '2.0.0',
      requestedBy: 'bob',
    });
    const notifier = new PhaseNotifier();
    const seen: PhaseChange[] = [];
    notifier.changes$.subscribe((c) => seen.push(c));
    const deps = { machine: upgradeMachine, journal: storeJournal(db), notifier, now };
    const idle = initialContext({ backupNode: 'b', masterNode: 'a' });
    const first = await applyEvent(deps, 'u-race', idle, { type: 'START' }, 'replica-1');
    expect(first.ok).toBe(true);
    // A second reconciler still holding the IDLE context loses the race.
    await expect(
      applyEvent(deps, 'u-race', idle, { type: 'CANCEL_REQUESTED', reason: 'x' }, 'replica-2'),
    ).rejects.toBeInstanceOf(PhaseConflictError);
    expect(seen.map((c) => c.actor)).toEqual(['replica-1']);
    expect((await getUpgradeTask(db, 'u-race'))?.phase).toBe('PREPARE');
  });
});
