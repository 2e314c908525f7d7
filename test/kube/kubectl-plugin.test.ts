// `kubectl pairshift` (issue 14.1) against the in-process Kubernetes API
// server, through a kubeconfig file as kubectl would hand it: every command,
// watch's exit code for each terminal phase and a halt, not found (3), an
// API that cannot be reached (4), usage errors (2), -o json|yaml parsed back.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { EXIT } from '../../src/cli/exit-codes.js';
import { pluginMain } from '../../src/cli/kubectl-plugin.js';
import type { KObject } from '../support/kube-api-server.js';
import { runEntry } from '../support/run-cli.js';
import {
  type Cluster,
  EVENTS,
  exampleHAPairText,
  HAP,
  NS,
  startCluster,
  UR,
  upgradeRequest,
} from './support.js';

let cluster: Cluster;

beforeEach(async () => {
  cluster = await startCluster();
  cluster.server.put(HAP, parseYaml(exampleHAPairText()));
});
afterEach(async () => {
  await cluster.close();
});

const run = (...args: string[]) =>
  runEntry(pluginMain, 'kubectl-pairshift', ['--kubeconfig', cluster.kubeconfigPath, ...args]);

const T0 = '2026-12-06T07:00:00.000Z';

function condition(type: string, status: string, reason: string, message: string) {
  return { type, status, reason, message, lastTransitionTime: T0 };
}

/** An UpgradeRequest with a status, as the operator would have written it. */
function putUpgrade(name: string, status: Record<string, unknown> | undefined, spec = {}) {
  const ur: KObject = upgradeRequest(name);
  ur.spec = { ...ur.spec, ...spec };
  if (status) ur.status = { progress: 0, completedSteps: [], conditions: [], ...status };
  return cluster.server.put(UR, ur);
}

const RUNNING = {
  phase: 'BACKUP',
  progress: 30,
  fromVersion: '1.0.0',
  targetVersion: '2.0.0',
  startedAt: T0,
  currentStep: 'BACKUP/BACKUP_DATABASE@billing-a',
  message: 'backing up the database on billing-a',
  completedSteps: [
    { step: 'PREPARE/PREFLIGHT', at: '2026-12-06T07:00:05.000Z' },
    { step: 'BACKUP/BACKUP_JAR', node: 'billing-b', at: '2026-12-06T07:00:09.000Z' },
  ],
  backups: [
    {
      node: 'billing-b',
      kind: 'jar',
      path: '/var/backups/app.jar',
      md5: 'a'.repeat(32),
      sha256: 'b'.repeat(64),
      verifiedAt: '2026-12-06T07:00:09.000Z',
    },
  ],
};

test('status shows phase, progress, steps done and to come, both nodes and "not measured"', async () => {
  putUpgrade('up-1', RUNNING);
  const r = await run('status', 'up-1');
  expect(r.stderr).toBe('');
  expect(r.code).toBe(EXIT.OK);
  expect(r.stdout).toMatch(/^phase\s+BACKUP .* 30%$/m);
  expect(r.stdout).toMatch(/^step\s+BACKUP\/BACKUP_DATABASE@billing-a$/m);
  expect(r.stdout).toContain('PREPARE/PREFLIGHT');
  expect(r.stdout).toContain('BACKUP/BACKUP_JAR @billing-b');
  expect(r.stdout).toMatch(
    /^to come\s+phases UPGRADE_BACKUP, VIP_SWITCH, UPGRADE_MASTER, VERIFY, COMPLETE$/m,
  );
  expect(r.stdout).toMatch(/^node\s+billing-a \(198\.18\.10\.11\)/m);
  expect(r.stdout).toMatch(/^node\s+billing-b \(198\.18\.10\.12\)/m);
  expect(r.stdout).toMatch(/^downtime\s+not measured/m);
});

