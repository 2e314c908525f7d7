// The fault matrix (issue 12): every fault of src/lab/faults.ts in every
// phase where it can happen, each a real upgrade 1.0.0 -> 2.0.0 by the real
// operator on a lab pair with the client prober running; each case bounded
// (--bound, default 240 s), then judged by the invariants (test/lab/fault-matrix.ts,
// shared with the CI subset test/lab/faults.test.ts). Prints a table and
// writes JSON after every case, so a stopped run keeps what it measured.
//
// Run (needs root and the lab's Debian packages, iptables among them; see docs/lab.md):
//   npm run test:faults -- [--name fa] [--fault split-brain,link-cut] [--phase PREPARE,VERIFY]
//                          [--case split-brain@VIP_SWITCH,link-cut@BACKUP]
//                          [--bound 240] [--json docs/faults/latest.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { allCases, type CaseReport, FaultBench, formatTable } from '../test/lab/fault-matrix.js';
import { OperatorLab } from '../test/lab/operator-harness.js';

interface Args {
  name: string;
  fault: string[];
  phase: string[];
  /** fault@PHASE pairs, run in this order (instead of the cross product). */
  cases: string[];
  boundMs: number;
  json: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    name: 'fa',
    fault: [],
    phase: [],
    cases: [],
    boundMs: 240_000,
    json: 'docs/faults/latest.json',
  };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[++i];
    if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
    switch (argv[i - 1]) {
      case '--name':
        a.name = v;
        break;
      case '--fault':
        a.fault = v.split(',');
        break;
      case '--phase':
        a.phase = v.split(',');
        break;
      case '--case':
        a.cases = v.split(',');
        break;
      case '--bound':
        a.boundMs = Number(v) * 1000;
        break;
      case '--json':
        a.json = v;
        break;
      default:
        throw new Error(
          `unknown argument ${argv[i - 1]} (use --name N --fault F,.. --phase P,.. --case F@P,.. --bound SECONDS --json FILE)`,
        );
    }
  }
  if (!(a.boundMs >= 30_000)) throw new Error('--bound must be at least 30 seconds');
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const all = allCases({ fault: args.fault, phase: args.phase });
  const cases = args.cases.length
    ? args.cases.map((fp) => {
        const c = all.find((x) => `${x.fault}@${x.phase}` === fp);
        if (!c)
          throw new Error(`no case ${fp} in the matrix (fault@PHASE, a phase the fault lists)`);
        return c;
      })
    : all;
  if (cases.length === 0) throw new Error('no case matches --fault/--phase');
  console.log(
    `${cases.length} case(s) on lab ${args.name}, each bounded at ${args.boundMs / 1000} s`,
  );
  const bench = new FaultBench(new OperatorLab(args.name), {
    boundMs: args.boundMs,
    from: '1.0.0',
    target: '2.0.0',
  });
  const rows: CaseReport[] = [];
  const started = new Date().toISOString();
  const save = () => {
    mkdirSync(dirname(args.json), { recursive: true });
    writeFileSync(
      args.json,
      `${JSON.stringify({ started, finished: new Date().toISOString(), lab: args.name, boundMs: args.boundMs, cases: rows }, null, 2)}\n`,
    );
  };
  try {
    await bench.start();
    for (const c of cases) {
      const r = await bench.run(c);
      rows.push(r);
      save();
      console.log(
        `${r.fault} on ${r.node} in ${r.phase}: ${r.result} (${r.endPhase}) in ${(r.timeToEndMs / 1000).toFixed(1)} s; ` +
          `${r.ok ? 'ended well' : `did not end well: ${r.violations.join('; ')}`}; "${r.message}"`,
      );
    }
  } finally {
    await bench.stop();
  }
  console.log(`\n${formatTable(rows)}\n`);
  const bad = rows.filter((r) => !r.ok);
  console.log(`${rows.length - bad.length} of ${rows.length} ended well; JSON in ${args.json}`);
  if (bad.length) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
