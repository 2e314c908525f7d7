// `pairshift upgrade trigger|progress|rollback|cancel|history|logs`: the CLI
// face of the REST API (task list 3), for operators who drive upgrades from
// a shell. Every command is one HTTP call (progress --watch polls); the
// bearer token comes from --token-file or $PAIRSHIFT_API_TOKEN and is never
// printed. A package upload streams the files from disk (no whole-file
// buffering). A problem+json answer becomes one line: what went wrong, its
// code and the suggested next step. Exit codes: exit-codes.ts (the same for
// every command here); watching and its codes: upgrade-watch.ts.

import { type Command, InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../config/duration.js';
import {
  type ApiOptions,
  type Body,
  call,
  clientFrom,
  DEFAULT_API_URL,
  jsonBody,
  ok,
  uploadBody,
} from './api-client.js';
import { exitCodesHelp, usageError } from './exit-codes.js';
import { type OutputFormat, outputOption, printResult } from './output.js';
import { followProgress } from './upgrade-watch.js';

export { DEFAULT_API_URL };

interface CommonOptions extends ApiOptions {
  output: OutputFormat;
}

const print = (o: CommonOptions, value: unknown, text: () => string) =>
  printResult(o.output, value, text);

const id = (s: string) => encodeURIComponent(s);

function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^[1-9]\d{0,6}$/.test(v))
      throw new InvalidArgumentError(`${name} must be a whole number from 1`);
    return Number(v);
  };
}

/** --interval: whole seconds (as it always took), or a duration from 100ms. */
function interval(v: string): number {
  const ms = /^\d{1,5}$/.test(v) ? Number(v) * 1000 : parseDuration(v);
  if (ms === null || ms < 100)
    throw new InvalidArgumentError(
      `--interval takes seconds (2) or a duration from 100ms (500ms), not ${JSON.stringify(v)}`,
    );
  return ms;
}

/** A duration flag: "90s", "5m", "1h30m"; "0" only where it means "no limit". */
function duration(name: string, zeroMeansNone: boolean) {
  return (v: string): number => {
    if (zeroMeansNone && v.trim() === '0') return 0;
    const ms = parseDuration(v);
    if (ms === null || ms <= 0)
      throw new InvalidArgumentError(
        `${name} takes a duration like 90s, 5m or 1h30m${zeroMeansNone ? ' (0: no limit)' : ''}, not ${JSON.stringify(v)}`,
      );
    return ms;
  };
}

function apiOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'the operator API', DEFAULT_API_URL)
    .option('--token-file <file>', 'file holding the bearer token (default: $PAIRSHIFT_API_TOKEN)')
    .addOption(outputOption());
}

/**
 * How a watch polls and gives up (--interval, --timeout, --reconnect-for),
 * shared with `kubectl pairshift watch` so both take the same values.
 */
export function watchTimingOptions(cmd: Command, prefix = ''): Command {
  return cmd
    .addOption(
      new Option(
        '--interval <time>',
        `${prefix}time between polls, in seconds or a duration (500ms)`,
      )
        .argParser(interval)
        .default(2000, '2s'),
    )
    .addOption(
      new Option(
        '--timeout <duration>',
        `${prefix}give up (exit 5) after this long, e.g. 90s, 5m; 0: no limit`,
      )
        .argParser(duration('--timeout', true))
        .default(0, '0, no limit'),
    )
    .addOption(
      new Option(
        '--reconnect-for <duration>',
        `${prefix}how long to keep trying an API that does not answer (then exit 4)`,
      )
        .argParser(duration('--reconnect-for', false))
        .default(120_000, '2m'),
    );
}