test('status shows what the HAPair status and a measured downtime carry', async () => {
  putUpgrade('up-2', {
    ...RUNNING,
    phase: 'COMPLETE',
    progress: 100,
    currentStep: undefined,
    downtime: { httpLongestMs: 840, httpTotalMs: 1210, budgetMs: 240_000, withinBudget: true },
  });
  const pair = cluster.server.object(HAP, 'billing')!;
  pair.status = {
    vipHolder: 'billing-b',
    nodes: [
      {
        name: 'billing-a',
        role: 'standby',
        version: '2.0.0',
        healthy: true,
        replicationLag: '0 B',
      },
      { name: 'billing-b', role: 'primary', version: '2.0.0', healthy: true },
    ],
  };
  cluster.server.put(HAP, pair);
  const r = await run('status', 'up-2');
  expect(r.code).toBe(EXIT.OK);
  expect(r.stdout).toMatch(
    /billing-a .*role=standby version=2\.0\.0 healthy=true replicationLag=0 B/,
  );
  expect(r.stdout).toMatch(/billing-b .*role=primary/);
  expect(r.stdout).toMatch(/^VIP\s+held by billing-b$/m);
  expect(r.stdout).toMatch(
    /^downtime\s+longest 840 ms, total 1210 ms \(within the budget of 4m\)$/m,
  );
  expect(r.stdout).toMatch(/^to come\s+-$/m);
});

test('status -o json and -o yaml parse back to the resources', async () => {
  putUpgrade('up-3', RUNNING);
  const j = await run('status', 'up-3', '-o', 'json');
  expect(j.code).toBe(EXIT.OK);
  const parsed = JSON.parse(j.stdout);
  expect(parsed.upgradeRequest.status.phase).toBe('BACKUP');
  expect(parsed.haPair.metadata.name).toBe('billing');
  const y = await run('-n', NS, 'status', 'up-3', '-o', 'yaml');
  expect(y.code).toBe(EXIT.OK);
  expect(parseYaml(y.stdout).upgradeRequest.status.completedSteps).toHaveLength(2);
});

test('not found is exit 3, a wrong namespace too', async () => {
  const r = await run('status', 'nope');
  expect(r.code).toBe(EXIT.NOT_FOUND);
  expect(r.stderr).toMatch(/upgraderequest nope not found in namespace ops/);
  putUpgrade('up-4', RUNNING);
  const other = await run('status', 'up-4', '--namespace', 'elsewhere');
  expect(other.code).toBe(EXIT.NOT_FOUND);
  expect((await run('watch', 'nope', '--interval', '100ms')).code).toBe(EXIT.NOT_FOUND);
  expect((await run('logs', 'nope')).code).toBe(EXIT.NOT_FOUND);
  expect((await run('cancel', 'nope')).code).toBe(EXIT.NOT_FOUND);
});

test('an API server that cannot be reached is exit 4, for a read and for a watch', async () => {
  putUpgrade('up-5', RUNNING);
  await cluster.server.outage('refuse');
  const r = await run('status', 'up-5');
  expect(r.code).toBe(EXIT.API_UNREACHABLE);
  expect(r.stderr).toMatch(/could not be reached/);
  const w = await run('watch', 'up-5', '--interval', '100ms', '--reconnect-for', '1s');
  expect(w.code).toBe(EXIT.API_UNREACHABLE);
  expect(w.stderr).toMatch(/gave up after trying for 1s/);
  await cluster.server.restore();
});

test('a watch rides out a short outage (503, then refused) and ends with the upgrade', async () => {
  putUpgrade('up-o', RUNNING);
  await cluster.server.outage('503');
  const watching = run('watch', 'up-o', '--interval', '100ms', '--reconnect-for', '30s');
  await new Promise((r) => setTimeout(r, 800));
  expect(cluster.server.unavailableSent).toBeGreaterThan(0);
  await cluster.server.restore();
  await cluster.server.outage('refuse');
  await new Promise((r) => setTimeout(r, 800));
  await cluster.server.restore();
  const ur = cluster.server.object(UR, 'up-o')!;
  ur.status = { ...ur.status, phase: 'COMPLETE', progress: 100 };
  cluster.server.put(UR, ur);
  const r = await watching;
  expect(r.code).toBe(EXIT.OK);
  expect(r.stderr).toMatch(/trying again for up to 30s/);
  expect(r.stderr).toMatch(/the API answers again/);
});

test('a watch does not hang on an API server that accepts and never answers', async () => {
  const silent = createServer(() => {}); // never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const { port } = silent.address() as AddressInfo;
  const config = join(tmpdir(), `kubectl-pairshift-silent-${port}`);
  writeFileSync(
    config,
    readFileSync(cluster.kubeconfigPath, 'utf8').replace(
      cluster.server.url,
      `http://127.0.0.1:${port}`,
    ),
    { mode: 0o600 },
  );
  try {
    const started = Date.now();
    const r = await runEntry(pluginMain, 'kubectl-pairshift', [
      '--kubeconfig',
      config,
      'watch',
      'up-s',
      '--timeout',
      '2s',
    ]);
    expect(r.code).toBe(EXIT.WAIT_TIMEOUT);
    expect(r.stderr).toMatch(/did not answer within/);
    expect(Date.now() - started).toBeLessThan(10_000);
  } finally {
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
    rmSync(config, { force: true });
  }
});

