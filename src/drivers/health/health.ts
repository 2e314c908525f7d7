// The health driver (task list 2.2.5, 2.2.6, 4.2.7, 4.2.8): poll a node's
// agent until its /health has passed N times in a row, retrying a failed poll
// a bounded number of times at a fixed interval, within an overall deadline.
//
// checkHealth() is one health check as the task list means it: at most
// `retries` polls (3), `intervalMs` apart (10 s), within `timeoutMs` (30 s).
// ensureHealthy() asks for `consecutivePasses` UP answers in a row (3); a
// DOWN answer resets the run and uses up one retry; its deadline grows by one
// interval per extra pass required.
//
// Time comes from the injected `now`/`sleep`, so tests with fake time run
// instantly; every poll lands in the RecordSink (health_check_record).
//
// Errors: a failed poll while retries remain is a DriverError of kind
// 'waiting' (reported to onAttempt, recorded, not thrown). When retries or
// time run out: 'terminal' if the agent answered and said DOWN (the node is
// unhealthy; the retry policy has been applied already, so the upgrade should
// roll back rather than loop), 'transient' if no poll got an answer at all
// (the agent or the network is down: the reconciler may classify the node as
// UNREACHABLE and retry with backoff).

import type { HealthReport } from '../../agent/node/protocol.js';
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from '../../config/settings.js';
import { DriverError, isTimeout } from '../errors.js';
import type { HealthStatus, RecordSink } from '../records.js';

/** Gets one report from a node's agent within timeoutMs (or throws). */
export type HealthProbe = (node: string, timeoutMs: number) => Promise<HealthReport>;

export interface HealthDeps {
  readonly probe: HealthProbe;
  readonly records: RecordSink;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly upgradeId?: string | null;
  readonly onAttempt?: (a: PollOutcome) => void;
}

export interface HealthPolicy {
  readonly consecutivePasses: number;
  /** how many failed polls are tolerated before giving up */
  readonly retries: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** one poll's own deadline (capped by the time left) */
  readonly pollTimeoutMs: number;
}

export function policyFrom(
  settings: UpgradeSettings = BUILT_IN_DEFAULTS,
  o: Partial<HealthPolicy> = {},
): HealthPolicy {
  return {
    consecutivePasses: o.consecutivePasses ?? settings.healthCheckConsecutivePasses,
    retries: o.retries ?? settings.healthCheckRetries,
    intervalMs: o.intervalMs ?? settings.healthCheckInterval,
    timeoutMs: o.timeoutMs ?? settings.healthCheckTimeout,
    pollTimeoutMs: o.pollTimeoutMs ?? 10_000,
  };
}

export interface PollOutcome {
  readonly attempt: number;
  readonly at: number;
  readonly up: boolean;
  /** undefined when the agent did not answer */
  readonly report?: HealthReport;
  readonly error?: DriverError;
}

// ---- pure core -------------------------------------------------------------

export interface PollState {
  readonly passes: number;
  readonly failures: number;
  readonly answered: boolean;
  readonly attempts: number;
}

export const START: PollState = { passes: 0, failures: 0, answered: false, attempts: 0 };

export type Next =
  | { readonly kind: 'passed'; readonly state: PollState }
  | { readonly kind: 'exhausted'; readonly state: PollState; readonly why: string }
  | { readonly kind: 'wait'; readonly state: PollState; readonly ms: number };

/** What to do after a poll: the whole retry and consecutive-pass policy. */
export function afterPoll(
  p: HealthPolicy,
  s: PollState,
  poll: { up: boolean; answered: boolean },
  now: number,
  deadline: number,
): Next {
  const state: PollState = {
    passes: poll.up ? s.passes + 1 : 0,
    failures: poll.up ? s.failures : s.failures + 1,
    answered: s.answered || poll.answered,
    attempts: s.attempts + 1,
  };
  if (state.passes >= p.consecutivePasses) return { kind: 'passed', state };
  if (state.failures >= p.retries) {
    return {
      kind: 'exhausted',
      state,
      why: `${state.failures} failed polls (at most ${p.retries})`,
    };
  }
  if (now + p.intervalMs > deadline) {
    return {
      kind: 'exhausted',
      state,
      why: `no time left for another poll within ${p.timeoutMs} ms`,
    };
  }
  return { kind: 'wait', state, ms: p.intervalMs };
}

