// Full-upgrade benchmark (issue 5 "Done when"): N complete rolling upgrades
// 1.0.0 -> 2.0.0 of a lab pair by the real operator (startOperator,
// standalone: manifests folder + embedded store), each on a freshly brought
// up lab that is taken down afterwards, with the client prober running
// through the VIP from the lab's client namespace (HTTP /health and numbered
// database writes at 50 Hz, every acknowledged write verified on both nodes
// at the end). Per run and as medians: total time (request written ->
// terminal phase), time in each phase (from upgrade_history), the VIP switch
// (vip_switch_record), the longest HTTP and write outage a client saw, and
// acknowledged writes lost (must be 0).
//
// Run (needs root and the lab's Debian packages; see docs/lab.md):
//   npm run bench:upgrade -- [--name e1] [--runs 3]
// The prober runs through the built CLI, so the script builds first; the
// bench compiles into .pairshift/bench-build, where links to lab/, migrations/,
// dist/ and the lab app sources let src/ find its files as it does in place.
import { writeFileSync } from 'node:fs';
import { HAPPY_PATH } from '../src/core/phases.js';
import {
  clientFigures,
  historyOf,
  OperatorLab,
  phaseDurations,
  sleep,
  vipSwitches,
} from '../test/lab/operator-harness.js';

interface Args {
  name: string;
  runs: number;
  out: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { name: 'e1', runs: 3, out: null };
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
      case '--json':
        a.out = v!;
        i++;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]} (use --name N --runs K --json FILE)`);
    }
  }
  if (!(a.runs >= 1)) throw new Error('--runs must be at least 1');
  return a;
}

/** The phases a run is timed in: the happy path up to COMPLETE. */
const PHASES = HAPPY_PATH.slice(0, -1);

interface RunFigures {
  result: string;
  totalMs: number;
  phases: Record<string, number>;
  vipSwitchMs: number | null;
  operatorHttpLongestMs: number | null;
  httpLongestMs: number | null;
  writeLongestMs: number | null;
  acked: number;
  lost: number | null;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (ms: number | null) =>
  ms === null ? '-' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;

async function oneRun(lab: OperatorLab, i: number): Promise<RunFigures> {
  await lab.up();
  await lab.buildPackages();
  const { db } = await lab.newStore();
  const op = await lab.startInProcess(db);
  const prober = lab.startClientProber();
  const name = `${lab.name}-bench-${i}`;
  try {
    await prober.started(); // measuring from here on
    await sleep(1500); // the prober sees the pair serving first
    const started = Date.now();
    lab.writeRequest(name, lab.packages.v2);
    const final = await op.waitTerminal(name, 20 * 60_000);
    const totalMs = Date.now() - started;
    const probe = await prober.stop();
    const c = clientFigures(probe);
    const history = await historyOf(db, name);
    const vip = (await vipSwitches(db, name)).find((v) => v.result === 'SUCCESS');
    return {
      result: final.status!.phase,
      totalMs,
      phases: phaseDurations(history),
      vipSwitchMs: vip?.duration_ms ?? null,
      operatorHttpLongestMs: final.status!.downtime?.httpLongestMs ?? null,
      httpLongestMs: c.httpLongestMs,
      writeLongestMs: c.writeLongestMs,
      acked: c.acked,
      lost: c.lost,
    };
  } finally {
    prober.kill();
    await op.stop();
    await db.close();
    lab.removeRequest(name);
    await lab.down();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const lab = new OperatorLab(args.name);
  const runs: RunFigures[] = [];
  try {
    for (let i = 1; i <= args.runs; i++) {
      const f = await oneRun(lab, i);
      runs.push(f);
      console.log(
        `run ${i}: ${f.result} in ${fmt(f.totalMs)}; ${PHASES.map((p) => `${p} ${fmt(f.phases[p] ?? null)}`).join(', ')}; ` +
          `VIP switch ${fmt(f.vipSwitchMs)}; clients: HTTP longest ${fmt(f.httpLongestMs)}, writes longest ${fmt(f.writeLongestMs)}, ` +
          `${f.acked} acked, ${f.lost ?? 'UNVERIFIED'} lost; operator's own VIP probe: longest ${fmt(f.operatorHttpLongestMs)}`,
      );
    }
  } finally {
    await lab.dispose();
  }
  const med = (pick: (f: RunFigures) => number | null) =>
    median(runs.map(pick).filter((x): x is number => x !== null));
  console.log(`\nmedians of ${runs.length} run(s) (lab ${args.name}, 1.0.0 -> 2.0.0):`);
  console.log(`  total                    ${fmt(med((f) => f.totalMs))}`);
  for (const p of PHASES) console.log(`  ${p.padEnd(24)} ${fmt(med((f) => f.phases[p] ?? null))}`);
  console.log(`  VIP switch               ${fmt(med((f) => f.vipSwitchMs))}`);
  console.log(`  client HTTP longest      ${fmt(med((f) => f.httpLongestMs))}`);
  console.log(`  client write longest     ${fmt(med((f) => f.writeLongestMs))}`);
  console.log(`  operator's VIP probe     ${fmt(med((f) => f.operatorHttpLongestMs))}`);
  console.log(
    `  acknowledged writes lost ${runs.map((f) => f.lost ?? 'UNVERIFIED').join(', ')} (of ${runs.map((f) => f.acked).join(', ')})`,
  );
  if (args.out) writeFileSync(args.out, `${JSON.stringify(runs, null, 2)}\n`);
  const bad = runs.filter((f) => f.result !== 'COMPLETE' || f.lost !== 0);
  if (bad.length > 0) {
    console.error(`${bad.length} run(s) did not complete cleanly or lost writes`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