test('usage errors are exit 2', async () => {
  expect((await run('status')).code).toBe(EXIT.USAGE);
  expect((await run('status', 'x', '--bogus')).code).toBe(EXIT.USAGE);
  expect((await run('status', 'x', '-o', 'xml')).code).toBe(EXIT.USAGE);
  expect((await run('watch', 'x', '--timeout', 'soon')).code).toBe(EXIT.USAGE);
  expect((await run('completion', 'fish')).code).toBe(EXIT.USAGE);
  expect((await run('cancel', 'x', '--reason', '  ')).code).toBe(EXIT.USAGE);
  expect((await run('plan', 'x')).code).toBe(EXIT.USAGE);
  const badConfig = await runEntry(pluginMain, 'kubectl-pairshift', [
    '--kubeconfig',
    join(cluster.kubeconfigPath, 'missing'),
    'status',
    'x',
  ]);
  expect(badConfig.code).toBe(EXIT.USAGE);
  expect(badConfig.stderr).toMatch(/kubeconfig/);
});

describe('watch ends with the exit code of how the upgrade ended', () => {
  const cases: [string, number][] = [
    ['COMPLETE', EXIT.OK],
    ['FAILED', EXIT.UPGRADE_FAILED],
    ['TIMEOUT', EXIT.UPGRADE_FAILED],
    ['UNREACHABLE', EXIT.UPGRADE_FAILED],
    ['CANCELLED', EXIT.UPGRADE_FAILED],
  ];
  test.each(cases)('%s: exit %d', async (phase, code) => {
    putUpgrade('up-w', { ...RUNNING, phase, progress: 100, message: `ended ${phase}` });
    const r = await run('watch', 'up-w', '--interval', '100ms');
    expect(r.code).toBe(code);
    expect(r.stdout).toContain(`${phase} 100%`);
    if (code !== EXIT.OK) expect(r.stderr).toMatch(new RegExp(`ended in ${phase}`));
  });

  test('a halt (Stalled=True): exit 6, and the reason on stderr', async () => {
    putUpgrade('up-h', {
      ...RUNNING,
      conditions: [condition('Stalled', 'True', 'SplitBrain', 'both nodes hold the VIP')],
    });
    const r = await run('watch', 'up-h', '--interval', '100ms');
    expect(r.code).toBe(EXIT.HALTED);
    expect(r.stderr).toMatch(
      /halted .*SplitBrain: both nodes hold the VIP .*kubectl pairshift logs up-h/,
    );
  });

  test('follows changes, one line each when not a terminal, until COMPLETE', async () => {
    putUpgrade('up-f', RUNNING);
    const watching = run('watch', 'up-f', '--interval', '100ms', '--timeout', '20s');
    const step = (status: Record<string, unknown>) =>
      setTimeout(() => {
        const ur = cluster.server.object(UR, 'up-f')!;
        ur.status = { ...ur.status, ...status };
        cluster.server.put(UR, ur);
      }, 0);
    await new Promise((r) => setTimeout(r, 400));
    step({ phase: 'VIP_SWITCH', progress: 60, currentStep: 'VIP_SWITCH/MOVE_VIP' });
    await new Promise((r) => setTimeout(r, 400));
    step({ phase: 'COMPLETE', progress: 100, currentStep: undefined, message: 'done' });
    const r = await watching;
    expect(r.code).toBe(EXIT.OK);
    const lines = r.stdout.trim().split('\n');
    expect(lines.map((l) => l.match(/ (\w+) \d+%/)?.[1])).toEqual([
      'BACKUP',
      'VIP_SWITCH',
      'COMPLETE',
    ]);
  });

  test('--timeout passing first is exit 5', async () => {
    putUpgrade('up-t', RUNNING);
    const r = await run('watch', 'up-t', '--interval', '100ms', '--timeout', '1s');
    expect(r.code).toBe(EXIT.WAIT_TIMEOUT);
    expect(r.stderr).toMatch(/timed out after 1s .* BACKUP 30%/);
  });

  test('-o json prints one progress document per line that parses back', async () => {
    putUpgrade('up-j', { ...RUNNING, phase: 'FAILED', message: 'boom' });
    const r = await run('watch', 'up-j', '-o', 'json');
    expect(r.code).toBe(EXIT.UPGRADE_FAILED);
    const docs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(docs).toEqual([
      expect.objectContaining({ upgrade_id: 'up-j', phase: 'FAILED', message: 'boom' }),
    ]);
  });

  test('on a terminal it redraws a block in place', async () => {
    putUpgrade('up-tty', { ...RUNNING, phase: 'COMPLETE', progress: 100 });
    const was = process.stdout.isTTY;
    process.stdout.isTTY = true;
    try {
      const r = await run('watch', 'up-tty');
      expect(r.code).toBe(EXIT.OK);
      expect(r.stdout).toMatch(/^upgrade\s+up-tty {2}billing -> 2\.0\.0$/m);
      expect(r.stdout).toMatch(/^looked\s+\d\d:\d\d:\d\d UTC$/m);
    } finally {
      process.stdout.isTTY = was;
    }
  });
});

