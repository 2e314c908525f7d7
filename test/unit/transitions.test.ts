import { firstValueFrom, take, toArray } from 'rxjs';
import { initialContext, type TransitionRecord, upgradeMachine } from '../../src/core/machine.js';
import { applyEvent, PhaseNotifier, type TransitionJournal } from '../../src/core/transitions.js';

class MemoryJournal implements TransitionJournal {
  readonly rows: { upgradeId: string; record: TransitionRecord }[] = [];
  failNext = false;
  async recordTransition(upgradeId: string, record: TransitionRecord) {
    if (this.failNext) throw new Error('store down');
    this.rows.push({ upgradeId, record });
  }
}

const clock = () => new Date('2026-05-05T05:05:05Z');

test('an accepted event is journaled, then announced to subscribers of that upgrade', async () => {
  const journal = new MemoryJournal();
  const notifier = new PhaseNotifier();
  const deps = { machine: upgradeMachine, journal, notifier, now: clock };
  const seenByU1 = firstValueFrom(notifier.changesOf('u1').pipe(take(2), toArray()));
  const journaledWhenAnnounced: number[] = [];
  notifier.changes$.subscribe(() => journaledWhenAnnounced.push(journal.rows.length));

  let ctx = initialContext({ backupNode: 'b', masterNode: 'a' });
  const r1 = await applyEvent(deps, 'u1', ctx, { type: 'START' }, 'user:alice');
  if (!r1.ok) throw new Error(r1.reason);
  ctx = r1.context;
  await applyEvent(
    deps,
    'u2',
    initialContext({ backupNode: 'b', masterNode: 'a' }),
    { type: 'START' },
    'x',
  );
  await applyEvent(deps, 'u1', ctx, { type: 'PREPARED' }, 'reconciler');

  const changes = await seenByU1;
  expect(changes.map((c) => [c.from, c.to, c.actor])).toEqual([
    ['IDLE', 'PREPARE', 'user:alice'],
    ['PREPARE', 'BACKUP', 'reconciler'],
  ]);
  expect(changes[0]!.at).toEqual(clock());
  expect(journal.rows.map((r) => r.upgradeId)).toEqual(['u1', 'u2', 'u1']);
  // Each announcement came after its own journal row existed.
  expect(journaledWhenAnnounced).toEqual([1, 2, 3]);
});

test('a refused event records and announces nothing', async () => {
  const journal = new MemoryJournal();
  const notifier = new PhaseNotifier();
  const announced: unknown[] = [];
  notifier.changes$.subscribe((c) => announced.push(c));
  const r = await applyEvent(
    { machine: upgradeMachine, journal, notifier, now: clock },
    'u1',
    initialContext({ backupNode: 'b', masterNode: 'a' }),
    { type: 'VIP_MOVED', holder: 'b' },
    'reconciler',
  );
  expect(r.ok).toBe(false);
  expect(journal.rows).toEqual([]);
  expect(announced).toEqual([]);
});

test('when the journal write fails nothing is announced and the error surfaces', async () => {
  const journal = new MemoryJournal();
  journal.failNext = true;
  const notifier = new PhaseNotifier();
  const announced: unknown[] = [];
  notifier.changes$.subscribe((c) => announced.push(c));
  await expect(
    applyEvent(
      { machine: upgradeMachine, journal, notifier, now: clock },
      'u1',
      initialContext({ backupNode: 'b', masterNode: 'a' }),
      { type: 'START' },
      'reconciler',
    ),
  ).rejects.toThrow('store down');
  expect(announced).toEqual([]);
});
