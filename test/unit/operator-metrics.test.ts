// The operator's instruments: events in, exposition text out, read back
// with a parser. Fast and pure; test/lab/operator-e2e.test.ts scrapes the
// same registry during a real upgrade.
import { Subject } from 'rxjs';
import { operatorProbes, startProbesServer } from '../../src/api/probes-server.js';
import { DriverError } from '../../src/drivers/errors.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { createOperatorMetrics } from '../../src/operator/metrics.js';
import type { LoopEvent } from '../../src/reconciler/loop.js';
import { parsePromText, sampleValue, sumOf } from '../support/prom-text.js';

async function scrape(m: ReturnType<typeof createOperatorMetrics>) {
  return parsePromText(await m.registry.metrics());
}

test('reconciles, errors, durations and the loop gauges', async () => {
  const m = createOperatorMetrics();
  const events = new Subject<LoopEvent>();
  const sub = m.followLoop(events);
  let queued = 3;
  m.readLoop(() => ({ queued, running: 1 }));
  m.readLeader(() => queued > 0);
  events.next({ type: 'started', key: 'u1' });
  events.next({ type: 'succeeded', key: 'u1', requeueAfterMs: null });
  events.next({ type: 'started', key: 'u1' });
  events.next({
    type: 'failed',
    key: 'u1',
    error: new DriverError('no', { kind: 'conflict' }),
    retryInMs: 0,
  });
  let s = await scrape(m);
  expect(sampleValue(s, 'pairshift_reconciles_total', { result: 'succeeded' })).toBe(1);
  expect(sampleValue(s, 'pairshift_reconciles_total', { result: 'failed' })).toBe(1);
  expect(sampleValue(s, 'pairshift_reconcile_errors_total', { kind: 'conflict' })).toBe(1);
  expect(sampleValue(s, 'pairshift_reconcile_duration_seconds_count')).toBe(2);
  expect(sampleValue(s, 'pairshift_reconcile_queue_depth')).toBe(3);
  expect(sampleValue(s, 'pairshift_reconciles_running')).toBe(1);
  expect(sampleValue(s, 'pairshift_leader')).toBe(1);
  queued = 0;
  s = await scrape(m);
  expect(sampleValue(s, 'pairshift_reconcile_queue_depth')).toBe(0);
  expect(sampleValue(s, 'pairshift_leader')).toBe(0);
  // the process's default metrics are there too
  expect(sampleValue(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  sub.unsubscribe();
});

test('steps, phases, upgrades by result, rollbacks by reason, downtime', async () => {
  const m = createOperatorMetrics();
  let s = await scrape(m);
  // nothing measured yet: no labelled series at all, and no downtime sample
  expect(s.filter((x) => x.name.startsWith('pairshift_step_duration'))).toEqual([]);
  expect(sampleValue(s, 'pairshift_upgrade_downtime_longest_seconds_count')).toBe(0);
  const r = m.reconcile;
  r.stepFinished?.({ upgradeId: 'u', phase: 'BACKUP', step: 'BACKUP', outcome: 'ok', seconds: 3 });
  r.stepFinished?.({
    upgradeId: 'u',
    phase: 'UPGRADE_BACKUP',
    step: 'CHECK_HEALTH',
    outcome: 'waiting',
    seconds: 0.2,
  });
  r.transitioned?.({
    from: 'BACKUP',
    to: 'UPGRADE_BACKUP',
    event: 'VERIFIED',
    secondsInPhase: 4,
  });
  r.transitioned?.({
    from: 'UPGRADE_BACKUP',
    to: 'ROLLBACK',
    event: 'STEP_FAILED',
    secondsInPhase: 9,
  });
  r.transitioned?.({ from: 'ROLLBACK', to: 'FAILED', event: 'ROLLBACK_DONE', secondsInPhase: 20 });
  r.transitioned?.({ from: 'VERIFY', to: 'COMPLETE', event: 'VERIFIED', secondsInPhase: null });
  r.downtimeMeasured?.({ httpLongestMs: 250, httpTotalMs: 400 });
  s = await scrape(m);
  expect(
    sampleValue(s, 'pairshift_step_duration_seconds_count', { step: 'BACKUP', outcome: 'ok' }),
  ).toBe(1);
  expect(
    sampleValue(s, 'pairshift_step_duration_seconds_sum', { step: 'BACKUP', outcome: 'ok' }),
  ).toBe(3);
  expect(
    sampleValue(s, 'pairshift_step_duration_seconds_bucket', {
      step: 'BACKUP',
      outcome: 'ok',
      le: '2.5',
    }),
  ).toBe(0);
  expect(
    sampleValue(s, 'pairshift_step_duration_seconds_count', {
      phase: 'UPGRADE_BACKUP',
      step: 'CHECK_HEALTH',
      outcome: 'waiting',
    }),
  ).toBe(1);
  expect(sampleValue(s, 'pairshift_phase_duration_seconds_sum', { phase: 'BACKUP' })).toBe(4);
  expect(sampleValue(s, 'pairshift_phase_duration_seconds_count', { phase: 'ROLLBACK' })).toBe(1);
  // a transition whose time in phase is unknown is counted but not timed
  expect(
    sampleValue(s, 'pairshift_phase_duration_seconds_count', { phase: 'VERIFY' }),
  ).toBeUndefined();
  expect(sampleValue(s, 'pairshift_upgrades_total', { result: 'FAILED' })).toBe(1);
  expect(sampleValue(s, 'pairshift_upgrades_total', { result: 'COMPLETE' })).toBe(1);
  expect(sampleValue(s, 'pairshift_rollbacks_total', { reason: 'STEP_FAILED' })).toBe(1);
  expect(sampleValue(s, 'pairshift_upgrade_downtime_longest_seconds_sum')).toBe(0.25);
  expect(sampleValue(s, 'pairshift_upgrade_downtime_total_seconds_sum')).toBe(0.4);
});

test('VIP switches are timed on their way to the store; a RUNNING row is not a sample', async () => {
  const m = createOperatorMetrics();
  const inner = new MemoryRecords();
  const records = m.records(inner);
  const base = {
    upgradeId: 'u',
    vip: '198.18.0.100',
    fromNode: 'a',
    toNode: 'b',
    method: 'switchover',
    attempt: 1,
    startedAt: new Date(),
  };
  await records.vipSwitch({ ...base, finishedAt: null, durationMs: null, result: 'RUNNING' });
  await records.vipSwitch({ ...base, finishedAt: new Date(), durationMs: 95, result: 'SUCCESS' });
  expect(inner.vipSwitches).toHaveLength(2);
  const s = await scrape(m);
  expect(sampleValue(s, 'pairshift_vip_switch_duration_seconds_count', { result: 'SUCCESS' })).toBe(
    1,
  );
  expect(sampleValue(s, 'pairshift_vip_switch_duration_seconds_sum', { result: 'SUCCESS' })).toBe(
    0.095,
  );
  expect(
    sampleValue(s, 'pairshift_vip_switch_duration_seconds_bucket', {
      result: 'SUCCESS',
      le: '0.1',
    }),
  ).toBe(1);
  expect(sumOf(s, 'pairshift_vip_switch_duration_seconds_count')).toBe(1);
});

test('SSH commands: latency per node, failures by bounded kind, an unknown node not counted', async () => {
  const m = createOperatorMetrics();
  // No sshd needed: a node whose port refuses fails to connect ('connect').
  const pool = new SshPool(
    [
      {
        node: 'a',
        host: '127.0.0.1',
        port: 1,
        username: 'root',
        privateKey: Buffer.from('not a key'),
        hostKeyFingerprints: ['SHA256:x'],
      },
    ],
    undefined,
    m.ssh,
  );
  await expect(pool.exec('a', ['true'])).rejects.toThrow();
  await expect(pool.exec('zz-unknown', ['true'])).rejects.toThrow('unknown node');
  m.ssh({ node: 'b', seconds: 0.03, failure: null });
  m.ssh({ node: 'b', seconds: 30, failure: 'timeout' });
  const s = await scrape(m);
  expect(sampleValue(s, 'pairshift_ssh_command_duration_seconds_count', { node: 'a' })).toBe(1);
  expect(
    sampleValue(s, 'pairshift_ssh_command_failures_total', { node: 'a', kind: 'connect' }),
  ).toBe(1);
  expect(sampleValue(s, 'pairshift_ssh_command_duration_seconds_count', { node: 'b' })).toBe(2);
  expect(
    sampleValue(s, 'pairshift_ssh_command_failures_total', { node: 'b', kind: 'timeout' }),
  ).toBe(1);
  expect(s.some((x) => x.labels.node === 'zz-unknown')).toBe(false);
  await pool.close();
});

test('two operators in one process keep separate registries', async () => {
  const a = createOperatorMetrics();
  const b = createOperatorMetrics();
  a.reconcile.transitioned?.({
    from: 'VERIFY',
    to: 'COMPLETE',
    event: 'VERIFIED',
    secondsInPhase: 1,
  });
  expect(sampleValue(await scrape(a), 'pairshift_upgrades_total', { result: 'COMPLETE' })).toBe(1);
  expect(
    sampleValue(await scrape(b), 'pairshift_upgrades_total', { result: 'COMPLETE' }),
  ).toBeUndefined();
});

test('the probes port: /livez, /readyz (503 while draining, naming the check), /metrics, nothing else', async () => {
  const m = createOperatorMetrics();
  let draining = false;
  let storeUp = true;
  let loopStopped = false;
  const deps = operatorProbes({
    storeQuery: async () => {
      if (!storeUp) throw new Error('connection refused to postgres://u:secret@db/x');
    },
    sourceState: () => ({ running: true }),
    sourceStarted: () => true,
    loopStopped: () => loopStopped,
    draining: () => draining,
    metrics: async () => ({
      contentType: m.registry.contentType,
      body: await m.registry.metrics(),
    }),
  });
  const probes = await startProbesServer('127.0.0.1:0', deps);
  try {
    const get = async (p: string) => {
      const r = await fetch(`${probes.url}${p}`);
      return { status: r.status, text: await r.text() };
    };
    expect((await get('/livez')).status).toBe(200);
    let ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text).checks.map((c: { name: string }) => c.name)).toEqual([
      'store',
      'source',
      'shutdown',
    ]);
    draining = true;
    ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text).checks).toContainEqual({
      name: 'shutdown',
      ok: false,
      reason: 'shutting_down',
    });
    draining = false;
    storeUp = false;
    ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.text).not.toContain('secret');
    expect(JSON.parse(ready.text).checks[0]).toEqual({ name: 'store', ok: false, reason: 'error' });
    // the store is not a liveness matter
    expect((await get('/livez')).status).toBe(200);
    loopStopped = true;
    expect((await get('/livez')).status).toBe(503);
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    expect(parsePromText(metrics.text).length).toBeGreaterThan(10);
    expect((await get('/api/v1/upgrade/progress')).status).toBe(404);
    expect((await fetch(`${probes.url}/livez`, { method: 'POST' })).status).toBe(405);
  } finally {
    await probes.stop();
    deps.stop();
  }
});
