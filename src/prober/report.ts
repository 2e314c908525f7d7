// Human-readable text for a ProbeReport, and the verdict on it. Pure.
import type { KindReport, ProbeReport, ProgressSnapshot } from './prober.js';

const MAX_LISTED = 20;

export function formatReport(r: ProbeReport): string {
  const lines: string[] = [];
  lines.push(
    `probe run ${r.runId}: ${seconds(r.durationMs)} at ${r.rateHz} Hz from ${r.startedAt}` +
      (r.skippedSlots ? ` (prober fell behind: ${r.skippedSlots} slots skipped)` : ''),
  );
  if (r.http) lines.push(...kindLines('http', r.http));
  if (r.db) {
    lines.push(...kindLines('db', r.db));
    const w = r.db.writes;
    lines.push(
      `  writes: ${w.acked} acknowledged, ${w.failed} failed (not written), ${w.unknown} outcome unknown` +
        `; connections opened ${r.db.connectionsOpened}, lost ${r.db.connectionsLost}`,
    );
  }
  const v = r.verification;
  if (v && 'error' in v) {
    lines.push(`verification FAILED to run: ${v.error}`);
  } else if (v) {
    for (const n of v.readbacks) {
      lines.push(
        `  node ${n.node} (${n.role}): ${n.rows} rows` +
          (n.role === 'standby' ? (n.caughtUp ? ', caught up' : ', DID NOT CATCH UP in time') : ''),
      );
    }
    lines.push(
      `verification: ${v.lostAcknowledged} of ${v.acked} acknowledged writes lost` +
        (v.lostAcknowledged ? ` (seqs ${list(v.lostSeqs)})` : ''),
    );
    for (const n of v.nodes) {
      if (n.missingAcked.length) {
        lines.push(`  missing on ${n.node}: ${list(n.missingAcked)}`);
      }
    }
    const unknownTotal = v.unknownLanded.length + v.unknownNotLanded.length;
    if (unknownTotal) {
      lines.push(
        `  outcome-unknown writes: ${v.unknownLanded.length} landed` +
          (v.unknownLanded.length ? ` (${list(v.unknownLanded)})` : '') +
          `, ${v.unknownNotLanded.length} did not`,
      );
    }
    if (v.failedButPresent.length) {
      lines.push(`  WARNING writes classified failed but present: ${list(v.failedButPresent)}`);
    }
  }
  return lines.join('\n');
}

function kindLines(kind: string, k: KindReport): string[] {
  const lines = [
    `${kind}: ${k.probes} probes, ${k.ok} ok, ${k.failed} failed` +
      (k.late ? `, ${k.late} handled too late to judge (prober busy)` : '') +
      '; ' +
      `longest outage ${ms(k.longestOutageMs)}, total ${ms(k.totalOutageMs)} in ${k.outages.length} outage(s)`,
  ];
  for (const w of k.outages.slice(0, MAX_LISTED)) {
    lines.push(
      `  outage ${ms(w.durationMs)} from ${w.from} to ${w.to} (${w.downProbes} probes down${w.open ? ', still down at the end' : ''})`,
    );
  }
  if (k.outages.length > MAX_LISTED) lines.push(`  ... ${k.outages.length - MAX_LISTED} more`);
  if (k.blind.length > 0) {
    lines.push(
      `  blind ${ms(k.blindMs)} in ${k.blind.length} window(s): the prober itself was busy (skipped slots, late results); an outage there is not seen`,
    );
  }
  if (k.okLatencyMs) {
    const l = k.okLatencyMs;
    lines.push(`  answered in p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)}`);
  }
  const reasons = Object.entries(k.reasons)
    .filter(([reason]) => reason !== 'ok')
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} x${n}`);
  if (reasons.length) lines.push(`  failures: ${reasons.join(', ')}`);
  return lines;
}

/** Why the run must be called a failure, or undefined when it passed. */
export function verdict(r: ProbeReport): string | undefined {
  const v = r.verification;
  if (!v) return undefined;
  if ('error' in v) return `could not verify the writes: ${v.error}`;
  if (v.lostAcknowledged > 0) {
    return `${v.lostAcknowledged} acknowledged write(s) missing after the run (seqs ${list(v.lostSeqs)})`;
  }
  if (v.failedButPresent.length > 0) {
    return `writes classified as failed were found on a node (seqs ${list(v.failedButPresent)}): the prober's classification is wrong`;
  }
  return undefined;
}

export function formatProgress(s: ProgressSnapshot): string {
  const parts = [`${seconds(s.elapsedMs)}`];
  if (s.http) parts.push(`http ${s.http.ok}/${s.http.probes} ok (${state(s.http.up)})`);
  if (s.db) parts.push(`db ${s.db.acked}/${s.db.probes} acked (${state(s.db.up)})`);
  return parts.join('  ');
}

function state(up: boolean | undefined): string {
  return up === undefined ? '-' : up ? 'up' : 'DOWN';
}

function list(seqs: readonly number[]): string {
  const shown = seqs.slice(0, MAX_LISTED).join(', ');
  return seqs.length > MAX_LISTED ? `${shown}, ... ${seqs.length - MAX_LISTED} more` : shown;
}

function ms(v: number): string {
  return `${Math.round(v)} ms`;
}

function seconds(v: number): string {
  return `${(v / 1000).toFixed(1)} s`;
}
