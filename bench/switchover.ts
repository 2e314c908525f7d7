// Controlled switchover benchmark (issue 4 "Done when"): the database primary
// and the VIP moved together, alternating direction, under the prober's load
// from the lab's client namespace (outside both nodes). Per run and as
// medians: the VIP moved and answering from the target (measured by the
// keepalived driver from outside: the VIP's SSH host key names the node),
// the write outage as the driver saw it (old primary stop issued -> new one
// promoted and the VIP answering), and what a client saw: the longest HTTP
// and database-write outage, acknowledged writes lost (must be 0) and writes
// whose outcome is unknown.
//
// Run (needs root and the lab's Debian packages; see docs/lab.md):
//   npm run bench:switchover -- [--name d1] [--runs 6] [--keep]
// It uses the lab of that name if it is up, else brings one up (and takes it
// down at the end unless --keep). The prober runs through the built CLI
// (bin/pairshift.js), so the script builds first; tsc emits even when another
// module has a type error (npm run typecheck is where those fail), so such an
// error does not stop the bench.
import { execFileSync, spawn } from 'node:child_process';
import { dbContext } from '../src/drivers/database/observe.js';
import { KeepalivedDriver } from '../src/drivers/keepalived/driver.js';
import { MemoryRecords } from '../src/drivers/records.js';
import { sshEndpoints } from '../src/drivers/ssh/endpoints.js';
import { SshPool } from '../src/drivers/ssh/pool.js';
import { switchover } from '../src/drivers/switchover/switchover.js';
import { type HAPair, loadHAPair } from '../src/inventory/hapair.js';
import { execArgv } from '../src/lab/index.js';
import type { ProbeReport } from '../src/prober/index.js';

