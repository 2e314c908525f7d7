// How `kubectl pairshift` shows UpgradeRequests and HAPairs read from the
// cluster. The upgrade itself is turned into the REST API's progress shape
// (progress-text.ts) so that both CLIs print it, judge it (exit-codes.ts)
// and watch it (upgrade-watch.ts) with the same code; what only the
// resources carry (the steps, the pair's nodes, the VIP switch, pending
// requests) is added here. Pure: objects in, text out.
import { haltOf } from '../core/conditions.js';
import { HAPPY_PATH, isPhase, type Phase } from '../core/phases.js';
import { eventTime, type KObject } from './kube-client.js';
import { type Progress, statusBlock } from './progress-text.js';

function phaseOf(ur: KObject): Phase {
  const p = ur.status?.phase;
  return isPhase(p) ? p : 'IDLE';
}

/** The UpgradeRequest as the REST API's progress answer would show it. */
export function progressOf(ur: KObject): Progress {
  const st = ur.status ?? {};
  const d = st.downtime;
  return {
    upgrade_id: ur.metadata.name,
    pair: ur.spec?.pairRef?.name ?? '?',
    target_version: ur.spec?.package?.version ?? st.targetVersion ?? '?',
    phase: typeof st.phase === 'string' ? st.phase : 'IDLE',
    progress_percent: typeof st.progress === 'number' ? st.progress : 0,
    current_step: st.currentStep ?? null,
    message: st.message ?? null,
    estimated_completion_time: st.estimatedCompletionTime ?? null,
    downtime: d
      ? {
          http_longest_ms: d.httpLongestMs,
          http_total_ms: d.httpTotalMs,
          budget_ms: d.budgetMs,
          within_budget: d.withinBudget,
        }
      : null,
    halted: haltOf(st.conditions, phaseOf(ur)),
  };
}

/** Phases still ahead on the happy path; none once it left it (ended, rolling back). */
export function phasesToCome(phase: string): string[] {
  const i = (HAPPY_PATH as readonly string[]).indexOf(phase);
  return i < 0 ? [] : HAPPY_PATH.slice(i + 1);
}

/** What the status knows of one node: only fields it carries, never guessed. */
const NODE_FIELDS = [
  'role',
  'version',
  'health',
  'healthy',
  'vipHolder',
  'replicationLag',
  'replicationLagBytes',
] as const;

function nodeRows(ur: KObject, pair: KObject | null): [string, string][] {
  if (!pair) return [['nodes', `pair ${ur.spec?.pairRef?.name ?? '?'} not found`]];
  const observed: KObject[] = Array.isArray(pair.status?.nodes) ? pair.status.nodes : [];
  const rows: [string, string][] = [];
  for (const n of (pair.spec?.nodes ?? []) as KObject[]) {
    const o = observed.find((x) => x?.name === n.name);
    const seen = o
      ? NODE_FIELDS.filter((f) => o[f] !== undefined)
          .map((f) => `${f}=${o[f]}`)
          .join(' ')
      : '';
    rows.push([
      'node',
      `${n.name} (${n.address ?? '?'})  ${seen || 'role, version, health, lag: not in the HAPair status'}`,
    ]);
  }
  const vip = pair.status?.vipHolder;
  const sw = ur.status?.vipSwitch;
  if (vip) rows.push(['VIP', `held by ${vip}`]);
  else if (sw)
    rows.push([
      'VIP',
      `last switch ${sw.from} -> ${sw.to}: ${sw.result} (attempt ${sw.attempt}${sw.durationMs !== undefined ? `, ${sw.durationMs} ms` : ''})`,
    ]);
  else rows.push(['VIP', 'holder not in the status']);
  return rows;
}

/** `kubectl pairshift status NAME`: the progress block, then steps, nodes and pending requests. */
export function statusText(ur: KObject, pair: KObject | null, at: Date): string {
  const p = progressOf(ur);
  const block = statusBlock(p, { at, timeoutLeftMs: null });
  // statusBlock's last row is when it looked; the rows below go before it
  const looked = block.pop() as string;
  const rows: [string, string][] = [];
  const done = (ur.status?.completedSteps ?? []) as KObject[];
  rows.push(['done', done.length ? `${done.length} steps` : 'no step yet']);
  for (const s of done) rows.push(['', `${s.at}  ${s.step}${s.node ? ` @${s.node}` : ''}`]);
  const ahead = phasesToCome(p.phase);
  rows.push(['to come', ahead.length ? `phases ${ahead.join(', ')}` : '-']);
  rows.push(...nodeRows(ur, pair));
  const spec = ur.spec ?? {};
  if (spec.options?.approved === false)
    rows.push(['approval', 'waiting: kubectl pairshift approve']);
  if (spec.cancel) rows.push(['cancel', `requested: ${spec.cancel.reason}`]);
  if (spec.rollback)
    rows.push([
      'rollback',
      `requested${spec.rollback.restoreDatabase ? ' with the database' : ''}: ${spec.rollback.reason}`,
    ]);
  return [
    ...block,
    ...rows.map(([k, v]) => `${k.padEnd(9)} ${String(v).replace(/\s*\n\s*/g, ' ')}`),
    looked,
  ].join('\n');
}

/** One history row's fields (also what -o json|yaml prints for history). */
export function historyItem(ur: KObject) {
  const st = ur.status ?? {};
  return {
    name: ur.metadata.name as string,
    pair: ur.spec?.pairRef?.name ?? null,
    version: ur.spec?.package?.version ?? null,
    phase: st.phase ?? 'IDLE',
    progress: st.progress ?? 0,
    created: ur.metadata.creationTimestamp ?? null,
    started: st.startedAt ?? null,
    finished: st.finishedAt ?? null,
  };
}

/** The history as a table, oldest first. */
export function historyTable(items: ReturnType<typeof historyItem>[]): string {
  const header = ['NAME', 'PAIR', 'VERSION', 'PHASE', 'PROGRESS', 'STARTED', 'FINISHED'];
  const rows = items.map((i) => [
    i.name,
    i.pair ?? '-',
    i.version ?? '-',
    i.phase,
    `${i.progress}%`,
    i.started ?? '-',
    i.finished ?? '-',
  ]);
  return table([header, ...rows]);
}

/** One log entry: an Event the operator recorded about the request. */
export function logItem(e: KObject) {
  return {
    time: eventTime(e),
    type: e.type ?? 'Normal',
    reason: e.reason ?? '',
    message: e.message ?? '',
  };
}

export function logLine(i: ReturnType<typeof logItem>): string {
  return `${i.time}  ${i.type.padEnd(7)} ${i.reason}: ${i.message.replace(/\s*\n\s*/g, ' ')}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((v, c) => v.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
