// `pairshift lab up|down|status|exec|fault`: the lab pair on this machine.
import { type Command, Option } from 'commander';
import { runFault } from '../lab/fault-run.js';
import { FAULT_KINDS, FAULTS, isFaultKind } from '../lab/faults.js';
import {
  collectStatus,
  DEFAULT_APP_VERSION,
  formatStatus,
  labDown,
  labExec,
  labUp,
} from '../lab/index.js';

const DEFAULT_NAME = 'lab';
const say = (line: string) => process.stdout.write(`${line}\n`);

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('a real HA pair in network namespaces on this machine (needs root)');

  lab
    .command('up')
    .description('build the lab (idempotent); prints the inventory path')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .option('--app-version <version>', 'version of the app release to install', DEFAULT_APP_VERSION)
    .action(async (o: { name: string; appVersion: string }) => {
      // Ctrl-C: finish the step in flight, then remove what was built
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const r = await labUp({
        name: o.name,
        appVersion: o.appVersion,
        log: say,
        signal: abort.signal,
      }).finally(() => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      });
      say(
        `lab ${o.name} ${r.alreadyUp ? 'was already up' : `is up in ${r.seconds.toFixed(1)} s`}: VIP ${r.plan.vip}`,
      );
      say(r.inventory);
    });

  lab
    .command('down')
    .description('remove every namespace, process, mount and folder of the lab')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .action(async (o: { name: string }) => {
      await labDown({ name: o.name, log: say });
    });

  lab
    .command('status')
    .description('what the lab is running, read from the lab itself')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .addOption(
      new Option('--output <format>', 'output format').choices(['text', 'json']).default('text'),
    )
    .action(async (o: { name: string; output: string }) => {
      const s = await collectStatus(o.name);
      say(o.output === 'json' ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  lab
    .command('exec')
    .description('run a command in node a, node b or the client namespace')
    .usage('[--name N] a|b|client -- CMD...')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .argument('<target>', 'a, b or client')
    .argument('<cmd...>', 'command and arguments (after --)')
    .passThroughOptions()
    .action(async (target: string, cmd: string[], o: { name: string }) => {
      if (target !== 'a' && target !== 'b' && target !== 'client') {
        throw new Error(`lab exec target must be a, b or client, not "${target}"`);
      }
      // with passThroughOptions the separator itself reaches us
      const argv = cmd[0] === '--' ? cmd.slice(1) : cmd;
      process.exitCode = await labExec(o.name, target, argv);
    });

  lab
    .command('fault')
    .description(
      `inject (or --undo) a fault on a node; idempotent. Kinds: ${FAULT_KINDS.filter((k) => !FAULTS[k].package).join(', ')}`,
    )
    .argument('<kind>', 'the fault')
    .option('--name <name>', 'lab name', DEFAULT_NAME)
    .requiredOption('--node <node>', 'a or b')
    .option('--undo', 'undo the fault')
    .option('--stage-dir <dir>', "remove-staged: the operator's staging folder of the upgrade")
    .option('--version <version>', "slow-health: the version whose /health is slow ('*': any)", '*')
    .option('--delay <seconds>', 'slow-health: seconds each /health answer is held back', '40')
    .action(
      async (
        kind: string,
        o: {
          name: string;
          node: string;
          undo?: boolean;
          stageDir?: string;
          version: string;
          delay: string;
        },
      ) => {
        if (!isFaultKind(kind) || FAULTS[kind].package) {
          throw new Error(
            `unknown fault "${kind}"; one of ${FAULT_KINDS.filter((k) => !FAULTS[k].package).join(', ')}`,
          );
        }
        if (o.node !== 'a' && o.node !== 'b')
          throw new Error(`--node must be a or b, not "${o.node}"`);
        const delaySeconds = Number(o.delay);
        if (!Number.isInteger(delaySeconds) || delaySeconds < 1)
          throw new Error(`--delay must be a whole number of seconds, not "${o.delay}"`);
        await runFault(o.name, kind, o.node, {
          undo: o.undo ?? false,
          version: o.version,
          delaySeconds,
          ...(o.stageDir ? { stageDir: o.stageDir } : {}),
        });
        say(
          `${o.undo ? 'undone' : 'injected'}: ${kind} on node ${o.node} of lab ${o.name} (${FAULTS[kind].summary})`,
        );
      },
    );
}
