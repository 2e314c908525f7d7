// The reconciler's Lease gate on its own (no API server: a source whose
// Lease the test flips), on an embedded store and a simulated pair: a
// reconcile that loses the Lease in the middle of a step records nothing
// more and issues no next action; work queued before the step-down does
// nothing; the Lease back, the upgrade resumes from the journal with no side
// effect repeated. Fast: the faults in faults.test.ts cover the same over
// HTTP, this pins the gate itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Step } from '../../src/core/actions.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { createLogger } from '../../src/log/logger.js';
import { ReconcileLoop } from '../../src/reconciler/loop.js';
import { UpgradeReconciler } from '../../src/reconciler/reconciler.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import { loadMemory } from '../../src/store/journal-store.js';
import { migrate } from '../../src/store/migrate.js';
import { openPglite } from '../../src/store/pglite.js';
import { listSteps } from '../../src/store/progress-store.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { getUpgradeTask } from '../../src/store/upgrades.js';
import { SimRuntime } from '../support/sim-runtime.js';
import { exampleHAPairText, waitFor } from './support.js';

/**
 * A single-replica source whose Lease the test takes away the way a
 * takeover does: on the server first (heldOnServer), while this replica's
 * clock still says it leads until it looks (as LeaseElector.confirmLease
 * does: another holder seen, step down at once).
 */
class LeaseSource extends StandaloneSource {
  leading = true;
  heldOnServer = true;
  /** Times the reconciler asked the server-side question (confirmMayAct). */
  confirmations = 0;
  mayAct(): boolean {
    return this.leading;
  }
  async confirmMayAct(): Promise<boolean> {
    this.confirmations++;
    if (!this.heldOnServer) this.leading = false;
    return this.leading;
  }
}

/** The simulated pair; loseLeaseDuring names the step during which the Lease goes. */
class CountingRuntime extends SimRuntime {
  executions = 0;
  loseLeaseDuring: ((step: Step, node: string | null) => boolean) | null = null;
  constructor(private readonly source: LeaseSource) {
    super();
  }
  override async execute(
    step: Step,
    node: string | null,
    ctx: unknown,
    restoreDatabase: boolean,
  ): Promise<Awaited<ReturnType<SimRuntime['execute']>>> {
    this.executions++;
    const outcome = await super.execute(step, node, ctx, restoreDatabase);
    if (this.loseLeaseDuring?.(step, node)) {
      this.loseLeaseDuring = null;
      this.source.heldOnServer = false;
    }
    return outcome;
  }
}

// Creating the embedded store (PGlite's initdb) takes seconds on a loaded
// two-core machine; the upgrades themselves take well under one.
jest.setTimeout(60_000);

let dir: string;
let db: SqlClient;
const logger = createLogger({ stream: new PassThrough(), format: 'json' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-gate-'));
  db = await openPglite(join(dir, 'store'));
  await migrate(db);
});

afterAll(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function request(source: LeaseSource, name: string, pairName: string): Promise<void> {
  const raw = parse(exampleHAPairText());
  const text = JSON.stringify({ ...raw, metadata: { ...raw.metadata, name: pairName } });
  await source.putHAPair(parseHAPair(text, `HAPair ${pairName}`));
  await source.createUpgradeRequest({
    metadata: { name },
    spec: {
      pairRef: { name: pairName },
      package: { path: '/pkgs/app-2.0.0.tar.gz', version: '2.0.0' },
    },
  });
}

function reconcilerFor(source: LeaseSource, runtimes: Record<string, SimRuntime>) {
  return new UpgradeReconciler({
    source,
    db,
    settings: BUILT_IN_DEFAULTS,
    runtimes: async ({ upgradeId }) => runtimes[upgradeId]!,
    logger,
    now: () => new Date(),
    actor: 'operator@test',
  });
}

/** Reconciles until the reconciler asks for nothing more (a bounded number of times). */
async function runToEnd(r: UpgradeReconciler, name: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const out = await r.reconcile(name);
    if (out.requeueAfterMs === undefined) return;
  }
  throw new Error(`${name} did not finish in 500 reconciles`);
}

