// A whole rolling upgrade of a real lab pair (lab "x1", one bring-up for the
// file) from 1.0.0 to 2.0.0, driven by runUpgradeOnce: observe -> plan ->
// execute/transition -> repeat, with a real signed v2 package staged by
// stagePackage and the agent installed by ensureAgents. Asserts the end
// state on the nodes themselves (both on 2.0.0, migrations applied, VIP and
// primary on the node upgraded first, rsync resumed, config consistent,
// root key untouched) and prints what each observation round and each step
// cost. Needs root and what docs/lab.md lists.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { jest } from '@jest/globals';
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from '../../src/config/settings.js';
import { pairHealthProbe } from '../../src/drivers/health-probes.js';
import { buildLabPackage, ensureLabSigningKey } from '../../src/lab/app/releases.js';
import { loadTrustedKey } from '../../src/packages/signing.js';
import { type StagedPackage, stagePackage } from '../../src/packages/stage.js';
import { ensureAgents } from '../../src/reconciler/agents.js';
import { type RoundReport, runUpgradeOnce } from '../../src/reconciler/drive.js';
import type { TransitionRecord } from '../../src/reconciler/machine.js';
import { observePair } from '../../src/reconciler/observe.js';
import { MemoryRecords } from '../../src/store/records.js';
import { compileAgent } from '../drivers/agent-build.js';
import { type ProbeJson, probeWhile, startTestLab, type TestLab } from './db-vip-lab.js';

jest.setTimeout(900_000);

let lab: TestLab;
let work: string;
let bundle: string;
let staged: StagedPackage;
let keys: Awaited<ReturnType<typeof ensureLabSigningKey>>;

const settings: UpgradeSettings = {
  ...BUILT_IN_DEFAULTS,
  // a failed poll is retried after 2 s rather than 10 s: the lab is fast
  healthCheckInterval: 2000,
};

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'x1-upgrade-'));
  bundle = join(work, 'agent');
  compileAgent(bundle);
  // the prober runs from the client namespace through the built CLI
  lab = await startTestLab('x1', { build: !existsSync('dist/cli/probe.js') });
  const keyDir = dirname(lab.pair.metadata.annotations!['pairshift.io/lab-package-public-key']!);
  keys = await ensureLabSigningKey(keyDir);
  const pkg = await buildLabPackage({
    version: '2.0.0',
    outDir: join(work, 'packages'),
    signingKey: keys.privateKeyPath,
  });
  staged = await stagePackage({
    path: pkg.packagePath,
    trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
    workDir: work,
  });
});

