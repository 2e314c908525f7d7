// The services driver against the real lab pair (lab "d2", one bring-up for
// this file, shared in turn with backup.test.ts through a lock file): stop,
// start and status of the Java and Python services through the HAPair's
// commands, each twice (the second changes nothing), with the port checked
// from the client namespace; installing a new jar and worker.py (old one
// kept, atomic rename, same sha256 = unchanged). Needs root and what
// docs/lab.md lists, plus the JDK (to build release 2.0.0).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { DriverError } from '../../src/drivers/errors.js';
import { ensureFileInstalled, payloadTargets } from '../../src/drivers/services/install.js';
import {
  ensureServiceStarted,
  ensureServiceStopped,
  serviceStatus,
} from '../../src/drivers/services/services.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import { buildAppRelease } from '../../src/lab/app/build.js';
import { execArgv, labDown, labUp } from '../../src/lab/index.js';
import { run } from '../../src/lab/run.js';
import { lockLab } from '../support/lab-lock.js';

const NAME = 'd2';
jest.setTimeout(300_000);

let pair: HAPair;
let pool: SshPool;
let releaseLock: () => void = () => {};
let workDir: string;
let v2: { jarPath: string; pythonPath: string };

async function onNode(node: 'a' | 'b' | 'client', script: string, allowFail = false) {
  const [cmd, ...args] = execArgv(NAME, node, ['sh', '-c', script]);
  return run(cmd!, args, { allowFail, timeoutMs: 60_000 });
}

