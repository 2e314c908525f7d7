// Two operator replicas as two processes (test/support/kube-replica.ts, the
// CLI's Kubernetes wiring) against the test API server, sharing a real
// PostgreSQL store and a simulated pair kept in a file that logs every side
// effect. The leader is frozen with SIGSTOP mid-upgrade, past its Lease: the
// second replica takes over and finishes the upgrade from the store's
// journal; SIGCONTed, the first one must not act (it lost the Lease), and no
// side effect is ever repeated (issue 12 points 1 and 6).
import { type ChildProcess, spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { jest } from '@jest/globals';
import { transformFileSync } from '@swc/core';
import { parse } from 'yaml';
import { loadMemory } from '../../src/store/journal-store.js';
import { migrate } from '../../src/store/migrate.js';
import { openPostgres } from '../../src/store/postgres.js';
import { type PgCluster, startPgCluster } from '../support/pg-cluster.js';
import {
  type Cluster,
  exampleHAPairText,
  HAP,
  LEASES,
  NS,
  sleep,
  startCluster,
  UR,
  upgradeRequest,
  waitFor,
} from './support.js';

jest.setTimeout(150_000);

const ROOT = join(import.meta.dirname, '..', '..');
const OUT = join(ROOT, '.pairshift', 'kube-replica');
/** durationSeconds, renewIntervalMs, renewDeadlineMs */
const LEASE = '3,500,2000';

let cluster: Cluster;
let pg: PgCluster;
let simDir: string;
const children: { child: ChildProcess; out: string[] }[] = [];

/** jest's transform does not reach a child process: transpile the replica and src once. */
function transpile(): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(join(ROOT, 'src'));
  files.push(join(ROOT, 'test/support/kube-replica.ts'), join(ROOT, 'test/support/sim-pair.ts'));
  for (const f of files) {
    const { code } = transformFileSync(f, {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'es6' },
      swcrc: false,
    });
    const to = join(OUT, relative(ROOT, f)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, code);
  }
  return join(OUT, 'test/support/kube-replica.js');
}

function startReplica(script: string, identity: string, stopAt?: string) {
  const child = spawn(process.execPath, [script], {
    env: {
      ...process.env,
      REPLICA_KUBECONFIG: cluster.kubeconfigPath,
      REPLICA_NAMESPACE: NS,
      REPLICA_IDENTITY: identity,
      REPLICA_DATABASE_URL: pg.url,
      REPLICA_SIM_DIR: simDir,
      REPLICA_LEASE: LEASE,
      ...(stopAt ? { REPLICA_STOP_AT: stopAt } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  const keep = (b: Buffer) => out.push(...b.toString().split('\n').filter(Boolean));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  children.push({ child, out });
  return { child, out, said: (line: string) => out.some((l) => l.startsWith(line)) };
}

const effects = (): string[] => {
  try {
    return readFileSync(join(simDir, 'effects.log'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

beforeAll(async () => {
  [cluster, pg] = await Promise.all([startCluster(), startPgCluster()]);
  const db = await openPostgres(pg.url);
  await migrate(db);
  await db.close();
  simDir = mkdtempSync(join(tmpdir(), 'pairshift-replicas-'));
});

afterAll(async () => {
  for (const { child } of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  await cluster?.close();
  await pg?.stop();
  rmSync(simDir, { recursive: true, force: true });
});

test('the leader SIGSTOPped past its Lease: the second replica finishes from the journal; SIGCONTed, the first does not act; nothing is repeated', async () => {
  const script = transpile();
  const pair = parse(exampleHAPairText());
  cluster.server.put(HAP, {
    ...pair,
    metadata: { ...pair.metadata, name: 'billing', namespace: NS },
  });
  cluster.server.put(UR, upgradeRequest('frozen'));
  const holder = () => cluster.server.object(LEASES, 'pairshift-operator')?.spec?.holderIdentity;
  const phase = () => cluster.server.object(UR, 'frozen')?.status?.phase;

  // Frozen between the two backups: the next step (BACKUP@node-b) is one
  // whose repetition shows (a second backup set), and op-a's memory in hand
  // is about to go stale.
  const a = startReplica(script, 'op-a', 'BACKUP@node-a');
  await waitFor('op-a to lead', () => holder() === 'op-a', 30_000);
  const b = startReplica(script, 'op-b');
  await waitFor('op-b ready', () => b.said('READY op-b'), 30_000);
  expect(holder()).toBe('op-a');

  await waitFor('op-a to freeze itself', () => a.said('SIGSTOP op-a'), 60_000);
  const frozenAt = Date.now();
  const beforeFreeze = effects().length;
  expect(effects().every((l) => l.endsWith(' op-a'))).toBe(true);
  await waitFor('op-b to take the Lease', () => holder() === 'op-b', 15_000);
  // Not before the Lease ran out, as measured by op-b.
  expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(2500);
  await waitFor('frozen COMPLETE', () => phase() === 'COMPLETE', 60_000);

  a.child.kill('SIGCONT');
  await waitFor('op-a running again', () => a.said('SIGCONT op-a'), 10_000);
  // Its timers and the reconcile it was in run now; its Lease is stale.
  await sleep(4000);
  expect(a.child.exitCode).toBeNull();
  const all = effects();
  // After the freeze only op-b changed the pair, and no step changed it twice.
  expect(all.slice(beforeFreeze).every((l) => l.endsWith(' op-b'))).toBe(true);
  expect(all.slice(beforeFreeze).length).toBeGreaterThan(0);
  const keys = all.map((l) => l.split(' ')[0]);
  expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  const sim = JSON.parse(readFileSync(join(simDir, 'pair.json'), 'utf8'));
  expect(sim.backupsTaken).toEqual({ 'node-a': 1, 'node-b': 1 });
  expect(sim.nodes.map((n: { installedVersion: string }) => n.installedVersion)).toEqual([
    '2.0.0',
    '2.0.0',
  ]);
  expect(holder()).toBe('op-b');
  expect(phase()).toBe('COMPLETE');
  expect(cluster.server.object(UR, 'frozen')!.status.progress).toBe(100);
  // op-a's stale memory did not overwrite the journal op-b wrote.
  const db = await openPostgres(pg.url);
  try {
    expect((await loadMemory(db, 'frozen'))?.context.phase).toBe('COMPLETE');
  } finally {
    await db.close();
  }
});