afterAll(async () => {
  await staged?.cleanup();
  await lab?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a whole upgrade of lab x1, 1.0.0 -> 2.0.0, through runUpgradeOnce', () => {
  it('ends COMPLETE with both nodes on 2.0.0, the VIP and primary on b, rsync resumed, config consistent', async () => {
    const { pair, shell } = lab;
    const agents = await ensureAgents({ pair, shell, sourceDir: bundle });
    expect(agents.map((a) => a.version)).toEqual([agents[0]!.version, agents[0]!.version]);
    const again = await ensureAgents({ pair, shell, sourceDir: bundle });
    expect(again.map((a) => a.state)).toEqual(['unchanged', 'unchanged']);

    const healthProbe = pairHealthProbe(pair, { via: 'http' });
    const observeDeps = { pair, shell, healthProbe, migrations: staged.migrations };
    const before = await observePair(observeDeps, { compareConfig: true });
    expect(before.nodes.map((n) => [n.name, n.installedVersion, n.appVersion, n.dbRole])).toEqual([
      ['a', '1.0.0', '1.0.0', 'primary'],
      ['b', '1.0.0', '1.0.0', 'standby'],
    ]);
    expect(before.nodes.map((n) => [n.holdsVip, n.healthy, n.servicesRunning])).toEqual([
      [true, true, true],
      [false, true, true],
    ]);
    expect(before.configConsistent).toBe(true);
    expect(before.migrationsApplied).toBe(false);
    const rootKey = async () =>
      sha((await lab.inLab('a', ['sh', '-c', 'od -An -tx1 /etc/app/root.key'])).stdout);
    const rootKeyBefore = await rootKey();

    const records = new MemoryRecords();
    const rounds: RoundReport[] = [];
    const transitions: TransitionRecord[] = [];
    const started = Date.now();
    let run: Awaited<ReturnType<typeof runUpgradeOnce>> | undefined;
    // clients through the VIP all along: HTTP /health and numbered inserts
    const probe: ProbeJson = await probeWhile(
      lab,
      async () => {
        run = await runUpgradeOnce(
          pair,
          staged,
          { shell, records, settings, healthProbe, waitMs: 500 },
          { upgradeId: 'x1-up-1', request: { fromVersion: '1.0.0', targetVersion: '2.0.0' } },
          {
            transition: async (r) => {
              transitions.push(r);
            },
            onRound: (r) => rounds.push(r),
          },
        );
      },
      // 20 Hz: the lowest rate; the Java service answers each /health with a database round trip
      { rateHz: 20 },
    );
    const totalMs = Date.now() - started;
    report(rounds, totalMs);
    console.log(
      `prober through the VIP: http longest outage ${probe.http.longestOutageMs} ms (${probe.http.outages.length} outages), db longest ${probe.db.longestOutageMs} ms, writes ${JSON.stringify(probe.db.writes)}, lost acknowledged ${probe.verification?.lostAcknowledged}`,
    );
    if (!run) throw new Error('the upgrade did not run');
    expect(probe.verification?.lostAcknowledged).toBe(0);
    expect(probe.db.writes.acked).toBeGreaterThan(200);
    expect(probe.db.longestOutageMs).toBeLessThan(5000);
    expect(probe.http.longestOutageMs).toBeLessThan(5000);

    expect(run).toMatchObject({ ended: 'done' });
    expect(run.ctx.phase).toBe('COMPLETE');
    expect(run.ctx.masterNode).toBe('a');
    expect(run.ctx.backupNode).toBe('b');
    expect(transitions.map((t) => t.to)).toEqual([
      'PREPARE',
      'BACKUP',
      'UPGRADE_BACKUP',
      'VIP_SWITCH',
      'UPGRADE_MASTER',
      'VERIFY',
      'COMPLETE',
    ]);
    // no step failed for good on the way
    const failed = rounds.filter((r) => r.outcome && !r.outcome.ok);
    expect(failed.filter((r) => r.outcome!.ok === false && r.outcome!.kind === 'terminal')).toEqual(
      [],
    );

    // the end state, read afresh from the nodes
    const after = await observePair(observeDeps, { compareConfig: true });
    expect(after.nodes.map((n) => [n.name, n.installedVersion, n.appVersion])).toEqual([
      ['a', '2.0.0', '2.0.0'],
      ['b', '2.0.0', '2.0.0'],
    ]);
    expect(after.nodes.map((n) => [n.dbRole, n.holdsVip])).toEqual([
      ['standby', false],
      ['primary', true],
    ]);
    expect(after.nodes.every((n) => n.healthy && n.servicesRunning)).toBe(true);
    expect(after.nodes.map((n) => [n.rsyncPaused, n.configLocked])).toEqual([
      [false, false],
      [false, false],
    ]);
    expect(after.configConsistent).toBe(true);
    expect(after.migrationsApplied).toBe(true);
    expect(await lab.psql('b', 'SELECT name FROM pairshift_schema_migrations ORDER BY name')).toBe(
      '001_app_events.sql',
    );
    // seen from outside both nodes: the VIP answers from b
    const version = await lab.inLab('client', [
      'curl',
      '-s',
      `http://${pair.spec.vip.address}:8080/version`,
    ]);
    expect(version.stdout.trim()).toBe('2.0.0');
    // the package's config change arrived on both nodes; the root key is byte-identical
    for (const n of ['a', 'b'] as const) {
      const props = await lab.inLab(n, ['cat', '/etc/app/release.properties']);
      expect(props.stdout).toContain('release.version=2.0.0');
    }
    expect(await rootKey()).toBe(rootKeyBefore);
    // the old jar is kept beside the new one
    expect((await lab.inLab('a', ['ls', '/opt/app'])).stdout).toContain('app.jar.1.0.0');

    // the records each driver wrote
    expect(
      records.backups.filter((b) => b.state === 'VERIFIED').map((b) => `${b.node}:${b.kind}`),
    ).toEqual(expect.arrayContaining(['a:jar', 'a:config', 'a:database', 'b:jar', 'b:config']));
    expect(records.vipSwitches.at(-1)).toMatchObject({ toNode: 'b', result: 'SUCCESS' });
    expect(records.configSyncs.at(-1)).toMatchObject({ upgradeId: 'x1-up-1', consistent: true });
    expect(records.rsyncStatuses.map((r) => `${r.node}:${r.state}`)).toEqual(
      expect.arrayContaining(['a:paused', 'b:paused', 'a:running', 'b:running']),
    );
    expect(existsSync(staged.dir)).toBe(false);

    // Resumed from its final state (an operator restarted after the end),
    // the run finds nothing to do and changes nothing.
    const resumed = await runUpgradeOnce(
      pair,
      staged,
      { shell, records: new MemoryRecords(), settings, healthProbe },
      {
        upgradeId: 'x1-up-1',
        request: { fromVersion: '1.0.0', targetVersion: '2.0.0' },
        resume: { ctx: run.ctx, journal: run.journal },
      },
    );
    expect(resumed).toMatchObject({ ended: 'done', rounds: 1 });
  });
});

