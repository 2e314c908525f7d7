// Leader election on a Lease over real HTTP against the test API server,
// with short durations: one leader at a time, takeover after the leader
// stops renewing, immediate takeover after a release, stepping down when
// renewals fail.
import type { Subscription } from 'rxjs';
import { LeaseElector } from '../../src/sources/lease.js';
import { type Cluster, LEASES, NS, sleep, startCluster, waitFor } from './support.js';

let cluster: Cluster;
const electors: LeaseElector[] = [];
const subs: Subscription[] = [];
/** Overlap samplers still running: a failed test must not leave its interval behind (jest would not exit). */
const samplers: NodeJS.Timeout[] = [];

// Short, but with room for a loaded two-core CI machine.
const TIMING = { leaseDurationSeconds: 2, renewIntervalMs: 200, renewDeadlineMs: 1200 };

function elector(identity: string): LeaseElector {
  const e = new LeaseElector({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    identity,
    ...TIMING,
  });
  electors.push(e);
  return e;
}

/** Samples both electors every 10 ms; fails if both ever lead at once. */
function watchOverlap(a: LeaseElector, b: LeaseElector) {
  let overlaps = 0;
  const timer = setInterval(() => {
    if (a.isLeader && b.isLeader) overlaps++;
  }, 10);
  samplers.push(timer);
  return {
    stop() {
      clearInterval(timer);
      return overlaps;
    },
  };
}

beforeEach(async () => {
  cluster = await startCluster();
});

afterEach(async () => {
  for (const s of subs.splice(0)) s.unsubscribe();
  for (const t of samplers.splice(0)) clearInterval(t);
  for (const e of electors.splice(0)) await e.stop({ release: false });
  await cluster.close();
});

test('timing that could allow two leaders is refused', () => {
  expect(
    () =>
      new LeaseElector({
        kubeConfig: cluster.kubeConfig,
        namespace: NS,
        identity: 'x',
        leaseDurationSeconds: 1,
        renewIntervalMs: 100,
        renewDeadlineMs: 1500,
      }),
  ).toThrow(/renewInterval < renewDeadline < leaseDuration/);
});