test('approve sets spec.options.approved only when the upgrade waits for it', async () => {
  putUpgrade('up-a', { phase: 'IDLE' }, { options: { approved: false, dryRun: false } });
  const before = cluster.server.object(UR, 'up-a')!.metadata.generation;
  const r = await run('approve', 'up-a');
  expect(r.code).toBe(EXIT.OK);
  const after = cluster.server.object(UR, 'up-a')!;
  expect(after.spec.options).toEqual({ approved: true, dryRun: false });
  expect(after.metadata.generation).toBe(before + 1);
  const again = await run('approve', 'up-a');
  expect(again.code).toBe(EXIT.OK);
  expect(again.stdout).toMatch(/does not wait for approval/);
});

test('cancel writes spec.cancel with the reason and who asked; refused when it ended or twice', async () => {
  putUpgrade('up-c', RUNNING);
  const r = await run('cancel', 'up-c', '--reason', 'change freeze');
  expect(r.code).toBe(EXIT.OK);
  const cancel = cluster.server.object(UR, 'up-c')!.spec.cancel;
  expect(cancel).toMatchObject({ reason: 'change freeze', requestedBy: 'kubectl-pairshift:test' });
  expect(Number.isNaN(Date.parse(cancel.requestedAt))).toBe(false);
  const twice = await run('cancel', 'up-c');
  expect(twice.code).toBe(EXIT.ERROR);
  expect(twice.stderr).toMatch(/already been asked to cancel/);
  putUpgrade('up-done', { ...RUNNING, phase: 'COMPLETE' });
  const ended = await run('cancel', 'up-done');
  expect(ended.code).toBe(EXIT.ERROR);
  expect(ended.stderr).toMatch(/already ended \(phase COMPLETE\)/);
  expect(cluster.server.object(UR, 'up-done')!.spec.cancel).toBeUndefined();
});

test('rollback writes spec.rollback (with --restore-database); refused without a verified backup', async () => {
  putUpgrade('up-r', RUNNING);
  const r = await run('rollback', 'up-r', '--restore-database', '--reason', 'bad release');
  expect(r.code).toBe(EXIT.OK);
  expect(cluster.server.object(UR, 'up-r')!.spec.rollback).toMatchObject({
    reason: 'bad release',
    restoreDatabase: true,
    requestedBy: 'kubectl-pairshift:test',
  });
  putUpgrade('up-nb', { ...RUNNING, phase: 'PREPARE', backups: [] });
  const none = await run('rollback', 'up-nb');
  expect(none.code).toBe(EXIT.ERROR);
  expect(none.stderr).toMatch(/no verified backup yet.*kubectl pairshift cancel up-nb/);
  expect(cluster.server.object(UR, 'up-nb')!.spec.rollback).toBeUndefined();
});

