// `pairshift probe`: measure what a client of the VIP sees (downtime and
// lost writes) while something else moves the pair. Run it from the lab's
// client namespace: `pairshift lab exec client -- pairshift probe ...`.
import { type Command, Option } from 'commander';
import {
  formatProgress,
  formatReport,
  PROBER_DEFAULTS,
  startProber,
  verdict,
} from '../prober/index.js';

const PROGRESS_EVERY_MS = 3000;

interface ProbeFlags {
  http?: string;
  db?: string;
  verifyDb: string[];
  rateHz: number;
  duration?: number;
  table: string;
  httpTimeoutMs: number;
  dbTimeoutMs: number;
  catchUpTimeout: number;
  output: 'text' | 'json';
}

export function registerProbeCommands(program: Command): void {
  program
    .command('probe')
    .description(
      'Probe a VIP over HTTP and with numbered database inserts; report outages and, with --verify-db, lost acknowledged writes',
    )
    .option(
      '--http <url>',
      'health URL probed over a new connection each time, e.g. http://198.18.0.100:8080/health',
    )
    .option('--db <url>', 'database URL through the VIP, e.g. postgres://app@198.18.0.100:5432/app')
    .option(
      '--verify-db <url>',
      "a node's own database URL (not the VIP), read back after the run; repeat for each node",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      '--rate-hz <n>',
      'probes per second for each of http and db (20 to 1000)',
      number('--rate-hz'),
      PROBER_DEFAULTS.rateHz,
    )
    .option(
      '--duration <seconds>',
      'stop after this long (default: until SIGINT or SIGTERM)',
      number('--duration'),
    )
    .option('--table <name>', 'table the probe rows go into', PROBER_DEFAULTS.table)
    .option(
      '--http-timeout-ms <ms>',
      'timeout of one HTTP probe',
      number('--http-timeout-ms'),
      PROBER_DEFAULTS.httpTimeoutMs,
    )
    .option(
      '--db-timeout-ms <ms>',
      'connect timeout, and wait for one insert to be acknowledged',
      number('--db-timeout-ms'),
      PROBER_DEFAULTS.dbTimeoutMs,
    )
    .option(
      '--catch-up-timeout <seconds>',
      'how long verification waits for standbys to replay the last writes',
      number('--catch-up-timeout'),
      PROBER_DEFAULTS.catchUpTimeoutMs / 1000,
    )
    .addOption(
      new Option('--output <format>', 'output format').choices(['text', 'json']).default('text'),
    )
    .action(async (flags: ProbeFlags) => {
      if (!flags.http && !flags.db) throw new Error('probe needs --http, --db, or both');
      if (flags.duration !== undefined && !(flags.duration > 0)) {
        throw new Error(`--duration must be a positive number of seconds, got ${flags.duration}`);
      }
      // Listen for the stop signal before starting: a SIGTERM that comes
      // while the prober still starts (connecting, creating its table) then
      // ends it with a report, not node's default death without one.
      const stopped = untilDone(flags.duration);
      const prober = await startProber({
        httpUrl: flags.http,
        dbUrl: flags.db,
        verifyDbUrls: flags.verifyDb,
        rateHz: flags.rateHz,
        table: flags.table,
        httpTimeoutMs: flags.httpTimeoutMs,
        dbTimeoutMs: flags.dbTimeoutMs,
        catchUpTimeoutMs: flags.catchUpTimeout * 1000,
      });
      const progress = process.stderr.isTTY
        ? setInterval(() => {
            process.stderr.write(`${formatProgress(prober.snapshot())}\n`);
          }, PROGRESS_EVERY_MS)
        : undefined;
      // One line when the probes run, for whoever waits on it (the lab's tests).
      process.stderr.write(`probe: started (${describeTargets(flags)})\n`);
      await stopped;
      if (progress) clearInterval(progress);
      const report = await prober.stop();
      process.stdout.write(
        flags.output === 'json'
          ? `${JSON.stringify(report, null, 2)}\n`
          : `${formatReport(report)}\n`,
      );
      const failure = verdict(report);
      if (failure) throw new Error(`probe verification failed: ${failure}`);
    });
}

function describeTargets(flags: ProbeFlags): string {
  const parts = [];
  if (flags.http) parts.push('HTTP');
  if (flags.db) parts.push('database writes');
  return `${parts.join(' and ')} at ${flags.rateHz} Hz`;
}

/** Resolves after `seconds`, or at the first SIGINT/SIGTERM. */
function untilDone(seconds: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    const timer = seconds === undefined ? undefined : setTimeout(done, seconds * 1000);
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

function number(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n))
      throw new Error(`${flag} must be a number, got "${v}"`);
    return n;
  };
}
