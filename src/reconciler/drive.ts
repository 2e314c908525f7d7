// One upgrade driven to its end: observe -> plan -> act -> record, repeated.
// The planner (pure) picks the next action from a fresh observation every
// round; an event goes through the state machine, a step through the
// executor, a wait sleeps. The journal (facts that cannot be read off the
// nodes) is folded with journal.ts and handed to the caller after every
// change, so an operator restarted at any point resumes from the store
// (`resume`) and re-plans from the truth on the nodes.
//
// The reconciler wraps this per UpgradeRequest; the lab test drives a whole
// v1 -> v2 upgrade through it.
import type { UpgradeSettings } from '../config/settings.js';
import type { NodeShell } from '../drivers/ssh/pool.js';
import type { HAPair } from '../inventory/hapair.js';
import type { StagedPackage } from '../packages/stage.js';
import { type Action, describeAction } from './actions.js';
import { type AgentsDeps, ensureAgents } from './agents.js';
import { type ExecOutcome, type ExecutorDeps, executeStep } from './execute.js';
import { emptyJournal, type JournalFacts, recordReachability, recordStep } from './journal.js';
import {
  initialContext,
  type Machine,
  type TransitionRecord,
  type UpgradeContext,
  upgradeMachine,
} from './machine.js';
import { type ObservationReport, type ObserveDeps, observePair } from './observe.js';
import { type PlanRequest, plan } from './planner.js';

export interface DriveDeps extends Omit<ExecutorDeps, 'pair' | 'staged' | 'shell' | 'settings'> {
  readonly shell: NodeShell;
  readonly settings: UpgradeSettings;
  /** Wall clock for the journal and the planner's time limits (default Date.now). */
  readonly clock?: () => number;
  /** Pause between rounds while the planner waits (default 1 s; capped by its untilMs). */
  readonly waitMs?: number;
  /** Observer options (probe deadline, /version reader). */
  readonly observe?: Pick<ObserveDeps, 'appVersion' | 'probeTimeoutMs' | 'vipOutside'>;
  readonly machine?: Machine;
  /** Who the transitions are recorded as (default "pairshift-operator"). */
  readonly actor?: string;
  /** Safety net against a planner that never finishes (default 100 000 rounds). */
  readonly maxRounds?: number;
  /** Stops the loop between rounds (operator shutdown); the journal is saved. */
  readonly signal?: AbortSignal;
  /**
   * Install or update the node agent on both nodes before the first
   * observation (ensureAgents; unchanged when current). A failure here is
   * thrown: nothing was observed or changed yet, the caller retries.
   */
  readonly agents?: Omit<AgentsDeps, 'pair' | 'shell' | 'dryRun'>;
}

export interface UpgradeSpec {
  readonly upgradeId: string;
  readonly request: PlanRequest;
  /** Default: the node holding the VIP at the first observation. */
  readonly masterNode?: string;
  readonly backupNode?: string;
  readonly autoRollback?: boolean;
  /** Rollback restores the database from the dump too. */
  readonly restoreDatabase?: boolean;
  /** Where a restarted operator continues (from the store). */
  readonly resume?: { readonly ctx: UpgradeContext; readonly journal: JournalFacts };
}

export interface RoundReport {
  readonly round: number;
  readonly phase: string;
  readonly observeMs: number;
  readonly action: Action;
  /** For steps: the executor's outcome (with its duration). */
  readonly outcome?: ExecOutcome;
  /** For events: the machine's answer. */
  readonly transition?: TransitionRecord | { refused: string };
  readonly observation: ObservationReport;
}

/** What the caller keeps: transitions and the journal, written as they happen. */
export interface DrivePersistence {
  /** An accepted transition, before anything else happens. */
  transition?(record: TransitionRecord, ctx: UpgradeContext): Promise<void>;
  /** The journal and context after every change. */
  save?(state: { ctx: UpgradeContext; journal: JournalFacts }): Promise<void>;
  /** Cancel or rollback asked for since the last round; polled every round. */
  requests?(): Promise<{ cancel?: string | null; rollback?: string | null }>;
  /** Every round, for progress display and measurements. */
  onRound?(r: RoundReport): void;
}

