// The `pairshift` command. Each command group lives in its own module and
// registers itself here; this file only wires them and turns errors into one
// readable line and a non-zero exit (stack traces only with PAIRSHIFT_DEBUG=1).
// Exit codes: exit-codes.ts (a usage error is 2, an error that names no code 1).
import { Command } from 'commander';
import { registerConfigCommands } from './config.js';
import { registerDbCommands } from './db.js';
import { registerDemoCommands } from './demo.js';
import { registerLabCommands } from './lab.js';
import { registerMachineCommands } from './machine.js';
import { registerOperatorCommands } from './operator.js';
import { registerPackageCommands } from './package.js';
import { registerProbeCommands } from './probe.js';
import { runProgram } from './run-program.js';
import { registerUpgradeCommands } from './upgrade.js';

export function buildProgram(): Command {
  const program = new Command('pairshift')
    .description('Zero-downtime rolling upgrades of bare-metal HA pairs')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerDemoCommands(program);
  registerOperatorCommands(program);
  registerMachineCommands(program);
  registerConfigCommands(program);
  registerDbCommands(program);
  registerProbeCommands(program);
  registerPackageCommands(program);
  registerLabCommands(program);
  registerUpgradeCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await runProgram(buildProgram(), argv);
}
