// Graceful shutdown and the probes/metrics port of a real `pairshift
// operator` process, on one real upgrade 1.0.0 -> 2.0.0 of lab "ob1":
// 1. an operator gets SIGTERM while it runs BACKUP on a: /readyz turns 503
//    at once, the step finishes and is recorded (DONE), no further step
//    starts, the process exits 0 well within its grace;
// 2. the next operator, with a grace of 1 ms, gets SIGTERM while it runs
//    START_SERVICES on b: it exits 1 naming the step it left running (as
//    after a kill, the journal shows it in flight);
// 3. a third operator resumes from there to COMPLETE, with nothing repeated
//    (resume-checks.ts, as the SIGKILL test checks), and its /metrics,
//    scraped before and during the upgrade and after it, show the series
//    moving: reconciles, SSH commands, steps per phase, one COMPLETE, one
//    VIP switch sample.
// The embedded store is single-process, so it is read between runs only.
// Needs root and what docs/lab.md lists.
import { jest } from '@jest/globals';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { parsePromText, type Sample, sampleValue, sumOf } from '../support/prom-text.js';
import {
  buildDist,
  type ChildOperator,
  clientFigures,
  OperatorLab,
  sleep,
  stepsOf,
  withStore,
} from './operator-harness.js';
import { expectCompletedOnce } from './resume-checks.js';

jest.setTimeout(2_400_000);

const lab = new OperatorLab('ob1');
const NAME = 'ob1-sigterm';

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

/** An operator child with the probes port on an ephemeral port; its URL from its log. */
async function startWithProbes(dir: string, grace: string) {
  const child = lab.startChild(dir, {
    args: ['--metrics-listen', '127.0.0.1:0', '--shutdown-grace', grace],
  });
  const line = await child.waitFor(
    /probes and metrics listening on http:\/\/127\.0\.0\.1:\d+/,
    400_000,
  );
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)![0];
  return { child, url };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

async function scrape(url: string): Promise<Sample[]> {
  const r = await get(`${url}/metrics`);
  expect(r.status).toBe(200);
  return parsePromText(r.body);
}

async function exitWithin(child: ChildOperator, ms: number) {
  const t0 = Date.now();
  const ex = await Promise.race([
    child.exited,
    sleep(ms).then(() => {
      throw new Error(`the operator did not exit within ${ms} ms`);
    }),
  ]);
  return { ...ex, ms: Date.now() - t0 };
}