test('history lists the upgrades with phase and times; -o json|yaml parse back', async () => {
  putUpgrade('up-old', {
    ...RUNNING,
    phase: 'COMPLETE',
    progress: 100,
    finishedAt: '2026-12-06T07:05:00.000Z',
  });
  putUpgrade('up-new', RUNNING);
  const r = await run('history');
  expect(r.code).toBe(EXIT.OK);
  const rows = r.stdout.trim().split('\n');
  expect(rows[0]).toMatch(/^NAME\s+PAIR\s+VERSION\s+PHASE\s+PROGRESS\s+STARTED\s+FINISHED$/);
  expect(rows[1]).toMatch(
    /^up-old\s+billing\s+2\.0\.0\s+COMPLETE\s+100%\s+2026-12-06T07:00:00\.000Z\s+2026-12-06T07:05:00\.000Z$/,
  );
  expect(rows[2]).toMatch(/^up-new\s+billing\s+2\.0\.0\s+BACKUP\s+30%/);
  const j = JSON.parse((await run('history', '-o', 'json')).stdout);
  expect(j.items.map((i: { name: string }) => i.name)).toEqual(['up-old', 'up-new']);
  const y = parseYaml((await run('history', '-o', 'yaml', '--pair', 'other')).stdout);
  expect(y.items).toEqual([]);
});

test('logs prints the Events recorded about the upgrade, oldest first; -o json parses back', async () => {
  const ur = putUpgrade('up-l', RUNNING);
  const event = (n: number, reason: string, message: string, name = 'up-l') => ({
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${n}`, namespace: NS },
    involvedObject: {
      apiVersion: 'pairshift.io/v1alpha1',
      kind: 'UpgradeRequest',
      name,
      uid: ur.metadata.uid,
    },
    type: reason === 'Failed' ? 'Warning' : 'Normal',
    reason,
    message,
    firstTimestamp: `2026-12-06T07:0${n}:00.000Z`,
    lastTimestamp: `2026-12-06T07:0${n}:00.000Z`,
  });
  cluster.server.put(EVENTS, event(2, 'Backup', 'phase PREPARE -> BACKUP'));
  cluster.server.put(EVENTS, event(1, 'Prepare', 'phase IDLE -> PREPARE'));
  cluster.server.put(EVENTS, event(3, 'Failed', 'another upgrade', 'up-other'));
  const r = await run('logs', 'up-l');
  expect(r.code).toBe(EXIT.OK);
  expect(r.stdout.trim().split('\n')).toEqual([
    '2026-12-06T07:01:00.000Z  Normal  Prepare: phase IDLE -> PREPARE',
    '2026-12-06T07:02:00.000Z  Normal  Backup: phase PREPARE -> BACKUP',
  ]);
  const j = JSON.parse((await run('logs', 'up-l', '-o', 'json')).stdout);
  expect(j.items.map((i: { reason: string }) => i.reason)).toEqual(['Prepare', 'Backup']);
  const y = parseYaml((await run('logs', 'up-l', '-o', 'yaml')).stdout);
  expect(y.items).toHaveLength(2);
});

test('completion bash|zsh name every command and its flags', async () => {
  const bash = await run('completion', 'bash');
  expect(bash.code).toBe(EXIT.OK);
  expect(bash.stdout).toContain('complete -F _kubectl_pairshift kubectl-pairshift');
  for (const cmd of [
    'status',
    'watch',
    'approve',
    'cancel',
    'rollback',
    'history',
    'logs',
    'completion',
  ])
    expect(bash.stdout).toMatch(new RegExp(`^ {4}${cmd}\\) words=`, 'm'));
  expect(bash.stdout).toMatch(/rollback\) words="[^"]*--restore-database/);
  // and bash completes with it: a flag of the subcommand, a subcommand at the top
  const complete = (words: string[]) =>
    spawnSync(
      'bash',
      [
        '-c',
        `${bash.stdout}\nCOMP_WORDS=(${words.join(' ')}); COMP_CWORD=${words.length - 1}; _kubectl_pairshift; echo "\${COMPREPLY[*]}"`,
      ],
      { encoding: 'utf8' },
    );
  const flag = complete(['kubectl-pairshift', 'rollback', 'x', '--re']);
  expect(flag.stderr).toBe('');
  expect(flag.stdout.trim().split(' ').sort()).toEqual(['--reason', '--restore-database']);
  expect(complete(['kubectl-pairshift', '-n', 'ops', 'wa']).stdout.trim()).toBe('watch');
  const zsh = await run('completion', 'zsh');
  expect(zsh.code).toBe(EXIT.OK);
  expect(zsh.stdout.startsWith('#compdef kubectl-pairshift')).toBe(true);
  expect(zsh.stdout).toMatch(/watch\) compadd -- .*--timeout/);
});

test('package.json installs kubectl-pairshift next to pairshift', () => {
  const pkg = JSON.parse(
    readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8'),
  );
  expect(pkg.bin['kubectl-pairshift']).toBe('bin/kubectl-pairshift.js');
});