export interface UpgradeRun {
  readonly ctx: UpgradeContext;
  readonly journal: JournalFacts;
  readonly rounds: number;
  /**
   * 'done' when the planner said so; 'aborted' on the signal; 'stuck' past
   * maxRounds or on a refused event; 'dry-run' after the first action of a
   * dry run (nothing changes on the nodes, so the planner would only ask for
   * the same action again).
   */
  readonly ended: 'done' | 'aborted' | 'stuck' | 'dry-run';
  readonly reason: string;
}

function applyRequests(
  j: JournalFacts,
  r: { cancel?: string | null; rollback?: string | null },
): JournalFacts {
  let next = j;
  if (r.cancel && !j.cancelRequested) next = { ...next, cancelRequested: r.cancel };
  if (r.rollback && !j.rollbackRequested) next = { ...next, rollbackRequested: r.rollback };
  return next;
}

export async function runUpgradeOnce(
  pair: HAPair,
  staged: StagedPackage,
  deps: DriveDeps,
  spec: UpgradeSpec,
  persistence: DrivePersistence = {},
): Promise<UpgradeRun> {
  const clock = deps.clock ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const machine = deps.machine ?? upgradeMachine;
  const settings = deps.settings;
  const observeDeps: ObserveDeps = {
    pair,
    shell: deps.shell,
    healthProbe: deps.healthProbe,
    migrations: staged.migrations,
    ...(deps.keepalived ? { keepalived: deps.keepalived } : {}),
    ...(deps.lockMethod ? { lockMethod: deps.lockMethod } : {}),
    ...deps.observe,
  };
  const executor: ExecutorDeps = { ...deps, pair, staged, settings };

  if (deps.agents)
    await ensureAgents({ pair, shell: deps.shell, ...deps.agents, dryRun: deps.dryRun ?? false });

  let ctx: UpgradeContext;
  let journal: JournalFacts;
  // Config is compared once a CHECK_CONFIG step has run in this process; after
  // a restart the step runs again (it is idempotent).
  let configChecked = false;
  if (spec.resume) {
    ctx = spec.resume.ctx;
    journal = spec.resume.journal;
  } else {
    let master = spec.masterNode;
    let backup = spec.backupNode;
    if (!master || !backup) {
      const first = await observePair(observeDeps, { compareConfig: false });
      const holders = first.nodes.filter((n) => n.reachable && n.holdsVip);
      if (holders.length !== 1) {
        throw new Error(
          `cannot tell which node is the master: ${holders.length === 0 ? 'no node' : 'both nodes'} hold the VIP ${pair.spec.vip.address}`,
        );
      }
      master = holders[0]!.name;
      backup = first.nodes.find((n) => n.name !== master)!.name;
    }
    ctx = initialContext({
      masterNode: master,
      backupNode: backup,
      autoRollback: spec.autoRollback ?? settings.autoRollback,
      requiredHealthPasses: settings.healthCheckConsecutivePasses,
    });
    journal = emptyJournal(clock());
  }
  const save = () => persistence.save?.({ ctx, journal }) ?? Promise.resolve();
  const stepCtx = {
    upgradeId: spec.upgradeId,
    masterNode: ctx.masterNode,
    backupNode: ctx.backupNode,
    fromVersion: spec.request.fromVersion,
    targetVersion: spec.request.targetVersion,
    ...(spec.restoreDatabase ? { restoreDatabase: true } : {}),
  };

  const maxRounds = deps.maxRounds ?? 100_000;
  for (let round = 0; round < maxRounds; round++) {
    if (deps.signal?.aborted) {
      await save();
      return { ctx, journal, rounds: round, ended: 'aborted', reason: 'stopped by the operator' };
    }
    if (persistence.requests) journal = applyRequests(journal, await persistence.requests());
    const observation = await observePair(observeDeps, {
      compareConfig: configChecked,
    });
    const before = journal;
    journal = recordReachability(
      journal,
      Object.fromEntries(observation.nodes.map((n) => [n.name, n.reachable])),
      clock(),
    );
    if (journal.unreachableSinceMs !== before.unreachableSinceMs) await save();
    const now = clock();
    const action = plan({
      ctx,
      request: spec.request,
      settings,
      observed: observation,
      journal,
      nowMs: now,
    });
    const report = {
      round,
      phase: ctx.phase,
      observeMs: observation.durationMs,
      action,
      observation,
    };
    deps.log?.(describeAction(action), { upgradeId: spec.upgradeId, phase: ctx.phase });

    if (deps.dryRun && (action.kind === 'step' || action.kind === 'event')) {
      // Show what would happen next and stop: no transition is recorded.
      let reason = describeAction(action);
      if (action.kind === 'step') {
        const outcome = await executeStep(
          executor,
          { step: action.step, node: action.node },
          stepCtx,
        );
        persistence.onRound?.({ ...report, outcome });
        reason += outcome.ok
          ? ` (${outcome.detail ?? 'ok'})`
          : ` (${outcome.kind}: ${outcome.message})`;
      } else {
        const r = machine.transition(ctx, action.event, { at: new Date(now), actor: 'dry-run' });
        persistence.onRound?.({ ...report, transition: r.ok ? r.record : { refused: r.reason } });
        reason += r.ok ? ` (${r.record.from} -> ${r.record.to})` : ` (refused: ${r.reason})`;
      }
      return { ctx, journal, rounds: round + 1, ended: 'dry-run', reason };
    }
    switch (action.kind) {
      case 'done':
        persistence.onRound?.(report);
        await save();
        return { ctx, journal, rounds: round + 1, ended: 'done', reason: action.reason };
      case 'wait': {
        persistence.onRound?.(report);
        const ms = deps.waitMs ?? 1000;
        await sleep(action.untilMs === null ? ms : Math.max(0, Math.min(ms, action.untilMs - now)));
        break;
      }
      case 'event': {
        const e = action.event;
        if (e.type === 'CANCEL_REQUESTED')
          journal = { ...journal, requestsSent: [...journal.requestsSent, 'cancel'] };
        if (e.type === 'ROLLBACK_REQUESTED')
          journal = { ...journal, requestsSent: [...journal.requestsSent, 'rollback'] };
        const r = machine.transition(ctx, e, {
          at: new Date(now),
          actor: deps.actor ?? 'pairshift-operator',
        });
        if (!r.ok) {
          persistence.onRound?.({ ...report, transition: { refused: r.reason } });
          // A refused request (cancel in a phase that cannot cancel) is
          // marked sent above and the run goes on; anything else would be
          // proposed again forever.
          if (e.type === 'CANCEL_REQUESTED' || e.type === 'ROLLBACK_REQUESTED') {
            await save();
            break;
          }
          await save();
          return { ctx, journal, rounds: round + 1, ended: 'stuck', reason: r.reason };
        }
        await persistence.transition?.(r.record, r.context);
        if (e.type === 'START') journal = { ...journal, upgradeStartedAtMs: now };
        ctx = r.context;
        journal = { ...journal, phaseEnteredAtMs: now, lastError: null };
        await save();
        persistence.onRound?.({ ...report, transition: r.record });
        break;
      }
      case 'step': {
        const outcome = await executeStep(
          executor,
          { step: action.step, node: action.node },
          stepCtx,
        );
        journal = recordStep(journal, action.step, action.node, outcome);
        if (action.step === 'CHECK_CONFIG' && outcome.ok) configChecked = true;
        await save();
        persistence.onRound?.({ ...report, outcome });
        // A transient failure is retried after a pause, not at once.
        if (!outcome.ok && outcome.kind !== 'terminal') await sleep(deps.waitMs ?? 1000);
        break;
      }
    }
  }
  await save();
  return {
    ctx,
    journal,
    rounds: maxRounds,
    ended: 'stuck',
    reason: `no end after ${maxRounds} rounds`,
  };
}
