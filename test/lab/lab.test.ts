// The real lab, end to end: one bring-up of lab "t1" for the whole file (each
// costs seconds), then checks from the client namespace and over ssh with the
// inventory, then teardown that must leave nothing. Needs root, keepalived,
// openssh-server, rsync and libpostgresql-jdbc-java (see docs/lab.md).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { execArgv } from '../../src/lab/exec.js';
import { labDown, labUp, readState, sshOptions } from '../../src/lab/index.js';
import { labDirs } from '../../src/lab/layout.js';
import type { LabPlan } from '../../src/lab/plan.js';
import { run, sleep, waitFor } from '../../src/lab/run.js';
import { collectStatus, problems } from '../../src/lab/status.js';

const NAME = 't1';
const VERSION = '1.0.0';
const dirs = labDirs(NAME);
let plan: LabPlan;
// the HAPair inventory `lab up` wrote: the tests drive the lab through its
// commands, as the operator will
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
let inv: any;
const service = (name: string) =>
  inv.spec.services.find((x: { name: string }) => x.name === name) as {
    start: string;
    stop: string;
    status: string;
  };
// pids of every process of the lab, taken while it ran (for the teardown check)
const labPids: number[] = [];

jest.setTimeout(180_000);

/** Run a command in a, b or the client namespace. */
async function inLab(target: 'a' | 'b' | 'client', argv: string[], allowFail = false) {
  const [cmd, ...args] = execArgv(NAME, target, argv);
  return run(cmd!, args, { allowFail, timeoutMs: 30_000 });
}

/** HTTP from the client namespace: "<status> <body>" ("000 " if no answer). */
async function clientGet(url: string): Promise<{ status: number; body: string }> {
  const r = await inLab(
    'client',
    ['curl', '-s', '--max-time', '2', '-w', '\n%{http_code}', url],
    true,
  );
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n').trim() };
}

/** ssh into a node exactly as the operator would: inventory key, pinned host keys. */
function ssh(node: 'a' | 'b', command: string, allowFail = false) {
  return run('ssh', [...sshOptions(dirs), `root@${plan.nodeAddress[node]}`, command], {
    allowFail,
    timeoutMs: 30_000,
  });
}

async function psql(node: 'a' | 'b', sql: string, db = 'app'): Promise<string> {
  const r = await inLab(node, [
    'runuser',
    '-u',
    'postgres',
    '--',
    'psql',
    '-X',
    '-At',
    '-d',
    db,
    '-c',
    sql,
  ]);
  return r.stdout.trim();
}

