// The prober: the instrument that measures downtime and data loss seen by a
// client of the VIP. Invariants (docs/prober.md has the long form):
// - Probes run on a fixed-rate schedule; a slow probe never delays the next
//   slot, and a slot that finds no room (all probes/connections busy) counts
//   as down.
// - An outage is a maximal run of consecutive down probes, from the first
//   down probe's start to the next up probe's start.
// - Every write is acked, failed (certainly not written) or unknown (sent,
//   no answer); only a missing acked write is loss.
// - Read-back waits for standbys to replay the primary's WAL position before
//   it calls anything lost.
export { checkLoss, type LossCheck, type WriteRecord } from './loss-check.js';
export {
  PROBER_DEFAULTS,
  type ProbeReport,
  type Prober,
  type ProberOptions,
  startProber,
} from './prober.js';
export { formatProgress, formatReport, verdict } from './report.js';
export { computeOutages, type OutageSummary, type ProbeSample } from './timeline.js';
export { type Verification, verifyWrites } from './verify.js';
export { classifyWrite, type WriteAttempt, type WriteOutcome } from './write-outcome.js';