/** Builds, signs and stages the lab package of a version. */
async function stageVersion(version: string, broken = false): Promise<StagedPackage> {
  const pkg = await buildLabPackage({
    version,
    broken,
    outDir: join(work, 'packages'),
    signingKey: keys.privateKeyPath,
  });
  return stagePackage({
    path: pkg.packagePath,
    trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
    workDir: work,
  });
}

const stepsOf = (rounds: readonly RoundReport[]) =>
  rounds.flatMap((r) =>
    r.action.kind === 'step' ? [`${r.action.step}${r.action.node ? ` ${r.action.node}` : ''}`] : [],
  );

describe('stopped mid-upgrade and resumed from the saved journal (2.0.0 -> 3.0.0)', () => {
  it('finishes without repeating a completed step', async () => {
    const { pair, shell } = lab;
    const healthProbe = pairHealthProbe(pair, { via: 'http' });
    const spec = {
      upgradeId: 'x1-up-2',
      request: { fromVersion: '2.0.0', targetVersion: '3.0.0' },
    };
    const first = await stageVersion('3.0.0');
    const stop = new AbortController();
    let saved = '';
    const rounds1: RoundReport[] = [];
    const r1 = await runUpgradeOnce(
      pair,
      first,
      {
        shell,
        records: new MemoryRecords(),
        settings,
        healthProbe,
        waitMs: 500,
        signal: stop.signal,
      },
      spec,
      {
        // what the store would hold: plain JSON
        save: async (state) => {
          saved = JSON.stringify(state);
        },
        onRound: (r) => {
          rounds1.push(r);
          if (r.action.kind === 'step' && r.action.step === 'SWITCHOVER') stop.abort();
        },
      },
    );
    expect(r1).toMatchObject({ ended: 'aborted' });
    expect(r1.ctx.phase).toBe('VIP_SWITCH');
    // the operator restarts: a new staging of the package, the journal from the store
    await first.cleanup();
    const second = await stageVersion('3.0.0');
    const rounds2: RoundReport[] = [];
    const r2 = await runUpgradeOnce(
      pair,
      second,
      { shell, records: new MemoryRecords(), settings, healthProbe, waitMs: 500 },
      { ...spec, resume: JSON.parse(saved) },
      { onRound: (r) => rounds2.push(r) },
    );
    report(rounds2, 0, 'resumed 2.0.0 -> 3.0.0');
    expect(r2).toMatchObject({ ended: 'done' });
    expect(r2.ctx.phase).toBe('COMPLETE');
    const before = stepsOf(rounds1);
    const after = stepsOf(rounds2);
    // master b, backup a: everything up to the switchover happened once
    expect(before).toEqual(
      expect.arrayContaining(['BACKUP a', 'BACKUP b', 'RUN_MIGRATIONS', 'SWITCHOVER a']),
    );
    for (const done of ['BACKUP', 'RUN_MIGRATIONS', 'SWITCHOVER', 'PAUSE_RSYNC', 'LOCK_CONFIG'])
      expect(after.filter((s) => s.startsWith(done))).toEqual([]);
    expect(after.filter((s) => / a$/.test(s) && !s.startsWith('UNLOCK_CONFIG'))).toEqual([]);
    const end = await observePair(
      { pair, shell, healthProbe, migrations: second.migrations },
      { compareConfig: true },
    );
    expect(end.nodes.map((n) => [n.installedVersion, n.appVersion, n.dbRole, n.holdsVip])).toEqual([
      ['3.0.0', '3.0.0', 'primary', true],
      ['3.0.0', '3.0.0', 'standby', false],
    ]);
    expect(end.configConsistent).toBe(true);
    expect(end.migrationsApplied).toBe(true);
  });
});