async function vipHolder(): Promise<string | undefined> {
  for (const n of ['a', 'b'] as const) {
    const r = await run('ip', ['-n', plan.netns[n], '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    if (r.stdout.includes(` ${plan.vip}/`)) return n;
  }
  return undefined;
}

/**
 * The prober CLI, run from the client namespace (dist is built in beforeAll):
 * `during` starts once the prober says its probes run (a loaded machine may
 * take seconds to start it), and the prober is stopped (SIGTERM, it then
 * verifies) once `during` is over and at least `seconds` have passed.
 */
async function probe(seconds: number, during: () => Promise<void>) {
  const pass = inv.spec.database.passFile as string;
  const dbUrl = (host: string) => `postgres://app@${host}:5432/app`;
  const [cmd, ...args] = execArgv(NAME, 'client', [
    'env',
    `PGPASSFILE=${pass}`,
    process.execPath,
    `${process.cwd()}/bin/pairshift.js`,
    'probe',
    '--http',
    `http://${plan.vip}:8080/health`,
    '--db',
    dbUrl(plan.vip),
    '--verify-db',
    dbUrl(plan.nodeAddress.a),
    '--verify-db',
    dbUrl(plan.nodeAddress.b),
    '--duration',
    '600',
    '--output',
    'json',
  ]);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  try {
    await waitFor(
      'the prober to start',
      async () => (err.includes('probe: started') ? true : undefined),
      60_000,
      50,
    );
    const started = Date.now();
    await sleep(1500); // let the prober see the service up first
    await during();
    await sleep(Math.max(1000, seconds * 1000 - (Date.now() - started)));
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  try {
    return JSON.parse(out);
  } catch {
    throw new Error(`prober gave no JSON (exit ${code}): ${err.slice(-500)}`);
  }
}

beforeAll(async () => {
  // The prober runs from the client namespace through the built CLI. tsc
  // emits even when some other module has a type error (npm run typecheck
  // is where those fail), so only a missing CLI stops the test here.
  spawnSync('npm', ['run', 'build'], { stdio: 'ignore' });
  if (!existsSync('dist/cli/main.js') || !existsSync('dist/prober/index.js')) {
    throw new Error('npm run build did not produce dist/cli/main.js and dist/prober');
  }
  await labDown({ name: NAME });
  const r = await labUp({ name: NAME, appVersion: VERSION });
  plan = r.plan;
  inv = parse(readFileSync(r.inventory, 'utf8'));
  expect(r.seconds).toBeLessThan(60);
});

afterAll(async () => {
  await labDown({ name: NAME }); // safety net; the last test checks the real teardown
});

describe('lab t1', () => {
  it('is healthy and a second `lab up` reports it already up', async () => {
    const status = await collectStatus(NAME);
    expect(problems(status)).toEqual([]);
    expect(status.vipHolder).toBe('a');
    const again = await labUp({ name: NAME, appVersion: VERSION });
    expect(again.alreadyUp).toBe(true);
    expect(again.inventory).toBe(dirs.inventory);
  });

  it("writes an inventory the operator's HAPair loader accepts unchanged", () => {
    const pair = parseHAPair(readFileSync(dirs.inventory, 'utf8'), dirs.inventory);
    expect(pair.spec.vip.address).toBe(plan.vip);
    expect(pair.spec.nodes.map((n) => n.ssh.hostKey.fingerprint)).toEqual(
      inv.spec.nodes.map(
        (n: { ssh: { hostKey: { fingerprint: string } } }) => n.ssh.hostKey.fingerprint,
      ),
    );
    // no password reaches the inventory or any node's logs
    const passwords = new Set(
      readFileSync(inv.spec.database.passFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(':')[4]!),
    );
    expect(passwords.size).toBe(3);
    const logs = (n: 'a' | 'b') =>
      execFileSync(
        'sh',
        ['-c', `cat ${dirs.node(n).mount('log')}/*.log ${dirs.node(n).mount('log')}/postgresql/*`],
        {
          encoding: 'utf8',
        },
      );
    const text = `${readFileSync(dirs.inventory, 'utf8')}${logs('a')}${logs('b')}`;
    for (const pw of passwords) expect(text).not.toContain(pw);
    const pub = inv.metadata.annotations['pairshift.io/lab-package-public-key'];
    expect(readFileSync(pub, 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
  });

  it('serves the built version on the VIP, seen from the client namespace', async () => {
    expect(await clientGet(`http://${plan.vip}:8080/version`)).toEqual({
      status: 200,
      body: VERSION,
    });
    const health = await clientGet(`http://${plan.vip}:8080/health`);
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body).database).toBe('read-write');
    expect((await clientGet(`http://${plan.vip}:8081/health`)).status).toBe(200);
    // each node's Java service writes its own heartbeat row through the VIP
    expect(await psql('a', 'select instance from app_heartbeat order by 1')).toBe('a:8080\nb:8080');
  });

  it('gives each node its own files at the same paths, reachable with the pinned host keys', async () => {
    const a = await ssh(
      'a',
      'hostname; stat -c "%a %U" /etc/app/root.key; sha256sum /opt/app/app.jar',
    );
    const b = await ssh(
      'b',
      'hostname; stat -c "%a %U" /etc/app/root.key; sha256sum /opt/app/app.jar',
    );
    expect(a.stdout.split('\n')[0]).toBe(`${NAME}-a`);
    expect(b.stdout.split('\n')[0]).toBe(`${NAME}-b`);
    expect(a.stdout.split('\n')[1]).toBe('600 root');
    // a marker written on a is not visible on b, nor on the host
    await ssh('a', 'echo only-a > /opt/app/marker');
    expect((await ssh('b', 'test -e /opt/app/marker', true)).code).not.toBe(0);
    expect(existsSync('/opt/app/marker')).toBe(false);
    // a host key that is not pinned is refused (ssh takes the first value
    // of an option, so the empty known_hosts goes first)
    const r = await run(
      'ssh',
      [
        '-o',
        'UserKnownHostsFile=/dev/null',
        ...sshOptions(dirs),
        `root@${plan.nodeAddress.a}`,
        'true',
      ],
      { allowFail: true },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Host key verification failed|No .* host key is known/);
  });

  it('streams replication from a to b', async () => {
    expect(
      await psql('a', 'select application_name, state from pg_stat_replication', 'postgres'),
    ).toBe(`${NAME}-b|streaming`);
    expect(await psql('b', 'select pg_is_in_recovery()', 'postgres')).toBe('t');
    const mark = `row-${Date.now()}`;
    await psql(
      'a',
      `create table if not exists lab_check (v text); insert into lab_check values ('${mark}')`,
    );
    await waitFor(
      'the row on b',
      async () =>
        (await psql('b', `select count(*) from lab_check where v = '${mark}'`)) === '1'
          ? true
          : undefined,
      10_000,
    );
  });

  it("stops and starts the standby with the inventory's database commands, and it streams again", async () => {
    const db = inv.spec.database;
    expect((await ssh('b', db.status)).stdout).toMatch(/server is running/);
    await ssh('b', db.stop);
    expect((await ssh('b', db.status, true)).code).toBe(3);
    expect(await psql('a', 'select count(*) from pg_stat_replication', 'postgres')).toBe('0');
    await ssh('b', db.start);
    await waitFor(
      'b streaming again',
      async () =>
        (await psql('a', 'select state from pg_stat_replication', 'postgres')) === 'streaming'
          ? true
          : undefined,
      20_000,
    );
  });

  it('pushes /etc/app from the VIP holder to the other node, and stops when paused', async () => {
    const stamp = `v=${Date.now()}`;
    await ssh('a', `echo '${stamp}' > /etc/app/lab-test.conf`);
    await waitFor(
      'the change on b',
      async () =>
        (await ssh('b', 'cat /etc/app/lab-test.conf', true)).stdout.trim() === stamp
          ? true
          : undefined,
      10_000,
      250,
    );
    // root.key arrives byte-exact with its mode
    const sum = 'sha256sum /etc/app/root.key | cut -d" " -f1; stat -c %a /etc/app/root.key';
    expect((await ssh('b', sum)).stdout).toBe((await ssh('a', sum)).stdout);

    const paused = JSON.parse((await ssh('a', inv.spec.rsync.pause)).stdout);
    expect(paused.paused).toBe(true);
    const stamp2 = `v=${Date.now()}-paused`;
    await ssh('a', `echo '${stamp2}' > /etc/app/lab-test.conf`);
    await sleep(5000); // more than two sync periods
    expect((await ssh('b', 'cat /etc/app/lab-test.conf')).stdout.trim()).toBe(stamp);
    const status = JSON.parse((await ssh('a', inv.spec.rsync.status)).stdout);
    expect(status).toMatchObject({ loop: 'running', paused: true, last: { lastResult: 'paused' } });

    await ssh('a', inv.spec.rsync.resume);
    await waitFor(
      'the change on b after resume',
      async () =>
        (await ssh('b', 'cat /etc/app/lab-test.conf')).stdout.trim() === stamp2 ? true : undefined,
      10_000,
      250,
    );
    const after = JSON.parse((await ssh('a', inv.spec.rsync.status)).stdout);
    expect(after.paused).toBe(false);
    expect(after.last.lastResult).toBe('pushed');
    // b does not hold the VIP: it never pushes
    const bStatus = JSON.parse((await ssh('b', inv.spec.rsync.status)).stdout);
    expect(bStatus.last.lastResult).toBe('standby');
    expect(bStatus.last.pushes).toBe(0);
  });

  it('moves the VIP when keepalived stops on a, and the prober sees the outage', async () => {
    const report = await probe(7, async () => {
      const stopped = Date.now();
      await ssh('a', inv.spec.keepalived.stop);
      await waitFor(
        'the VIP on b',
        async () => ((await vipHolder()) === 'b' ? true : undefined),
        5000,
        10,
      );
      const moved = Date.now() - stopped;
      expect(moved).toBeLessThan(3000);
      // the VIP now lands on b, whose database is a standby: /health fails
      const h = await clientGet(`http://${plan.vip}:8080/health`);
      expect(h.status).toBe(503);
      await sleep(1500);
      await ssh('a', inv.spec.keepalived.start);
      await waitFor(
        'the VIP back on a',
        async () => ((await vipHolder()) === 'a' ? true : undefined),
        5000,
        10,
      );
    });
    expect(report.http.longestOutageMs).toBeGreaterThan(1000);
    expect(report.http.longestOutageMs).toBeLessThan(6000);
    expect(report.db.writes.acked).toBeGreaterThan(20);
    expect(report.db.longestOutageMs).toBeGreaterThan(1000);
    // every acknowledged insert is on both nodes afterwards
    expect(report.verification.error).toBeUndefined();
    expect(report.verification.lostAcknowledged).toBe(0);
    expect((await clientGet(`http://${plan.vip}:8080/health`)).status).toBe(200);
  });

  it('shows a stopped service as a failing /health, and the prober counts it', async () => {
    const report = await probe(6, async () => {
      expect((await ssh('a', service('java').stop)).stdout.trim()).toBe('stopped');
      const status = await ssh('a', service('java').status, true);
      expect(status.code).toBe(3);
      expect((await clientGet(`http://${plan.vip}:8080/health`)).status).toBe(0);
      await sleep(1500);
      await ssh('a', service('java').start);
      await waitFor(
        'java /health again',
        async () =>
          (await clientGet(`http://${plan.vip}:8080/health`)).status === 200 ? true : undefined,
        30_000,
        100,
      );
    });
    expect(report.http.longestOutageMs).toBeGreaterThan(1000);
    // the database stayed up all along
    expect(report.db.longestOutageMs).toBeLessThan(1000); // a slow insert on a busy machine is not an outage of this size
    expect(report.verification.lostAcknowledged).toBe(0);
  });

  it('repairs an unhealthy lab on a second `lab up`', async () => {
    await ssh('b', service('python').stop);
    expect(problems(await collectStatus(NAME))).toEqual([
      'python stopped on b',
      'python /health on b: no answer',
    ]);
    const lines: string[] = [];
    const r = await labUp({ name: NAME, appVersion: VERSION, log: (l) => lines.push(l) });
    expect(r.alreadyUp).toBe(false);
    expect(lines.join('\n')).toMatch(/not healthy \(python stopped on b/);
    expect(r.plan.prefix).toBe(plan.prefix); // same name, same /24
    expect(problems(await collectStatus(NAME))).toEqual([]);
  });

  it('runs a second lab side by side on its own /24', async () => {
    const other = await labUp({ name: 't2', appVersion: '1.0.1' });
    try {
      expect(other.plan.prefix).not.toBe(plan.prefix);
      const v = await run('ip', [
        'netns',
        'exec',
        other.plan.netns.client,
        'curl',
        '-s',
        '--max-time',
        '2',
        `http://${other.plan.vip}:8080/version`,
      ]);
      expect(v.stdout.trim()).toBe('1.0.1');
      expect(await clientGet(`http://${plan.vip}:8080/version`)).toEqual({
        status: 200,
        body: VERSION,
      });
    } finally {
      await labDown({ name: 't2' });
    }
    expect(problems(await collectStatus(NAME))).toEqual([]);
  });

  it('cleans up after a failed bring-up and names the step', async () => {
    await expect(labUp({ name: 't3', appVersion: 'not-a-version' })).rejects.toThrow(
      /lab up failed at step "app release" \(everything it created was removed\)/,
    );
    expect((await run('ip', ['netns', 'list'])).stdout).not.toMatch(/^t3-/m);
    expect(existsSync(labDirs('t3').root)).toBe(false);
  });

  it('lab down leaves no namespace, process, mount or folder', async () => {
    const state = readState(NAME)!;
    for (const ns of state.netns) {
      const r = await run('ip', ['netns', 'pids', ns]);
      labPids.push(...r.stdout.split(/\s+/).filter(Boolean).map(Number));
    }
    expect(labPids.length).toBeGreaterThan(10);
    const r = await labDown({ name: NAME });
    expect(r.removed).toBe(true);
    expect((await run('ip', ['netns', 'list'])).stdout).not.toMatch(new RegExp(`^${NAME}-`, 'm'));
    const alive = labPids.filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return !/^\d+ \(.*\) Z/.test(stat);
      } catch {
        return false;
      }
    });
    expect(alive).toEqual([]);
    const mounts = (await run('findmnt', ['-rn', '-o', 'TARGET,SOURCE'])).stdout;
    expect(mounts).not.toContain(dirs.root);
    expect(mounts).not.toMatch(new RegExp(`/run/netns/${NAME}-`));
    expect((await run('ip', ['link', 'show'])).stdout).not.toContain(plan.uplinkIf);
    expect(existsSync(dirs.root)).toBe(false);
    // a second down is harmless
    expect((await labDown({ name: NAME })).removed).toBe(false);
    expect(readdirSync('/run/netns').filter((n) => n.startsWith(`${NAME}-`))).toEqual([]);
  });
});
