import fc from 'fast-check';
import pg from 'pg';
import { checkLoss, type WriteRecord } from '../../src/prober/loss-check.js';
import { formatReport, verdict } from '../../src/prober/report.js';
import { compareLsn } from '../../src/prober/verify.js';
import {
  attemptFromQueryError,
  classifyWrite,
  type WriteAttempt,
} from '../../src/prober/write-outcome.js';

describe('classifyWrite', () => {
  // Every shape of attempt, enumerated.
  const cases: [WriteAttempt, string][] = [
    [{ sent: false, reason: 'connect: ECONNREFUSED' }, 'failed'],
    [{ sent: false, reason: 'all connections busy' }, 'failed'],
    [{ sent: true, result: 'ack' }, 'acked'],
    [{ sent: true, result: 'server-error', severity: 'ERROR', code: '25006' }, 'failed'],
    [{ sent: true, result: 'server-error', severity: 'error', code: '23505' }, 'failed'],
    [{ sent: true, result: 'server-error', severity: 'FATAL', code: '57P01' }, 'unknown'],
    [{ sent: true, result: 'server-error', severity: 'PANIC' }, 'unknown'],
    [{ sent: true, result: 'connection-lost', reason: 'Connection terminated' }, 'unknown'],
    [{ sent: true, result: 'timeout' }, 'unknown'],
  ];
  it.each(cases)('%j is %s', (attempt, outcome) => {
    expect(classifyWrite(attempt)).toBe(outcome);
  });

  it('only an acknowledgement is acked, and nothing unsent is ever unknown', () => {
    const attempt: fc.Arbitrary<WriteAttempt> = fc.oneof(
      fc.record({ sent: fc.constant(false as const), reason: fc.string() }),
      fc.record({ sent: fc.constant(true as const), result: fc.constant('ack' as const) }),
      fc.record({
        sent: fc.constant(true as const),
        result: fc.constant('server-error' as const),
        severity: fc.constantFrom('ERROR', 'FATAL', 'PANIC', 'WARNING', 'weird'),
      }),
      fc.record({
        sent: fc.constant(true as const),
        result: fc.constant('connection-lost' as const),
        reason: fc.string(),
      }),
      fc.record({ sent: fc.constant(true as const), result: fc.constant('timeout' as const) }),
    );
    fc.assert(
      fc.property(attempt, (a) => {
        const o = classifyWrite(a);
        expect(o === 'acked').toBe(a.sent && a.result === 'ack');
        if (!a.sent) expect(o).toBe('failed');
        // "failed" claims certainty: only unsent or a plain ERROR may claim it
        if (o === 'failed' && a.sent) {
          expect(a.result === 'server-error' && a.severity.toUpperCase() === 'ERROR').toBe(true);
        }
      }),
    );
  });
});

describe('attemptFromQueryError', () => {
  const serverError = (severity: string, code: string) => {
    const e = new pg.DatabaseError('boom', 0, 'error');
    e.severity = severity;
    e.code = code;
    return e;
  };
  it('a server ERROR is failed, FATAL (terminated backend) is unknown', () => {
    expect(classifyWrite(attemptFromQueryError(serverError('ERROR', '25006')))).toBe('failed');
    expect(attemptFromQueryError(serverError('FATAL', '57P01'))).toEqual({
      sent: true,
      result: 'server-error',
      severity: 'FATAL',
      code: '57P01',
    });
    expect(classifyWrite(attemptFromQueryError(serverError('FATAL', '57P01')))).toBe('unknown');
  });
  it("pg's refusals on a client it knows is broken were never sent", () => {
    for (const msg of [
      'Client has encountered a connection error and is not queryable',
      'Client was closed and is not queryable',
    ]) {
      expect(classifyWrite(attemptFromQueryError(new Error(msg)))).toBe('failed');
    }
  });
  it('a socket dying under a sent statement is unknown', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (const err of [new Error('Connection terminated unexpectedly'), reset, 'weird']) {
      expect(classifyWrite(attemptFromQueryError(err))).toBe('unknown');
    }
  });
});

const outcomes = fc.constantFrom('acked' as const, 'failed' as const, 'unknown' as const);
const writes = fc
  .uniqueArray(fc.integer({ min: 1, max: 500 }), { maxLength: 80 })
  .chain((seqs) =>
    fc
      .array(outcomes, { minLength: seqs.length, maxLength: seqs.length })
      .map((os) => seqs.map((seq, i): WriteRecord => ({ seq, outcome: os[i]! }))),
  );