export function registerUpgradeCommands(program: Command): void {
  const up = program
    .command('upgrade')
    .description('Drive upgrades through the operator REST API (trigger, progress, rollback, ...)')
    .addHelpText('after', exitCodesHelp());

  apiOptions(
    up
      .command('trigger')
      .description('Start an upgrade: upload a signed package, or name one on the operator host')
      .requiredOption('--pair <name>', 'the HA pair to upgrade')
      .option('--package <file>', 'package archive to upload (.tar.gz)')
      .option('--signature <file>', 'its signature (default: <package>.sig)')
      .option('--package-path <path>', 'a package already on the operator host (absolute path)')
      .option('--version <version>', 'with --package-path: the package version')
      .option('--signature-path <path>', 'with --package-path: its signature on the operator host')
      .option('--reason <text>', 'why (recorded with the upgrade)')
      .option('--dry-run', 'verify, observe and plan only: nothing on the nodes changes'),
  ).action(async (o) => {
    const c = await clientFrom(o);
    if (Boolean(o.package) === Boolean(o.packagePath))
      throw usageError('give either --package FILE (upload) or --package-path PATH --version V');
    let body: Body;
    if (o.package) {
      if (o.version) throw usageError('--version goes with --package-path; an upload says its own');
      const fields: [string, string][] = [['pair', o.pair]];
      if (o.reason) fields.push(['reason', o.reason]);
      if (o.dryRun) fields.push(['options', JSON.stringify({ dry_run: true })]);
      body = await uploadBody(fields, [
        ['package', o.package],
        ['signature', o.signature ?? `${o.package}.sig`],
      ]);
    } else {
      if (!o.version) throw usageError('--package-path needs --version');
      body = jsonBody({
        pair: o.pair,
        package: {
          path: o.packagePath,
          version: o.version,
          ...(o.signaturePath ? { signature_path: o.signaturePath } : {}),
        },
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.dryRun ? { options: { dry_run: true } } : {}),
      });
    }
    const out = ok(await call(c, 'POST', '/api/v1/upgrade/trigger', body));
    print(
      o,
      out,
      () =>
        `upgrade ${out.upgrade_id} started: ${out.pair} -> ${out.target_version} (${out.phase}); ` +
        `follow it with: pairshift upgrade progress ${out.upgrade_id} --watch`,
    );
  });

  const progress = apiOptions(
    up
      .command('progress')
      .description('Show an upgrade’s phase and progress')
      .argument('<id>', 'upgrade id')
      .option('--watch', 'keep showing changes until the upgrade ends (exit code: how it ended)'),
  );
  watchTimingOptions(progress, 'with --watch: ').action(async (upgradeId: string, o) => {
    const c = await clientFrom(o);
    if (!o.watch && o.timeout > 0) throw usageError('--timeout goes with --watch');
    const terminal = process.stdout.isTTY ? { columns: process.stdout.columns } : null;
    process.exitCode = await followProgress({
      upgradeId,
      read: (silenceMs) =>
        call(c, 'GET', `/api/v1/upgrade/progress/${id(upgradeId)}`, undefined, silenceMs),
      watch: Boolean(o.watch),
      intervalMs: o.interval,
      timeoutMs: o.timeout,
      reconnectForMs: o.reconnectFor,
      format: o.output,
      terminal,
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
    });
  });

  for (const action of ['rollback', 'cancel'] as const) {
    const command = up
      .command(action)
      .description(
        action === 'rollback'
          ? 'Roll an upgrade back to the old version'
          : 'Stop an upgrade at a safe point',
      )
      .argument('<id>', 'upgrade id')
      .requiredOption('--reason <text>', 'why (recorded with the request)');
    if (action === 'rollback') {
      // Off unless asked: restoring the dump takes back every write made
      // after the backup (docs/manual/rollback.md).
      command.option(
        '--restore-database',
        'also restore the database from the backup (writes made after it are lost)',
      );
    }
    apiOptions(command).action(async (upgradeId: string, o) => {
      const c = await clientFrom(o);
      const body =
        action === 'rollback' && o.restoreDatabase === true
          ? { reason: o.reason, restore_database: true }
          : { reason: o.reason };
      const out = ok(
        await call(c, 'POST', `/api/v1/upgrade/${action}/${id(upgradeId)}`, jsonBody(body)),
      );
      print(o, out, () => `${action} of ${out.upgrade_id} accepted (${out.phase}): ${out.effect}`);
    });
  }

  apiOptions(
    up
      .command('history')
      .description('Phase transitions of all upgrades, newest first')
      .option('--page <n>', 'page number', positiveInt('--page'))
      .option('--page-size <n>', 'entries per page', positiveInt('--page-size')),
  ).action(async (o) => {
    const c = await clientFrom(o);
    const q = new URLSearchParams();
    if (o.page) q.set('page', String(o.page));
    if (o.pageSize) q.set('page_size', String(o.pageSize));
    const out = ok(await call(c, 'GET', `/api/v1/upgrade/history${q.size ? `?${q}` : ''}`));
    print(o, out, () =>
      pageText(
        out,
        (e) =>
          `${e.at}  ${e.upgrade_id}  ${e.from_phase ?? '-'} -> ${e.to_phase}  ${e.cause} (${e.actor})`,
      ),
    );
  });

  apiOptions(
    up
      .command('logs')
      .description('An upgrade’s log, newest first')
      .argument('<id>', 'upgrade id')
      .addOption(
        new Option('--level <level>', 'only this level').choices(['INFO', 'WARNING', 'ERROR']),
      )
      .option('--page <n>', 'page number', positiveInt('--page'))
      .option('--page-size <n>', 'entries per page', positiveInt('--page-size')),
  ).action(async (upgradeId: string, o) => {
    const c = await clientFrom(o);
    const q = new URLSearchParams();
    if (o.level) q.set('level', o.level);
    if (o.page) q.set('page', String(o.page));
    if (o.pageSize) q.set('page_size', String(o.pageSize));
    const out = ok(
      await call(c, 'GET', `/api/v1/upgrade/logs/${id(upgradeId)}${q.size ? `?${q}` : ''}`),
    );
    print(o, out, () =>
      pageText(
        out,
        (e) => `${e.timestamp}  ${String(e.level).padEnd(7)} ${e.source}: ${e.message}`,
      ),
    );
  });
}

function pageText(
  out: Record<string, unknown>,
  line: (e: Record<string, unknown>) => string,
): string {
  const items = (out.items ?? []) as Record<string, unknown>[];
  const page = Number(out.page);
  const size = Number(out.page_size);
  const total = Number(out.total);
  const pages = Math.max(1, Math.ceil(total / size));
  const head = `page ${page} of ${pages} (${total} in all)`;
  return items.length === 0 ? `${head}: nothing here` : [head, ...items.map(line)].join('\n');
}