test('the Lease lost mid-step: no next action, no record of the step, no status; queued work does nothing; back, it resumes and repeats nothing', async () => {
  const source = new LeaseSource({ db });
  // The reference: the same upgrade with the Lease held throughout.
  const reference = new CountingRuntime(source);
  await request(source, 'gate-clean', 'gate-p0');
  await runToEnd(reconcilerFor(source, { 'gate-clean': reference }), 'gate-clean');
  expect((await source.getUpgradeRequest('gate-clean'))?.status?.phase).toBe('COMPLETE');

  await request(source, 'gate-a', 'gate-p1');
  await request(source, 'gate-b', 'gate-p2');
  const a = new CountingRuntime(source);
  const b = new CountingRuntime(source);
  a.loseLeaseDuring = (step, node) => step === 'INSTALL_PACKAGE' && node === 'node-b';
  const reconciler = reconcilerFor(source, { 'gate-a': a, 'gate-b': b });
  // One at a time, so gate-b is queued behind gate-a when the Lease goes.
  const loop = new ReconcileLoop({ concurrency: 1, reconcile: (k) => reconciler.reconcile(k) });
  const ended: string[] = [];
  loop.events$.subscribe((e) => {
    if (e.type !== 'started') ended.push(`${e.key} ${e.type}`);
  });
  try {
    loop.trigger('gate-a');
    loop.trigger('gate-b');
    await waitFor('both reconciles to end', () => ended.length >= 2, 30_000);
    // The step during which the Lease went was the last thing gate-a did.
    const atLoss = a.executions;
    expect(a.loseLeaseDuring).toBeNull();
    const status = (await source.getUpgradeRequest('gate-a'))?.status;
    expect(status?.phase).toBe('UPGRADE_BACKUP');
    expect(status?.currentStep).toBe('UPGRADE_BACKUP/INSTALL_PACKAGE@node-b');
    const row = (await listSteps(db, 'gate-a')).find(
      (s) => s.step === 'UPGRADE_BACKUP/INSTALL_PACKAGE@node-b',
    );
    expect(row?.status).toBe('RUNNING'); // not DONE: this replica no longer records
    const memory = await loadMemory(db, 'gate-a');
    // Queued before the step-down, run after it: nothing at all for gate-b.
    expect(b.executions).toBe(0);
    expect(await getUpgradeTask(db, 'gate-b')).toBeNull();
    expect(await loadMemory(db, 'gate-b')).toBeNull();
    expect(ended).toEqual(['gate-a succeeded', 'gate-b succeeded']);
    // Asked again without the Lease (a timer, a resync): still nothing.
    expect(await reconciler.reconcile('gate-a')).toEqual({});
    expect(a.executions).toBe(atLoss);
    expect(await loadMemory(db, 'gate-a')).toEqual(memory);
    expect((await source.getUpgradeRequest('gate-a'))?.status).toEqual(status);
  } finally {
    loop.stop();
  }
  // The Lease back: both finish from the journal, every side effect once.
  source.heldOnServer = true;
  source.leading = true;
  await runToEnd(reconciler, 'gate-a');
  await runToEnd(reconciler, 'gate-b');
  for (const name of ['gate-a', 'gate-b']) {
    expect((await source.getUpgradeRequest(name))?.status?.phase).toBe('COMPLETE');
  }
  expect(Object.fromEntries(a.effects)).toEqual(Object.fromEntries(reference.effects));
  expect(Object.fromEntries(b.effects)).toEqual(Object.fromEntries(reference.effects));
  expect(reference.effects.get('BACKUP@node-a')).toBe(1);
  expect(reference.effects.get('SWITCHOVER@node-b')).toBe(1);
  // The server-side question was asked (before actions and around steps).
  expect(source.confirmations).toBeGreaterThan(reference.executions);
});
