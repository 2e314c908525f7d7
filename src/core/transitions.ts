// The edge around the pure machine: apply an event, record the transition in
// the journal (task list 2.1.3: upgrade_history, with time, cause and actor),
// and only then tell subscribers (2.1.4), so anyone reacting to a
// notification can already read the transition back from the store.
import { filter, type Observable, Subject } from 'rxjs';
import type {
  Machine,
  TransitionRecord,
  TransitionResult,
  UpgradeContext,
  UpgradeEvent,
} from './machine.js';

export interface PhaseChange extends TransitionRecord {
  readonly upgradeId: string;
}

/** Where transitions are written; the store implements it. */
export interface TransitionJournal {
  recordTransition(upgradeId: string, record: TransitionRecord): Promise<void>;
}

/** Phase-change notifications as an RxJS stream, for one upgrade or all. */
export class PhaseNotifier {
  readonly #changes = new Subject<PhaseChange>();

  /** Every accepted transition of every upgrade, in the order recorded. */
  get changes$(): Observable<PhaseChange> {
    return this.#changes.asObservable();
  }

  changesOf(upgradeId: string): Observable<PhaseChange> {
    return this.#changes.pipe(filter((c) => c.upgradeId === upgradeId));
  }

  publish(change: PhaseChange): void {
    this.#changes.next(change);
  }

  complete(): void {
    this.#changes.complete();
  }
}

export interface TransitionDeps {
  readonly machine: Machine;
  readonly journal: TransitionJournal;
  readonly notifier: PhaseNotifier;
  readonly now: () => Date;
}

/**
 * Applies one event. A refused event changes nothing and records nothing; an
 * accepted one is journaled before it is announced. If the journal write
 * fails the caller gets the error and the in-memory context must not be
 * advanced (the next reconcile re-reads the phase from the store).
 */
export async function applyEvent(
  deps: TransitionDeps,
  upgradeId: string,
  ctx: UpgradeContext,
  event: UpgradeEvent,
  actor: string,
): Promise<TransitionResult> {
  const result = deps.machine.transition(ctx, event, { at: deps.now(), actor });
  if (!result.ok) return result;
  await deps.journal.recordTransition(upgradeId, result.record);
  deps.notifier.publish({ upgradeId, ...result.record });
  return result;
}
