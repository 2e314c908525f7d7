// The operator SIGKILLed at every step boundary of one real upgrade (lab
// "e2", 1.0.0 -> 2.0.0): `pairshift operator` runs as a child process with
// PAIRSHIFT_CHAOS_KILL_AFTER_ACTIONS=1, so each process records exactly one
// action (a phase change or a step) and kills itself, as a crash or an OOM
// kill would; it is started again until the UpgradeRequest is terminal. The
// embedded store is single-process, so the test reads it only between runs.
// A client prober runs through the VIP the whole time. The upgrade must
// finish COMPLETE with no acknowledged write lost and no completed step's
// side effect repeated. Needs root and what docs/lab.md lists.
import { jest } from '@jest/globals';
import { isTerminal, type Phase } from '../../src/core/phases.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { buildDist, clientFigures, OperatorLab, sleep, withStore } from './operator-harness.js';
import { expectCompletedOnce } from './resume-checks.js';

jest.setTimeout(1_800_000);

const lab = new OperatorLab('e2');
const NAME = 'e2-kill-every-step';

beforeAll(async () => {
  buildDist();
  await lab.up();
  await lab.buildPackages();
}, 600_000);

afterAll(async () => {
  await lab.dispose();
});

async function statusOf(db: SqlClient): Promise<UpgradeRequestStatus | null> {
  const [row] = await db.query<{ status: UpgradeRequestStatus | null }>(
    `SELECT status FROM resource WHERE kind = 'UpgradeRequest' AND name = $1`,
    [NAME],
  );
  return row?.status ?? null;
}

describe('the operator killed with SIGKILL after every recorded action', () => {
  it('still finishes the upgrade COMPLETE, loses no write and repeats no completed step', async () => {
    const store = await lab.newStore();
    await store.db.close();
    lab.writeRequest(NAME, lab.packages.v2);
    const prober = lab.startClientProber();
    await prober.started(); // measuring from here on
    const started = Date.now();
    const runs: { phase: Phase | 'none'; exit: string; ms: number }[] = [];
    let probe: unknown = null;
    try {
      await sleep(1500);
      for (;;) {
        const st = await withStore(store.dir, statusOf);
        if (st && isTerminal(st.phase) && st.finishedAt) break;
        if (runs.length >= 150) throw new Error(`not finished after ${runs.length} runs`);
        const t = Date.now();
        const child = lab.startChild(store.dir, { killAfterActions: 1 });
        // A run that only waits (nothing to record yet) is stopped after a while.
        const stall = setTimeout(() => child.child.kill('SIGTERM'), 90_000);
        const ex = await child.exited;
        clearTimeout(stall);
        runs.push({
          phase: st?.phase ?? 'none',
          exit: ex.signal ?? `code ${ex.code}`,
          ms: Date.now() - t,
        });
        if (ex.signal !== 'SIGKILL' && ex.signal !== 'SIGTERM')
          throw new Error(
            `the operator exited by itself (${ex.code}): ${child.stderr.slice(-800)}`,
          );
      }
    } finally {
      probe = await prober.stop().catch((e: unknown) => ({ error: String(e) }));
    }
    const totalMs = Date.now() - started;
    const killed = runs.filter((r) => r.exit === 'SIGKILL').length;
    const c = clientFigures(probe);
    console.log(
      `kill test: ${runs.length} operator runs (${killed} SIGKILLed after one action) in ${(totalMs / 1000).toFixed(1)} s, ` +
        `mean run ${(runs.reduce((s, r) => s + r.ms, 0) / runs.length / 1000).toFixed(1)} s; ` +
        `clients: HTTP longest ${c.httpLongestMs} ms, writes longest ${c.writeLongestMs} ms, ${c.acked} acked, ${c.lost} lost`,
    );
    console.log(runs.map((r) => `${r.phase}:${r.exit}:${r.ms}`).join(' '));

    expect((await withStore(store.dir, statusOf))?.phase).toBe('COMPLETE');
    await expectCompletedOnce(lab, store.dir, NAME);
    expect(c.acked).toBeGreaterThan(100);
    expect(c.lost).toBe(0);
    expect(killed).toBeGreaterThan(30);
  });
});