/** HTTP from the client namespace (outside both nodes): status code, 0 if nothing answers. */
async function clientGet(node: 'a' | 'b', port: number, path: string) {
  const addr = pair.spec.nodes.find((n) => n.name === node)!.address;
  const r = await onNode(
    'client',
    `curl -s --max-time 2 -w '\\n%{http_code}' http://${addr}:${port}${path}`,
    true,
  );
  const lines = r.stdout.trimEnd().split('\n');
  return { status: Number(lines.pop()), body: lines.join('\n').trim() };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const ctx = () => ({ pair, shell: pool });
const PORT = { java: 8080, python: 8081 } as const;

beforeAll(async () => {
  releaseLock = await lockLab(NAME);
  workDir = mkdtempSync(join(tmpdir(), 'pairshift-services-test-'));
  v2 = await buildAppRelease({ version: '2.0.0', outDir: workDir });
  const up = await labUp({ name: NAME });
  pair = await loadHAPair(up.inventory);
  pool = new SshPool(await sshEndpoints(pair));
});

afterAll(async () => {
  await pool?.close();
  await labDown({ name: NAME });
  releaseLock();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('services on the lab pair', () => {
  it('reads the status of both services on both nodes', async () => {
    for (const node of ['a', 'b'])
      for (const s of ['java', 'python'])
        expect(await serviceStatus(ctx(), node, s)).toBe('running');
  });

  for (const service of ['java', 'python'] as const) {
    it(`stops and starts ${service} on b, each twice; the port closes and answers /health again`, async () => {
      const port = PORT[service];
      expect((await clientGet('b', port, '/health')).status).toBe(200);
      const dry = await ensureServiceStopped(ctx(), { node: 'b', service, dryRun: true });
      expect(dry).toMatchObject({ state: 'changed', before: 'running', after: 'running' });
      expect((await clientGet('b', port, '/health')).status).toBe(200);

      const stop = await ensureServiceStopped(ctx(), { node: 'b', service });
      expect(stop).toMatchObject({ state: 'changed', before: 'running', after: 'stopped' });
      expect((await clientGet('b', port, '/health')).status).toBe(0); // nothing answers
      const stopAgain = await ensureServiceStopped(ctx(), { node: 'b', service });
      expect(stopAgain).toMatchObject({ state: 'unchanged', before: 'stopped' });

      const start = await ensureServiceStarted(ctx(), { node: 'b', service, timeoutMs: 60_000 });
      expect(start).toMatchObject({ state: 'changed', before: 'stopped', after: 'running' });
      expect((await clientGet('b', port, '/health')).status).toBe(200);
      const startAgain = await ensureServiceStarted(ctx(), { node: 'b', service });
      expect(startAgain).toMatchObject({ state: 'unchanged', before: 'running', waitedMs: 0 });
    });
  }

  it('installs the 2.0.0 jar on b keeping the old one, atomically; the second install changes nothing', async () => {
    const target = pair.spec.paths.appJar;
    const oldSum = (await onNode('b', `sha256sum ${target}`)).stdout.split(' ')[0]!;
    const oldStat = (await onNode('b', `stat -c '%a %u %g' ${target}`)).stdout;
    await ensureServiceStopped(ctx(), { node: 'b', service: 'java' });
    const opts = {
      node: 'b',
      localPath: v2.jarPath,
      sha256: sha256(v2.jarPath),
      target,
      previousVersion: '1.0.0',
    };
    const dry = await ensureFileInstalled(ctx(), { ...opts, dryRun: true });
    expect(dry).toMatchObject({
      state: 'changed',
      kept: { path: `${target}.1.0.0`, sha256: oldSum },
    });
    expect((await onNode('b', `sha256sum ${target}`)).stdout.split(' ')[0]).toBe(oldSum);

    const first = await ensureFileInstalled(ctx(), opts);
    expect(first).toMatchObject({
      state: 'changed',
      kept: { path: `${target}.1.0.0`, sha256: oldSum },
    });
    expect((await onNode('b', `sha256sum ${target} ${target}.1.0.0`)).stdout).toBe(
      `${opts.sha256}  ${target}\n${oldSum}  ${target}.1.0.0\n`,
    );
    expect((await onNode('b', `stat -c '%a %u %g' ${target}`)).stdout).toBe(oldStat);
    expect((await onNode('b', 'ls /opt/app')).stdout).not.toMatch(/pairshift-new/);
    const again = await ensureFileInstalled(ctx(), opts);
    expect(again).toMatchObject({ state: 'unchanged', kept: null });

    await ensureServiceStarted(ctx(), { node: 'b', service: 'java' });
    expect(await clientGet('b', 8080, '/version')).toEqual({ status: 200, body: '2.0.0' });
  });

  it('installs worker.py from the payload the same way', async () => {
    const target = payloadTargets(pair.spec.paths)['payload/worker.py']!;
    await ensureServiceStopped(ctx(), { node: 'b', service: 'python' });
    const opts = { node: 'b', localPath: v2.pythonPath, sha256: sha256(v2.pythonPath), target };
    const r = await ensureFileInstalled(ctx(), opts);
    expect(r.state).toBe('changed');
    expect(r.kept?.path).toMatch(/\/opt\/app\/worker\.py\.sha256-[0-9a-f]{12}$/);
    expect((await ensureFileInstalled(ctx(), opts)).state).toBe('unchanged');
    await ensureServiceStarted(ctx(), { node: 'b', service: 'python' });
    expect(await clientGet('b', 8081, '/version')).toEqual({ status: 200, body: '2.0.0' });
  });

  it('refuses a file whose sha256 is not the expected one, touching nothing on the node', async () => {
    const target = pair.spec.paths.appJar;
    const before = (await onNode('a', `sha256sum ${target}; ls /opt/app`)).stdout;
    const bad = join(workDir, 'bad-app.jar'); // beside the good one, not over it
    writeFileSync(bad, Buffer.concat([readFileSync(v2.jarPath), Buffer.from('x')]));
    const err = await ensureFileInstalled(ctx(), {
      node: 'a',
      localPath: bad,
      sha256: sha256(v2.jarPath),
      target,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DriverError);
    expect((err as DriverError).kind).toBe('terminal');
    expect((err as DriverError).message).toMatch(
      /^a: while installing bad-app\.jar as \/opt\/app\/app\.jar: .* not the expected/,
    );
    expect((await onNode('a', `sha256sum ${target}; ls /opt/app`)).stdout).toBe(before);
  });

  it('names the node and the service on failures', async () => {
    await expect(serviceStatus(ctx(), 'a', 'nginx')).rejects.toThrow(/declares no service "nginx"/);
    const [a] = await sshEndpoints(pair);
    const dead = new SshPool([{ ...a!, port: 2 }]);
    const err = await ensureServiceStopped(
      { pair, shell: dead },
      { node: 'a', service: 'java' },
    ).catch((e: unknown) => e);
    await dead.close();
    expect((err as DriverError).message).toMatch(
      /^a: while stopping service java: .*cannot connect over SSH/,
    );
    expect((err as DriverError).kind).toBe('transient');
    // a start that never becomes healthy in time is a `waiting` error, not a hang
    await ensureServiceStopped(ctx(), { node: 'a', service: 'python' });
    const slow = await ensureServiceStarted(
      { ...ctx(), probe: { healthy: async () => false, portOpen: async () => false } },
      { node: 'a', service: 'python', timeoutMs: 1500 },
    ).catch((e: unknown) => e);
    expect((slow as DriverError).kind).toBe('waiting');
    expect((slow as DriverError).message).toMatch(
      /^a: while starting service python: service python running with \/health answering 200 on port 8081 did not happen within 1500 ms/,
    );
    expect((await ensureServiceStarted(ctx(), { node: 'a', service: 'python' })).state).toBe(
      'unchanged',
    );
  });
});
