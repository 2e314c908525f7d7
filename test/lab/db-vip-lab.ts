// Shared by the keepalived and database driver lab tests: one real lab per
// test file, driven through its HAPair inventory over SSH as the operator
// would. `lab up` on a healthy lab of the same name only reports it already
// up, so PAIRSHIFT_KEEP_LAB=1 keeps the lab between runs while iterating
// (never in CI: the default brings it down in afterAll).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ExecOptions } from '../../src/drivers/ssh/connection.js';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { SshPool } from '../../src/drivers/ssh/pool.js';
import { type HAPair, loadHAPair } from '../../src/inventory/hapair.js';
import { execArgv, labDown, labUp } from '../../src/lab/index.js';
import { run, sleep } from '../../src/lab/run.js';
import { appPsqlArgv } from '../support/lab-psql.js';

export interface TestLab {
  readonly name: string;
  readonly pair: HAPair;
  readonly inventoryPath: string;
  readonly shell: SshPool;
  /** Run argv on a node or the client namespace (not over ssh: the test's own view). */
  inLab(
    target: 'a' | 'b' | 'client',
    argv: string[],
    allowFail?: boolean,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  psql(node: 'a' | 'b', sql: string): Promise<string>;
  down(): Promise<void>;
}

export async function startTestLab(name: string, opts: { build?: boolean } = {}): Promise<TestLab> {
  if (opts.build) {
    // The prober runs from the client namespace through the built CLI.
    spawnSync('npm', ['run', 'build'], { stdio: 'ignore' });
    if (!existsSync('dist/cli/main.js')) throw new Error('npm run build did not produce dist/cli');
  }
  const up = await labUp({ name });
  const pair = await loadHAPair(up.inventory);
  const shell = new SshPool(await sshEndpoints(pair));
  const inLab: TestLab['inLab'] = async (target, argv, allowFail = false) => {
    const [cmd, ...args] = execArgv(name, target, argv);
    const r = await run(cmd!, args, { allowFail, timeoutMs: 60_000 });
    return { code: r.code ?? 0, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    name,
    pair,
    inventoryPath: up.inventory,
    shell,
    inLab,
    async psql(node, sql) {
      const r = await inLab(node, appPsqlArgv(sql));
      return r.stdout.trim();
    },
    async down() {
      await shell.close();
      if (process.env.PAIRSHIFT_KEEP_LAB === '1') return;
      await labDown({ name });
    },
  };
}

/** A NodeShell that counts every command per node (to prove a second run acts on nothing). */
export class CountingShell {
  readonly commands: { node: string; argv: readonly string[] }[] = [];
  constructor(private readonly inner: SshPool) {}
  exec(node: string, argv: readonly string[], opts?: ExecOptions) {
    this.commands.push({ node, argv });
    return this.inner.exec(node, argv, opts);
  }
}

export { sleep };

/**
 * A pool whose pin for node is the other node's host key: every connection
 * to node must be refused before a command runs. The caller closes it.
 */
export async function poolWithWrongHostKey(pair: HAPair, node: string): Promise<SshPool> {
  const other = pair.spec.nodes.find((n) => n.name !== node)!;
  const endpoints = await sshEndpoints(pair);
  return new SshPool(
    endpoints.map((e) =>
      e.node === node ? { ...e, hostKeyFingerprints: [other.ssh.hostKey.fingerprint] } : e,
    ),
  );
}

// biome-ignore lint/suspicious/noExplicitAny: the prober's JSON report
export type ProbeJson = any;

/**
 * The prober CLI from the client namespace (outside both nodes) while
 * `during` runs, stopped (SIGTERM) `afterMs` after it finished; returns its
 * JSON report. Needs dist/ built.
 */
export async function probeWhile(
  lab: TestLab,
  during: () => Promise<void>,
  opts: { rateHz?: number; httpTimeoutMs?: number; afterMs?: number } = {},
): Promise<ProbeJson> {
  const vip = lab.pair.spec.vip.address;
  const dbUrl = (host: string) => `postgres://${lab.pair.spec.database.user}@${host}:5432/app`;
  const [cmd, ...args] = execArgv(lab.name, 'client', [
    'env',
    `PGPASSFILE=${lab.pair.spec.database.passFile}`,
    process.execPath,
    `${process.cwd()}/bin/pairshift.js`,
    'probe',
    '--http',
    `http://${vip}:8080/health`,
    '--db',
    dbUrl(vip),
    ...lab.pair.spec.nodes.flatMap((n) => ['--verify-db', dbUrl(n.address)]),
    '--rate-hz',
    String(opts.rateHz ?? 50),
    '--http-timeout-ms',
    String(opts.httpTimeoutMs ?? 1000),
    '--duration',
    '600',
    '--output',
    'json',
  ]);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => resolve(code)),
  );
  // act only once its probes run (a loaded machine takes seconds to start it)
  const until = Date.now() + 60_000;
  while (!stderr.includes('probe: started')) {
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`the prober did not start: ${stderr.slice(-500)}`);
    await sleep(50);
  }
  await sleep(2000); // the prober sees the pair serving first
  let failure: unknown;
  await during().catch((err) => {
    failure = err;
  });
  await sleep(opts.afterMs ?? 2000);
  child.kill('SIGTERM');
  const code = await exited;
  if (failure) throw failure;
  try {
    return JSON.parse(stdout);
  } catch {
    throw new Error(`prober gave no JSON (exit ${code}): ${stderr.slice(-500)}`);
  }
}
