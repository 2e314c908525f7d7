// Compare what the prober was told about its writes with what each node
// holds afterwards. Pure: the rows present are read elsewhere.
//
// - An acked seq missing on any node is a lost acknowledged write. This is
//   the number that must be 0.
// - An unknown-outcome seq present on a node "landed"; absent, it did not.
//   Neither is loss: the client was never told it succeeded.
// - A failed seq present on a node means the prober's classification is
//   wrong (a write it called "definitely not written" exists). It is
//   reported so the instrument can be caught lying.
import type { WriteOutcome } from './write-outcome.js';

export interface WriteRecord {
  seq: number;
  outcome: WriteOutcome;
}

export interface NodeRows {
  node: string;
  /** Seqs of this run found in the node's table. */
  present: ReadonlySet<number>;
}

export interface NodeLoss {
  node: string;
  missingAcked: number[];
  unknownLanded: number[];
  failedButPresent: number[];
  /** Present seqs the prober never attempted (another writer, or a bug). */
  unexpected: number[];
}

export interface LossCheck {
  acked: number;
  /** Acked seqs missing on at least one node. */
  lostAcknowledged: number;
  lostSeqs: number[];
  /** Unknown-outcome seqs present on at least one node. */
  unknownLanded: number[];
  /** Unknown-outcome seqs present on no node. */
  unknownNotLanded: number[];
  failedButPresent: number[];
  nodes: NodeLoss[];
}

export function checkLoss(writes: readonly WriteRecord[], nodes: readonly NodeRows[]): LossCheck {
  const outcomeBySeq = new Map<number, WriteOutcome>();
  for (const w of writes) {
    if (outcomeBySeq.has(w.seq)) throw new Error(`write seq ${w.seq} recorded twice`);
    outcomeBySeq.set(w.seq, w.outcome);
  }
  const ascending = [...outcomeBySeq.keys()].sort((a, b) => a - b);
  const perNode: NodeLoss[] = nodes.map(({ node, present }) => {
    const loss: NodeLoss = {
      node,
      missingAcked: [],
      unknownLanded: [],
      failedButPresent: [],
      unexpected: [],
    };
    for (const seq of ascending) {
      const outcome = outcomeBySeq.get(seq);
      const has = present.has(seq);
      if (outcome === 'acked' && !has) loss.missingAcked.push(seq);
      else if (outcome === 'unknown' && has) loss.unknownLanded.push(seq);
      else if (outcome === 'failed' && has) loss.failedButPresent.push(seq);
    }
    for (const seq of present) if (!outcomeBySeq.has(seq)) loss.unexpected.push(seq);
    loss.unexpected.sort((a, b) => a - b);
    return loss;
  });
  const union = (pick: (n: NodeLoss) => number[]) =>
    [...new Set(perNode.flatMap(pick))].sort((a, b) => a - b);
  const lostSeqs = union((n) => n.missingAcked);
  const unknownLanded = union((n) => n.unknownLanded);
  const landed = new Set(unknownLanded);
  return {
    acked: ascending.filter((s) => outcomeBySeq.get(s) === 'acked').length,
    lostAcknowledged: lostSeqs.length,
    lostSeqs,
    unknownLanded,
    unknownNotLanded: ascending.filter((s) => outcomeBySeq.get(s) === 'unknown' && !landed.has(s)),
    failedButPresent: union((n) => n.failedButPresent),
    nodes: perNode,
  };
}
