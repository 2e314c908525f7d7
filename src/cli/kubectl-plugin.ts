// `kubectl pairshift`: the operator's daily commands straight against the
// cluster (issue 14.1). kubectl runs any `kubectl-pairshift` on PATH as
// `kubectl pairshift`; this talks to the API server through the kubeconfig
// (client-node, as the operator does), so no REST token is needed: what the
// user may do is what their RBAC allows on UpgradeRequests and HAPairs.
//
// Reads print text, or the resource itself with -o json|yaml; `watch`
// follows an upgrade with the same loop, text and exit codes as
// `pairshift upgrade progress --watch` (upgrade-watch.ts, exit-codes.ts).
// approve, cancel and rollback are merge patches of the spec, exactly the
// fields the REST API writes (spec.options.approved, spec.cancel,
// spec.rollback); the operator acts on them. plan, pause and resume wait
// for issue 14.2/14.3 and are not offered.
import { Argument, Command } from 'commander';
import { isPhase, isTerminal } from '../core/phases.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { CliError, EXIT, exitCodesHelp, usageError } from './exit-codes.js';
import { type KObject, PairshiftKube } from './kube-client.js';
import { type OutputFormat, outputOption, printResult } from './output.js';
import { runProgram } from './run-program.js';
import { watchTimingOptions } from './upgrade.js';
import {
  historyItem,
  historyTable,
  logItem,
  logLine,
  progressOf,
  statusText,
} from './upgrade-view.js';
import { followProgress } from './upgrade-watch.js';

const PROGRAM = 'kubectl-pairshift';

interface Globals {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
}

function kubeOf(cmd: Command): PairshiftKube {
  return PairshiftKube.from(cmd.optsWithGlobals() as Globals);
}

function formatOf(cmd: Command): OutputFormat {
  return (cmd.opts() as { output: OutputFormat }).output;
}

/** An upgrade that may still be acted on, or a clear error saying why not. */
async function actionable(kube: PairshiftKube, name: string): Promise<KObject> {
  const ur = await kube.upgradeRequest(name);
  const phase = ur.status?.phase;
  if (isPhase(phase) && isTerminal(phase))
    throw new CliError(`upgrade ${name} has already ended (phase ${phase})`, EXIT.ERROR);
  return ur;
}

function request(kube: PairshiftKube, reason: string) {
  return {
    reason,
    requestedBy: `${PROGRAM}:${kube.user}`,
    requestedAt: new Date().toISOString(),
  };
}