describe('a broken release rolls back by itself (3.0.0 -> 4.0.0 broken)', () => {
  it('ends FAILED after a rollback, both nodes back on 3.0.0 and serving', async () => {
    const { pair, shell } = lab;
    const healthProbe = pairHealthProbe(pair, { via: 'http' });
    const broken = await stageVersion('4.0.0', true);
    const rootKeyBefore = (await lab.inLab('b', ['sh', '-c', 'od -An -tx1 /etc/app/root.key']))
      .stdout;
    const rounds: RoundReport[] = [];
    const transitions: TransitionRecord[] = [];
    const records = new MemoryRecords();
    const started = Date.now();
    const run = await runUpgradeOnce(
      pair,
      broken,
      // the broken Java service never answers /health: do not wait 60 s for it
      {
        shell,
        records,
        settings,
        healthProbe,
        waitMs: 500,
        serviceTimeoutMs: 15_000,
        // the agents are current already: one observation each, no change
        agents: { sourceDir: bundle },
      },
      {
        upgradeId: 'x1-up-3',
        request: { fromVersion: '3.0.0', targetVersion: '4.0.0' },
        restoreDatabase: true,
      },
      {
        transition: async (t) => {
          transitions.push(t);
        },
        onRound: (r) => rounds.push(r),
      },
    );
    report(rounds, Date.now() - started, 'broken 3.0.0 -> 4.0.0');
    expect(run).toMatchObject({ ended: 'done' });
    expect(transitions.map((t) => t.to)).toEqual([
      'PREPARE',
      'BACKUP',
      'UPGRADE_BACKUP',
      'ROLLBACK',
      'FAILED',
    ]);
    expect(transitions[3]!.cause).toMatch(/b failed its health check after the upgrade/);
    // master a (VIP there since the last upgrade), backup b: only b changed
    expect(stepsOf(rounds)).toEqual(expect.arrayContaining(['RESTORE b']));
    const end = await observePair(
      { pair, shell, healthProbe, migrations: [] },
      { compareConfig: true },
    );
    expect(
      end.nodes.map((n) => [n.installedVersion, n.appVersion, n.healthy, n.servicesRunning]),
    ).toEqual([
      ['3.0.0', '3.0.0', true, true],
      ['3.0.0', '3.0.0', true, true],
    ]);
    expect(end.nodes.map((n) => [n.dbRole, n.holdsVip])).toEqual([
      ['primary', true],
      ['standby', false],
    ]);
    expect(end.nodes.map((n) => [n.rsyncPaused, n.configLocked])).toEqual([
      [false, false],
      [false, false],
    ]);
    expect(end.configConsistent).toBe(true);
    // the Python service was put back too, and the package's config change is gone
    for (const n of pair.spec.nodes) {
      const v = await lab.inLab('client', ['curl', '-s', `http://${n.address}:8081/version`]);
      expect(v.stdout).toContain('3.0.0');
      const props = await lab.inLab(n.name as 'a' | 'b', ['cat', '/etc/app/release.properties']);
      expect(props.stdout).toContain('release.version=3.0.0');
    }
    expect((await lab.inLab('b', ['sh', '-c', 'od -An -tx1 /etc/app/root.key'])).stdout).toBe(
      rootKeyBefore,
    );
    expect(records.healthChecks.some((h) => h.node === 'b' && h.status === 'DOWN')).toBe(true);
    // the database is back as dumped before 4.0.0's migration (task list 3.4.5)
    expect(
      rounds.some((r) => r.outcome?.ok && /database changed on a/.test(r.outcome.detail ?? '')),
    ).toBe(true);
    expect(
      await lab.psql(
        'a',
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'app_events' AND column_name = 'note'",
      ),
    ).toBe('0');
    expect(await lab.psql('a', 'SELECT name FROM pairshift_schema_migrations ORDER BY name')).toBe(
      '001_app_events.sql\n002_app_events_at_idx.sql',
    );
    expect(existsSync(broken.dir)).toBe(false);
  });
});