export function deadlineOf(p: HealthPolicy, start: number): number {
  return start + p.timeoutMs + (p.consecutivePasses - 1) * p.intervalMs;
}

export function downChecks(r: HealthReport): string {
  const down = r.checks.filter((c) => c.status !== 'UP');
  if (down.length === 0) return r.checks.length === 0 ? 'the agent reported no checks' : 'DOWN';
  return down.map((c) => `${c.name}: ${c.detail}`).join('; ');
}

// ---- I/O edge ----------------------------------------------------------------

async function record(
  deps: HealthDeps,
  node: string,
  o: PollOutcome,
  roundTripMs: number | null,
): Promise<void> {
  const upgradeId = deps.upgradeId ?? null;
  const checkedAt = new Date(o.at);
  if (o.report) {
    for (const c of o.report.checks) {
      await deps.records.healthCheck({
        upgradeId,
        node,
        checkName: c.name,
        status: c.status,
        attempt: o.attempt,
        responseTimeMs: c.responseTimeMs,
        checkedAt,
        detail: c.detail,
      });
    }
  }
  const status: HealthStatus = o.report ? o.report.status : isTimeout(o.error) ? 'TIMEOUT' : 'DOWN';
  await deps.records.healthCheck({
    upgradeId,
    node,
    checkName: 'health',
    status,
    attempt: o.attempt,
    responseTimeMs: roundTripMs,
    checkedAt,
    detail: o.report
      ? `role ${o.report.role}${o.up ? '' : `; ${downChecks(o.report)}`}`
      : (o.error?.message ?? null),
  });
}

export interface HealthResult {
  readonly node: string;
  readonly report: HealthReport;
  readonly attempts: number;
  readonly passes: number;
}

/** Polls until `consecutivePasses` UP answers in a row, or throws. */
export async function ensureHealthy(
  node: string,
  deps: HealthDeps,
  options: Partial<HealthPolicy> & { settings?: UpgradeSettings } = {},
): Promise<HealthResult> {
  const p = policyFrom(options.settings, options);
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const start = now();
  const deadline = deadlineOf(p, start);
  let state = START;
  let last: PollOutcome | undefined;
  for (;;) {
    const attempt = state.attempts + 1;
    const at = now();
    const pollTimeout = Math.max(1, Math.min(p.pollTimeoutMs, deadline - at));
    let outcome: PollOutcome;
    let roundTrip: number | null = null;
    try {
      const report = await deps.probe(node, pollTimeout);
      roundTrip = now() - at;
      const up = report.status === 'UP';
      outcome = {
        attempt,
        at,
        up,
        report,
        ...(up
          ? {}
          : {
              error: new DriverError(`/health is DOWN: ${downChecks(report)}`, {
                kind: 'waiting',
                node,
              }),
            }),
      };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      outcome = {
        attempt,
        at,
        up: false,
        error: new DriverError(`no answer from the agent: ${message}`, {
          kind: 'waiting',
          node,
          cause: err,
        }),
      };
    }
    last = outcome;
    await record(deps, node, outcome, roundTrip);
    deps.onAttempt?.(outcome);
    const next = afterPoll(
      p,
      state,
      { up: outcome.up, answered: outcome.report !== undefined },
      now(),
      deadline,
    );
    state = next.state;
    if (next.kind === 'passed')
      return { node, report: outcome.report!, attempts: state.attempts, passes: state.passes };
    if (next.kind === 'exhausted') {
      const lastProblem = last.error?.problem ?? 'DOWN';
      throw new DriverError(
        `not healthy after ${state.attempts} polls (${next.why}); last: ${lastProblem}`,
        { kind: state.answered ? 'terminal' : 'transient', node, cause: last.error },
        [`waiting for ${p.consecutivePasses} consecutive healthy answers`],
      );
    }
    await sleep(next.ms);
  }
}

/** One health check (task list 2.2.5/2.2.6): up to 3 polls, 10 s apart, 30 s in all. */
export function checkHealth(
  node: string,
  deps: HealthDeps,
  options: Partial<Omit<HealthPolicy, 'consecutivePasses'>> & { settings?: UpgradeSettings } = {},
): Promise<HealthResult> {
  return ensureHealthy(node, deps, { ...options, consecutivePasses: 1 });
}