export function buildPluginProgram(): Command {
  const program = new Command(PROGRAM)
    .description('Follow and steer pairshift upgrades through the Kubernetes API (kubeconfig)')
    .option('-n, --namespace <namespace>', 'namespace (default: the kubeconfig context’s)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: the current one)')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText('after', exitCodesHelp());

  program
    .command('status')
    .description('Phase, progress, steps done and to come, the pair’s nodes, measured downtime')
    .argument('<name>', 'UpgradeRequest name')
    .addOption(outputOption())
    .action(async (name: string, _o, cmd: Command) => {
      const kube = kubeOf(cmd);
      const ur = await kube.upgradeRequest(name);
      const pairName = ur.spec?.pairRef?.name;
      const pair = pairName ? await kube.haPair(pairName) : null;
      printResult(formatOf(cmd), { upgradeRequest: ur, haPair: pair }, () =>
        statusText(ur, pair, new Date()),
      );
    });

  watchTimingOptions(
    program
      .command('watch')
      .description('Follow an upgrade until it ends; the exit code says how it ended')
      .argument('<name>', 'UpgradeRequest name')
      .addOption(outputOption()),
  ).action(async (name: string, o, cmd: Command) => {
    const kube = kubeOf(cmd);
    process.exitCode = await followProgress({
      upgradeId: name,
      read: async (silenceMs) => {
        const a = await kube.answer(name, silenceMs);
        return a.status === 200 ? { status: 200, body: progressOf(a.body as KObject) } : a;
      },
      watch: true,
      intervalMs: o.interval,
      timeoutMs: o.timeout,
      reconnectForMs: o.reconnectFor,
      format: o.output,
      terminal: process.stdout.isTTY ? { columns: process.stdout.columns } : null,
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
      voice: { program: PROGRAM, logsCommand: 'kubectl pairshift logs' },
    });
  });

  program
    .command('approve')
    .description('Let an upgrade waiting for approval start (spec.options.approved: true)')
    .argument('<name>', 'UpgradeRequest name')
    .action(async (name: string, _o, cmd: Command) => {
      const kube = kubeOf(cmd);
      const ur = await actionable(kube, name);
      if (ur.spec?.options?.approved !== false) {
        process.stdout.write(`upgrade ${name} does not wait for approval; nothing changed\n`);
        return;
      }
      await kube.patchSpec(name, { options: { approved: true } });
      process.stdout.write(`upgrade ${name} approved\n`);
    });

  program
    .command('cancel')
    .description('Stop an upgrade at a safe point (spec.cancel); changed nodes are rolled back')
    .argument('<name>', 'UpgradeRequest name')
    .option('--reason <text>', 'why (kept in the history)', 'cancelled with kubectl pairshift')
    .action(async (name: string, o: { reason: string }, cmd: Command) => {
      if (!o.reason.trim()) throw usageError('--reason must not be empty');
      const kube = kubeOf(cmd);
      const ur = await actionable(kube, name);
      if (ur.status?.phase === 'ROLLBACK' || ur.spec?.rollback)
        throw new CliError(
          `upgrade ${name} is rolling back; a cancel cannot stop a rollback`,
          EXIT.ERROR,
        );
      if (ur.spec?.cancel)
        throw new CliError(`upgrade ${name} has already been asked to cancel`, EXIT.ERROR);
      await kube.patchSpec(name, { cancel: request(kube, o.reason) });
      process.stdout.write(
        `cancel of ${name} requested (phase ${ur.status?.phase ?? 'IDLE'}); follow it with: kubectl pairshift watch ${name}\n`,
      );
    });

  program
    .command('rollback')
    .description('Roll an upgrade back to the old version from its verified backup (spec.rollback)')
    .argument('<name>', 'UpgradeRequest name')
    .option('--reason <text>', 'why (kept in the history)', 'rolled back with kubectl pairshift')
    .option('--restore-database', 'also restore the database from the backup (default: no)')
    .action(
      async (name: string, o: { reason: string; restoreDatabase?: boolean }, cmd: Command) => {
        if (!o.reason.trim()) throw usageError('--reason must not be empty');
        const kube = kubeOf(cmd);
        const ur = await actionable(kube, name);
        if (ur.status?.phase === 'ROLLBACK' || ur.spec?.rollback)
          throw new CliError(
            `upgrade ${name} is already rolling back or a rollback was requested`,
            EXIT.ERROR,
          );
        if (ur.spec?.cancel)
          throw new CliError(
            `upgrade ${name} is being cancelled; a cancel after changes rolls back by itself`,
            EXIT.ERROR,
          );
        if (!(ur.status?.backups ?? []).length)
          throw new CliError(
            `upgrade ${name} is in phase ${ur.status?.phase ?? 'IDLE'} and has no verified backup yet, so there is nothing to roll back to; nothing on the nodes has changed: cancel it instead (kubectl pairshift cancel ${name})`,
            EXIT.ERROR,
          );
        await kube.patchSpec(name, {
          rollback: {
            ...request(kube, o.reason),
            ...(o.restoreDatabase ? { restoreDatabase: true } : {}),
          },
        });
        process.stdout.write(
          `rollback of ${name} requested${o.restoreDatabase ? ' (database included)' : ''}; follow it with: kubectl pairshift watch ${name}\n`,
        );
      },
    );

  program
    .command('history')
    .description('Every UpgradeRequest in the namespace with its phase and times, oldest first')
    .option('--pair <name>', 'only the upgrades of this pair')
    .addOption(outputOption())
    .action(async (o: { pair?: string }, cmd: Command) => {
      const items = (await kubeOf(cmd).upgradeRequests())
        .filter((ur) => !o.pair || ur.spec?.pairRef?.name === o.pair)
        .map(historyItem)
        .sort((a, b) => (a.created ?? '').localeCompare(b.created ?? ''));
      printResult(formatOf(cmd), { items }, () =>
        items.length ? historyTable(items) : 'no upgrades in this namespace',
      );
    });

  program
    .command('logs')
    .description('The Events the operator recorded about an upgrade (phase changes, halts)')
    .argument('<name>', 'UpgradeRequest name')
    .addOption(outputOption())
    .action(async (name: string, _o, cmd: Command) => {
      const kube = kubeOf(cmd);
      await kube.upgradeRequest(name); // not found is exit 3, not an empty log
      const items = (await kube.eventsOf(name)).map(logItem);
      printResult(formatOf(cmd), { items }, () =>
        items.length
          ? items.map(logLine).join('\n')
          : `no Events recorded for ${name} (Events expire after an hour by default)`,
      );
    });

  program
    .command('completion')
    .description('Print a shell completion script (bash or zsh)')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
    });
  return program;
}

export async function pluginMain(argv: string[]): Promise<void> {
  await runProgram(buildPluginProgram(), argv);
}