describe('a node that stops answering', () => {
  it('is reachable:false within one probe deadline; the round neither throws nor stalls', async () => {
    const { pair, shell } = lab;
    const healthProbe = pairHealthProbe(pair, { via: 'http' });
    // b's answers to the operator (the lab's uplink, .1) vanish: SSH and
    // HTTP to b hang rather than fail, as with a node that froze
    const uplink = pair.spec.nodes[0]!.address.replace(/\.\d+$/, '.1');
    await lab.inLab('b', ['ip', 'route', 'add', 'blackhole', `${uplink}/32`]);
    try {
      const t = performance.now();
      const o = await observePair(
        { pair, shell, healthProbe, migrations: [], probeTimeoutMs: 1000 },
        { compareConfig: true },
      );
      const ms = performance.now() - t;
      console.log(`observation with b frozen: ${Math.round(ms)} ms; ${o.problems.join(' | ')}`);
      expect(ms).toBeLessThan(3000);
      expect(o.nodes[0]).toMatchObject({
        name: 'a',
        reachable: true,
        dbRole: 'primary',
        holdsVip: true,
      });
      expect(o.nodes[1]).toMatchObject({ name: 'b', reachable: false, dbRole: 'unknown' });
      expect(o.configConsistent).toBeNull();
      expect(o.problems.some((p) => /^b: ssh: .*timed out/.test(p))).toBe(true);
    } finally {
      await lab.inLab('b', ['ip', 'route', 'del', 'blackhole', `${uplink}/32`]);
    }
    // and back: the next rounds see b again (its connection recovers or is reopened)
    let back = false;
    for (let i = 0; i < 20 && !back; i++) {
      const o = await observePair(
        { pair, shell, healthProbe, migrations: [] },
        { compareConfig: false },
      );
      back = o.nodes[1].reachable && o.nodes[1].dbRole === 'standby';
      if (!back) await new Promise((r) => setTimeout(r, 500));
    }
    expect(back).toBe(true);
  });
});

/** What each observation round and each step cost, for the report (docs). */
function report(
  rounds: readonly RoundReport[],
  totalMs: number,
  title = 'upgrade x1 1.0.0 -> 2.0.0',
): void {
  const obs = rounds.map((r) => r.observeMs).sort((a, b) => a - b);
  const q = (p: number) => obs[Math.min(obs.length - 1, Math.floor(p * obs.length))];
  const lines = [
    `${title}: ${rounds.length} rounds${totalMs ? ` in ${(totalMs / 1000).toFixed(1)} s` : ''}`,
    `observation round: median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${obs.at(-1)} ms`,
  ];
  // each probe's median over rounds and nodes: what a round is made of
  const perProbe = new Map<string, number[]>();
  for (const r of rounds)
    for (const t of Object.values(r.observation.timings))
      for (const [k, v] of Object.entries(t))
        if (v !== null) perProbe.set(k, [...(perProbe.get(k) ?? []), v]);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  lines.push(`  probe medians: ${[...perProbe].map(([k, xs]) => `${k} ${med(xs)} ms`).join(', ')}`);
  const problems = rounds.flatMap((r) => r.observation.problems);
  if (problems.length) lines.push(`  observation problems: ${[...new Set(problems)].join(' | ')}`);
  for (const r of rounds) {
    const a = r.action;
    const what =
      a.kind === 'step'
        ? `${a.step}${a.node ? ` ${a.node}` : ''}: ${r.outcome?.ok ? 'ok' : `${r.outcome?.ok === false ? r.outcome.kind : ''}`} ${r.outcome?.durationMs} ms${r.outcome?.detail ? ` (${r.outcome.detail})` : r.outcome && !r.outcome.ok ? ` (${r.outcome.message.slice(0, 160)})` : ''}`
        : a.kind === 'event'
          ? `event ${a.event.type}`
          : `${a.kind}: ${a.reason}`;
    lines.push(`  [${r.phase}] observe ${r.observeMs} ms; ${what}`);
  }
  console.log(lines.join('\n'));
}