describe('checkLoss', () => {
  it('nodes holding every acked write lose nothing, whatever else they hold', () => {
    fc.assert(
      fc.property(
        writes,
        fc.integer({ min: 1, max: 3 }),
        fc.infiniteStream(fc.boolean()),
        (ws, n, coin) => {
          const nodes = Array.from({ length: n }, (_, i) => ({
            node: `n${i}`,
            present: new Set(
              ws
                .filter(
                  (w) => w.outcome === 'acked' || (w.outcome === 'unknown' && coin.next().value),
                )
                .map((w) => w.seq),
            ),
          }));
          const r = checkLoss(ws, nodes);
          expect(r.lostAcknowledged).toBe(0);
          expect(r.lostSeqs).toEqual([]);
          expect(r.acked).toBe(ws.filter((w) => w.outcome === 'acked').length);
          // unknowns split exactly into landed and not landed
          expect(r.unknownLanded.length + r.unknownNotLanded.length).toBe(
            ws.filter((w) => w.outcome === 'unknown').length,
          );
        },
      ),
    );
  });

  it('any acked write removed from any node is reported lost, exactly', () => {
    fc.assert(
      fc.property(
        writes.filter((ws) => ws.some((w) => w.outcome === 'acked')),
        fc.nat(),
        fc.nat(),
        (ws, pick, nodePick) => {
          const acked = ws.filter((w) => w.outcome === 'acked').map((w) => w.seq);
          const victim = acked[pick % acked.length]!;
          const victimNode = nodePick % 2;
          const nodes = [0, 1].map((i) => ({
            node: `n${i}`,
            present: new Set(acked.filter((s) => !(i === victimNode && s === victim))),
          }));
          const r = checkLoss(ws, nodes);
          expect(r.lostAcknowledged).toBe(1);
          expect(r.lostSeqs).toEqual([victim]);
          expect(r.nodes[victimNode]!.missingAcked).toEqual([victim]);
          expect(r.nodes[1 - victimNode]!.missingAcked).toEqual([]);
        },
      ),
    );
  });

  it('flags writes called failed that exist, and rows never attempted', () => {
    const r = checkLoss(
      [
        { seq: 1, outcome: 'acked' },
        { seq: 2, outcome: 'failed' },
        { seq: 3, outcome: 'unknown' },
        { seq: 4, outcome: 'unknown' },
      ],
      [
        { node: 'a', present: new Set([1, 2, 3, 99]) },
        { node: 'b', present: new Set([1, 3]) },
      ],
    );
    expect(r).toMatchObject({
      lostAcknowledged: 0,
      unknownLanded: [3],
      unknownNotLanded: [4],
      failedButPresent: [2],
    });
    expect(r.nodes[0]!.unexpected).toEqual([99]);
  });

  it('refuses a seq recorded twice', () => {
    expect(() =>
      checkLoss(
        [
          { seq: 1, outcome: 'acked' },
          { seq: 1, outcome: 'failed' },
        ],
        [],
      ),
    ).toThrow(/twice/);
  });
});

describe('compareLsn', () => {
  it('orders by the full 64-bit position, not the text', () => {
    expect(compareLsn('0/A0000000', '1/0')).toBe(-1);
    expect(compareLsn('16/B374D848', '16/B374D848')).toBe(0);
    expect(compareLsn('2/10', '2/F')).toBe(1);
  });
});

describe('report verdict and text', () => {
  const base = {
    runId: 'r1',
    startedAt: '2026-01-01T00:00:00.000Z',
    durationMs: 1000,
    rateHz: 50,
    skippedSlots: 0,
  };
  const verification = {
    acked: 3,
    lostAcknowledged: 1,
    lostSeqs: [2],
    unknownLanded: [],
    unknownNotLanded: [],
    failedButPresent: [],
    nodes: [
      {
        node: 'b:5432/app',
        missingAcked: [2],
        unknownLanded: [],
        failedButPresent: [],
        unexpected: [],
      },
    ],
    readbacks: [
      { node: 'b:5432/app', role: 'standby' as const, caughtUp: true, waitedMs: 3, rows: 2 },
    ],
  };
  it('a lost acknowledged write fails the run and is named', () => {
    const r = { ...base, verification };
    expect(verdict(r)).toMatch(/1 acknowledged write\(s\) missing .*seqs 2/);
    expect(formatReport(r)).toMatch(/missing on b:5432\/app: 2/);
  });
  it('no verification, no verdict; a verification that could not run fails', () => {
    expect(verdict(base)).toBeUndefined();
    expect(verdict({ ...base, verification: { error: 'cannot connect' } })).toMatch(
      /could not verify/,
    );
    expect(
      verdict({
        ...base,
        verification: { ...verification, lostAcknowledged: 0, lostSeqs: [], nodes: [] },
      }),
    ).toBeUndefined();
  });
});