describe('SIGTERM mid-step, then a new operator resumes', () => {
  it('finishes the running step, exits 0, a cut step is named, the next operator completes with nothing repeated; metrics move', async () => {
    const store = await lab.newStore();
    await store.db.close();
    lab.writeRequest(NAME, lab.packages.v2);
    const prober = lab.startClientProber();
    await prober.started(); // measuring from here on
    let probe: unknown = null;
    try {
      await sleep(1500);

      // 1. SIGTERM while BACKUP on a runs: a clean drain.
      const one = await startWithProbes(store.dir, '50s');
      expect((await get(`${one.url}/livez`)).status).toBe(200);
      expect((await get(`${one.url}/readyz`)).status).toBe(200);
      await one.child.waitFor(/"BACKUP on a:/, 600_000);
      one.child.child.kill('SIGTERM');
      const ready = await get(`${one.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.body).checks).toContainEqual({
        name: 'shutdown',
        ok: false,
        reason: 'shutting_down',
      });
      // still alive while it drains: the kubelet must not kill it
      expect((await get(`${one.url}/livez`)).status).toBe(200);
      const ex1 = await exitWithin(one.child, 60_000);
      console.log(`run 1: exit ${ex1.code ?? ex1.signal} ${ex1.ms} ms after SIGTERM`);
      expect(ex1.code).toBe(0);
      expect(one.child.lines.some((l) => /stopped: every running step finished/.test(l))).toBe(
        true,
      );
      // no step began after BACKUP on a
      const afterBackup = one.child.lines.slice(
        one.child.lines.findIndex((l) => /"BACKUP on a:/.test(l)) + 1,
      );
      expect(afterBackup.filter((l) => /"[A-Z_]+ on [ab]:/.test(l))).toEqual([]);
      await withStore(store.dir, async (db) => {
        const steps = await stepsOf(db, NAME);
        expect(steps.filter((s) => s.status === 'RUNNING')).toEqual([]);
        const backupA = steps.find((s) => s.step === 'BACKUP/BACKUP@a');
        expect(backupA?.status).toBe('DONE');
        expect((await statusOf(db))?.phase).toBe('BACKUP');
      });

      // 2. A grace of 1 ms while START_SERVICES on b runs: exit 1, the step named.
      const two = await startWithProbes(store.dir, '1ms');
      await two.child.waitFor(/"START_SERVICES on b:/, 600_000);
      two.child.child.kill('SIGTERM');
      const ex2 = await exitWithin(two.child, 30_000);
      console.log(`run 2: exit ${ex2.code ?? ex2.signal} ${ex2.ms} ms after SIGTERM`);
      expect(ex2.code).toBe(1);
      expect(
        two.child.lines.some((l) =>
          /ran out with step\(s\) still running: ob1-sigterm: UPGRADE_BACKUP\/START_SERVICES@b/.test(
            l,
          ),
        ),
      ).toBe(true);

      // 3. A third operator resumes to COMPLETE; its metrics before, during, after.
      const three = await startWithProbes(store.dir, '50s');
      const before = await scrape(three.url);
      expect(sumOf(before, 'pairshift_upgrades_total')).toBe(0);
      expect(sampleValue(before, 'pairshift_leader')).toBe(1);
      await three.child.waitFor(/"SWITCHOVER on b:/, 600_000);
      const during = await scrape(three.url);
      // One reconcile carries the upgrade from the resume to its end, so
      // reconciles_total moves only after it; meanwhile the steps it ran and
      // the reconcile in flight show.
      expect(sumOf(during, 'pairshift_step_duration_seconds_count')).toBeGreaterThan(0);
      expect(sampleValue(during, 'pairshift_reconciles_running')).toBeGreaterThan(0);
      expect(sumOf(during, 'pairshift_ssh_command_duration_seconds_count')).toBeGreaterThan(0);
      expect((await get(`${three.url}/readyz`)).status).toBe(200);
      await three.child.waitFor(/VERIFY -> COMPLETE/, 600_000);
      // the status write and the VIP probe's stop come right after the transition
      let after = await scrape(three.url);
      for (
        let i = 0;
        i < 50 && sumOf(after, 'pairshift_upgrade_downtime_longest_seconds_count') === 0;
        i++
      ) {
        await sleep(200);
        after = await scrape(three.url);
      }
      console.log(
        `run 3 metrics: ${[
          'pairshift_reconciles_total',
          'pairshift_ssh_command_duration_seconds_count',
          'pairshift_step_duration_seconds_count',
          'pairshift_vip_switch_duration_seconds_sum',
          'pairshift_upgrade_downtime_longest_seconds_sum',
        ]
          .map((n) => `${n}=${sumOf(after, n)}`)
          .join(' ')}`,
      );
      expect(sampleValue(after, 'pairshift_upgrades_total', { result: 'COMPLETE' })).toBe(1);
      expect(sumOf(after, 'pairshift_reconciles_total')).toBeGreaterThan(
        sumOf(during, 'pairshift_reconciles_total'),
      );
      expect(sumOf(after, 'pairshift_ssh_command_duration_seconds_count')).toBeGreaterThan(
        sumOf(during, 'pairshift_ssh_command_duration_seconds_count'),
      );
      expect(
        Object.keys(
          Object.fromEntries(
            after
              .filter((s) => s.name === 'pairshift_ssh_command_duration_seconds_count')
              .map((s) => [s.labels.node, 1]),
          ),
        ).sort(),
      ).toEqual(['a', 'b']);
      for (const phase of ['VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY']) {
        expect([
          phase,
          sumOf(after, 'pairshift_step_duration_seconds_count', { phase, outcome: 'ok' }) > 0,
        ]).toEqual([phase, true]);
      }
      expect(
        sampleValue(after, 'pairshift_vip_switch_duration_seconds_count', { result: 'SUCCESS' }),
      ).toBe(1);
      expect(sampleValue(after, 'pairshift_upgrade_downtime_longest_seconds_count')).toBe(1);
      expect(
        sampleValue(after, 'pairshift_phase_duration_seconds_count', { phase: 'VERIFY' }),
      ).toBe(1);
      // nothing secret or free-text in a label: every label value is a short code
      for (const s of after) {
        for (const v of Object.values(s.labels)) expect(v).toMatch(/^[A-Za-z0-9_.+:-]{1,40}$/);
      }
      three.child.child.kill('SIGTERM');
      expect((await exitWithin(three.child, 50_000)).code).toBe(0);
    } finally {
      probe = await prober.stop().catch((e: unknown) => ({ error: String(e) }));
    }
    expect((await withStore(store.dir, statusOf))?.phase).toBe('COMPLETE');
    // START_SERVICES on b was left running by run 2: observed, and at most run again
    await expectCompletedOnce(lab, store.dir, NAME, { 'START_SERVICES on b:': 2 });
    const c = clientFigures(probe);
    console.log(
      `clients: HTTP longest ${c.httpLongestMs} ms, writes longest ${c.writeLongestMs} ms, ${c.acked} acked, ${c.lost} lost`,
    );
    expect(c.acked).toBeGreaterThan(100);
    expect(c.lost).toBe(0);
  });
});
