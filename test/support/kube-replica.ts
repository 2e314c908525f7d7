// One operator replica as its own process, for tests that need real
// processes (SIGSTOP): the operator in Kubernetes mode with the CLI's wiring
// (src/sources/replica.ts: Lease elector + gated source) against the test
// API server, a PostgreSQL store shared with the other replicas, and a
// simulated pair kept in a file so every replica drives the same pair.
// Every step that changes the pair appends "STEP@node identity" to
// effects.log: a side effect repeated by any replica shows there.
// Transpiled and started by test/kube/replicas.test.ts (jest's transform
// does not reach child processes). Settings come from the environment:
//   REPLICA_KUBECONFIG, REPLICA_NAMESPACE, REPLICA_IDENTITY, REPLICA_DATABASE_URL,
//   REPLICA_SIM_DIR, REPLICA_LEASE ("durationSeconds,renewIntervalMs,renewDeadlineMs"),
//   REPLICA_STOP_AT: after this effect is in effects.log, the replica stops
//   itself with SIGSTOP at the start of its next round (a step boundary, so
//   the test knows where), once.
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { BUILT_IN_DEFAULTS } from '../../src/config/settings.js';
import type { Step } from '../../src/core/actions.js';
import type { StepOutcome } from '../../src/core/journal.js';
import { createLogger } from '../../src/log/logger.js';
import { startOperator } from '../../src/operator/operator.js';
import type { UpgradeRuntime } from '../../src/reconciler/reconciler.js';
import { loadKubeConfig } from '../../src/sources/kubernetes.js';
import { leaderElectedSource } from '../../src/sources/replica.js';
import { openPostgres } from '../../src/store/postgres.js';
import { SimPair } from './sim-pair.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const identity = env('REPLICA_IDENTITY');
const simDir = env('REPLICA_SIM_DIR');
const statePath = join(simDir, 'pair.json');
const effectsPath = join(simDir, 'effects.log');
const stopAt = process.env.REPLICA_STOP_AT;
let stopped = false;

function load(): SimPair {
  const sim = new SimPair('1.0.0');
  if (existsSync(statePath)) {
    const s = JSON.parse(readFileSync(statePath, 'utf8'));
    sim.nodes[0] = s.nodes[0];
    sim.nodes[1] = s.nodes[1];
    sim.migrationsApplied = s.migrationsApplied;
    sim.backupsTaken = s.backupsTaken;
    sim.stallRounds = s.stallRounds;
    sim.configConsistent = s.configConsistent;
  }
  return sim;
}

function save(sim: SimPair): void {
  writeFileSync(`${statePath}.tmp`, JSON.stringify(sim));
  renameSync(`${statePath}.tmp`, statePath);
}

class FilePairRuntime implements UpgradeRuntime {
  readonly fromVersion = '1.0.0';
  readonly targetVersion = '2.0.0';

  async observe() {
    if (stopAt && !stopped && existsSync(effectsPath)) {
      const seen = readFileSync(effectsPath, 'utf8').split('\n');
      if (seen.some((l) => l.startsWith(`${stopAt} `))) {
        stopped = true;
        process.stdout.write(`SIGSTOP ${identity}\n`);
        process.kill(process.pid, 'SIGSTOP');
        process.stdout.write(`SIGCONT ${identity}\n`);
      }
    }
    const sim = load();
    sim.tick();
    save(sim);
    return sim.observe();
  }

  async execute(step: Step, node: string | null): Promise<StepOutcome> {
    const sim = load();
    const before = JSON.stringify(sim);
    const outcome = sim.apply(step, node, this.targetVersion, null);
    if (JSON.stringify(sim) !== before) {
      save(sim);
      appendFileSync(effectsPath, `${step}${node ? `@${node}` : ''} ${identity}\n`);
      if (outcome.ok) return { ok: true, detail: `${step} changed the pair` };
    }
    return outcome;
  }

  async downtime() {
    return { httpLongestMs: 0, httpTotalMs: 0 };
  }

  async close() {}
}

async function main(): Promise<void> {
  const [durationSeconds, renewIntervalMs, renewDeadlineMs] = env('REPLICA_LEASE')
    .split(',')
    .map(Number);
  const kubeConfig = loadKubeConfig({ kubeconfigPath: env('REPLICA_KUBECONFIG') });
  const log = {
    info: (m: string) => process.stdout.write(`${identity}: ${m}\n`),
    warn: (m: string) => process.stdout.write(`${identity}: ${m}\n`),
    debug() {},
  };
  const { source, elector } = leaderElectedSource({
    kubeConfig,
    namespace: env('REPLICA_NAMESPACE'),
    identity,
    lease: { durationSeconds, renewIntervalMs, renewDeadlineMs },
    log,
  });
  const db = await openPostgres(env('REPLICA_DATABASE_URL'));
  elector.start();
  const runtime = new FilePairRuntime();
  const op = await startOperator({
    db,
    source,
    settings: BUILT_IN_DEFAULTS,
    logger: createLogger({ stream: new PassThrough(), format: 'json' }),
    trustedKeys: [],
    workDir: simDir,
    runtimes: async () => runtime,
  });
  process.stdout.write(`READY ${identity}\n`);
  process.on('SIGTERM', () => {
    void (async () => {
      await op.stop();
      await elector.stop({ release: false });
      await db.close();
      process.exit(0);
    })();
  });
}

main().catch((err) => {
  process.stderr.write(`${identity}: ${(err as Error).stack}\n`);
  process.exit(1);
});