test('two electors: exactly one leads; the other takes over after the leader stops renewing', async () => {
  const a = elector('replica-a');
  const b = elector('replica-b');
  const history: string[] = [];
  subs.push(a.isLeader$.subscribe((v) => history.push(`a:${v}`)));
  subs.push(b.isLeader$.subscribe((v) => history.push(`b:${v}`)));
  const overlap = watchOverlap(a, b);
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  b.start();
  await sleep(2500); // longer than the lease: a keeps renewing, b must not take over
  expect(a.isLeader).toBe(true);
  expect(b.isLeader).toBe(false);
  // Who leads, as each sees it (what the API names when an upload cannot reach it).
  expect([a.leader, b.leader]).toEqual(['replica-a', 'replica-a']);
  const lease = cluster.server.object(LEASES, 'pairshift-operator')!;
  expect(lease.spec.holderIdentity).toBe('replica-a');
  expect(lease.spec.leaseTransitions).toBe(0);
  expect(lease.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

  // a crashes: no release, no more renewals.
  const crashedAt = Date.now();
  await a.stop({ release: false });
  await waitFor('b to take over', () => b.isLeader, 6000);
  const tookMs = Date.now() - crashedAt;
  // Not before the lease ran out (b measures on its own clock from its last
  // observation), and not much later than duration + a renew interval.
  expect(tookMs).toBeGreaterThanOrEqual(1400);
  expect(tookMs).toBeLessThan(4000);
  expect(overlap.stop()).toBe(0);
  const after = cluster.server.object(LEASES, 'pairshift-operator')!;
  expect(after.spec.holderIdentity).toBe('replica-b');
  expect(after.spec.leaseTransitions).toBe(1);
  expect(b.leader).toBe('replica-b');
  expect(history).toEqual(['a:false', 'b:false', 'a:true', 'a:false', 'b:true']);
  // The steps above add up to about 5 s by design (2.5 s of steady leading,
  // then a lease duration and a renew interval): jest's default 5 s is no
  // bound for that on a shared two-core machine. The bounds that matter are
  // the takeover times asserted above.
}, 15_000);

test('a released lease is taken over at once', async () => {
  const a = elector('replica-a');
  const b = elector('replica-b');
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  b.start();
  await sleep(300);
  const overlap = watchOverlap(a, b);
  const releasedAt = Date.now();
  await a.stop(); // release
  expect(cluster.server.object(LEASES, 'pairshift-operator')!.spec.holderIdentity).toBe('');
  await waitFor('b to take over', () => b.isLeader, 2000);
  expect(Date.now() - releasedAt).toBeLessThan(1000);
  expect(overlap.stop()).toBe(0);
});

test('a leader that cannot renew steps down within the renew deadline', async () => {
  const a = elector('replica-a');
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  const lostAt = Date.now();
  await cluster.server.stop(); // the API server is gone
  await waitFor('a to step down', () => !a.isLeader, 3000);
  const tookMs = Date.now() - lostAt;
  expect(tookMs).toBeLessThan(TIMING.leaseDurationSeconds * 1000);
});

test('a conflicting write by another replica is a 409 and loses nothing', async () => {
  const a = elector('replica-a');
  const b = elector('replica-b');
  // Both start together: both may find no Lease and try to create it.
  a.start();
  b.start();
  await waitFor('someone to lead', () => a.isLeader || b.isLeader);
  await sleep(500);
  expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
  const creates = cluster.server.requests.filter(
    (r) => r.method === 'POST' && r.path.startsWith(LEASES),
  );
  expect(creates.filter((r) => r.status === 201)).toHaveLength(1);
});

test('holdsLease() reads the clock when asked: a leader frozen past its renew deadline does not hold the Lease before its next tick', async () => {
  let now = Date.now();
  const a = new LeaseElector({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    identity: 'replica-a',
    ...TIMING,
    // Long enough that no tick runs during the test after the first.
    renewIntervalMs: 1000,
    renewDeadlineMs: 1200,
    now: () => now,
  });
  electors.push(a);
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  expect(a.holdsLease()).toBe(true);
  // As after SIGSTOP/SIGCONT: wall time jumped, no timer has run yet.
  now += TIMING.leaseDurationSeconds * 1000 + 1;
  expect(a.isLeader).toBe(true);
  expect(a.holdsLease()).toBe(false);
});

test('confirmLease() reads the Lease: a holder that took it without waiting is noticed before the next renewal, the leader steps down at once, and takes it again when released', async () => {
  const a = new LeaseElector({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    identity: 'replica-a',
    ...TIMING,
    // One tick at start, the next only after the assertions below: what
    // notices the intruder here is confirmLease, not a renewal.
    renewIntervalMs: 1000,
    renewDeadlineMs: 1200,
  });
  electors.push(a);
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  expect(await a.confirmLease()).toBe(true);
  const lease = cluster.server.object(LEASES, 'pairshift-operator')!;
  cluster.server.put(LEASES, { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder' } });
  // By its own clock a still holds it: only the server knows otherwise.
  expect(a.holdsLease()).toBe(true);
  expect(await a.confirmLease()).toBe(false);
  expect(a.isLeader).toBe(false);
  expect(a.holdsLease()).toBe(false);
  // Released: taken again at a's next tick (an empty holder is not waited for).
  const taken = cluster.server.object(LEASES, 'pairshift-operator')!;
  cluster.server.put(LEASES, { ...taken, spec: { ...taken.spec, holderIdentity: '' } });
  await waitFor('a to lead again', () => a.isLeader, 5000);
  expect(cluster.server.object(LEASES, 'pairshift-operator')!.spec.holderIdentity).toBe(
    'replica-a',
  );
  expect(await a.confirmLease()).toBe(true);
});

test('confirmLease() with the API server away: the clock decides (nobody can take the Lease through it), so the leader acts until its renew deadline and no longer', async () => {
  let now = Date.now();
  const a = new LeaseElector({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    identity: 'replica-a',
    ...TIMING,
    renewIntervalMs: 1000,
    renewDeadlineMs: 1200,
    now: () => now,
  });
  electors.push(a);
  a.start();
  await waitFor('a to lead', () => a.isLeader);
  await cluster.server.stop();
  expect(await a.confirmLease()).toBe(true);
  now += 1201;
  expect(await a.confirmLease()).toBe(false);
});