interface Args {
  name: string;
  runs: number;
  keep: boolean;
  rateHz: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { name: 'd1', runs: 6, keep: false, rateHz: 50 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--name':
        a.name = v!;
        i++;
        break;
      case '--runs':
        a.runs = Number(v);
        i++;
        break;
      case '--rate-hz':
        a.rateHz = Number(v);
        i++;
        break;
      case '--keep':
        a.keep = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]} (use --name N --runs K --rate-hz R --keep)`);
    }
  }
  if (!(a.runs >= 1)) throw new Error('--runs must be at least 1');
  return a;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface RunFigures {
  run: number;
  direction: string;
  vipMovedMs: number | null;
  driverWriteOutageMs: number | null;
  httpOutageMs: number;
  writeOutageMs: number;
  lost: number;
  unknown: number;
  acked: number;
}

async function probeWhile(
  name: string,
  pair: HAPair,
  rateHz: number,
  during: () => Promise<void>,
): Promise<ProbeReport> {
  const vip = pair.spec.vip.address;
  const dbUrl = (host: string) =>
    `postgres://${pair.spec.database.user}@${host}:${pair.spec.database.port}/${pair.spec.database.name}`;
  const [cmd, ...args] = execArgv(name, 'client', [
    'env',
    `PGPASSFILE=${pair.spec.database.passFile}`,
    process.execPath,
    `${process.cwd()}/bin/pairshift.js`,
    'probe',
    '--http',
    `http://${vip}:8080/health`,
    '--db',
    dbUrl(vip),
    ...pair.spec.nodes.flatMap((n) => ['--verify-db', dbUrl(n.address)]),
    '--rate-hz',
    String(rateHz),
    '--http-timeout-ms',
    '1000',
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
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  // measure only once its probes run
  for (const until = Date.now() + 60_000; !err.includes('probe: started'); await sleep(50))
    if (child.exitCode !== null || Date.now() > until)
      throw new Error(`the prober did not start: ${err.slice(-400)}`);
  await sleep(2000);
  let failure: unknown;
  await during().catch((e) => {
    failure = e;
  });
  await sleep(2000);
  child.kill('SIGTERM');
  const code = await exited;
  if (failure) throw failure;
  try {
    return JSON.parse(out) as ProbeReport;
  } catch {
    throw new Error(`the prober gave no JSON (exit ${code}): ${err.slice(-400)}`);
  }
}

/**
 * `lab up` / `lab down` through the built CLI: the lab finds its node
 * scripts relative to its own module, which this script's separate build
 * does not carry along.
 */
function labCli(verb: 'up' | 'down', name: string): { inventory: string; alreadyUp: boolean } {
  const out = execFileSync(process.execPath, ['bin/pairshift.js', 'lab', verb, '--name', name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = out.trim().split('\n');
  return { inventory: lines.at(-1) ?? '', alreadyUp: /already up/.test(out) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (v: number | null) => (v === null ? '-' : `${Math.round(v)}`);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const up = labCli('up', args.name);
  const pair = await loadHAPair(up.inventory);
  const shell = new SshPool(await sshEndpoints(pair));
  const records = new MemoryRecords();
  const keepalived = new KeepalivedDriver({ shell, pair, records });
  const ctx = dbContext(shell, pair);
  const figures: RunFigures[] = [];
  try {
    // Start from whichever node is primary now; alternate from there.
    const first = await switchover(ctx, keepalived, pair.spec.nodes[0]!.name, { dryRun: true });
    let to = first.steps.length === 0 ? pair.spec.nodes[1]!.name : pair.spec.nodes[0]!.name;
    if (first.steps.length !== 0 && !first.steps.includes('checkpoint')) {
      // a half-finished switchover: finish it first
      await switchover(ctx, keepalived, to);
      to = pair.spec.nodes[1]!.name;
    }
    process.stdout.write(
      `switchover bench on lab ${args.name}: ${args.runs} runs, prober at ${args.rateHz} Hz from the client namespace\n` +
        'run  direction  vip-moved-ms  driver-write-outage-ms  client-http-outage-ms  client-write-outage-ms  lost  unknown  acked\n',
    );
    for (let run = 1; run <= args.runs; run++) {
      let result: Awaited<ReturnType<typeof switchover>> | undefined;
      const report = await probeWhile(args.name, pair, args.rateHz, async () => {
        result = await switchover(ctx, keepalived, to, { upgradeId: `bench-${run}` });
      });
      const { verification: v, http, db } = report;
      if (!v || 'error' in v || !http || !db)
        throw new Error(`run ${run}: the prober could not verify: ${JSON.stringify(v)}`);
      const f: RunFigures = {
        run,
        direction: `${result!.from}->${result!.to}`,
        vipMovedMs: result!.vipSwitchMs,
        driverWriteOutageMs: result!.writeOutageMs,
        httpOutageMs: http.longestOutageMs,
        writeOutageMs: db.longestOutageMs,
        lost: v.lostAcknowledged,
        unknown: db.writes.unknown,
        acked: db.writes.acked,
      };
      figures.push(f);
      process.stdout.write(
        `${String(run).padEnd(5)}${f.direction.padEnd(11)}${fmt(f.vipMovedMs).padEnd(14)}${fmt(f.driverWriteOutageMs).padEnd(24)}${fmt(f.httpOutageMs).padEnd(23)}${fmt(f.writeOutageMs).padEnd(24)}${String(f.lost).padEnd(6)}${String(f.unknown).padEnd(9)}${f.acked}\n`,
      );
      // Why HTTP probes failed (the service's own view of the move), for reading the figures.
      const why = Object.entries(http.reasons)
        .filter(([r]) => r !== 'ok')
        .map(([r, n]) => `${r} x${n}`)
        .join(', ');
      if (why) process.stdout.write(`     http failures: ${why}\n`);
      to = result!.from;
    }
    const med = (pick: (f: RunFigures) => number | null) =>
      fmt(median(figures.map(pick).filter((x): x is number => x !== null)));
    process.stdout.write(
      `median          ${med((f) => f.vipMovedMs).padEnd(14)}${med((f) => f.driverWriteOutageMs).padEnd(24)}${med((f) => f.httpOutageMs).padEnd(23)}${med((f) => f.writeOutageMs).padEnd(24)}${med((f) => f.lost).padEnd(6)}${med((f) => f.unknown)}\n`,
    );
    const lost = figures.reduce((n, f) => n + f.lost, 0);
    process.stdout.write(`acknowledged writes lost over all runs: ${lost}\n`);
    if (lost > 0) process.exitCode = 1;
  } finally {
    await shell.close();
    if (!up.alreadyUp && !args.keep) labCli('down', args.name);
  }
}

main().catch((err) => {
  process.stderr.write(`bench:switchover: ${err instanceof Error ? err.message : err}\n`);
  process.exit(1);
});
