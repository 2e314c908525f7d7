// `pairshift demo`: the README's main job. A lab pair comes up, the operator
// upgrades it from 1.0.0 with live progress, a summary says what it cost
// clients, and the lab goes away again (src/demo/lab-upgrade.ts).
import { type Command, Option } from 'commander';
import { runLabUpgrade } from '../demo/lab-upgrade.js';

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description(
      'bring up a lab pair, upgrade it 1.0.0 -> 2.0.0 with the operator, summarise, tear down (root)',
    )
    .option('--name <name>', 'lab name', 'demo')
    .addOption(
      new Option('--to <version>', 'version to upgrade to')
        .choices(['2.0.0', '3.0.0', '4.0.0'])
        .default('2.0.0'),
    )
    .option(
      '--broken',
      'use a package that starts but fails /health: shows the automatic rollback',
      false,
    )
    .option('--keep', 'leave the lab up afterwards', false)
    .action(async (o: { name: string; to: string; broken: boolean; keep: boolean }) => {
      const summary = await runLabUpgrade({
        name: o.name,
        targetVersion: o.to,
        broken: o.broken,
        keep: o.keep,
        say: (line) => process.stdout.write(`${line}\n`),
      });
      const expected = o.broken ? 'FAILED' : 'COMPLETE';
      if (summary.phase !== expected) process.exitCode = 1;
    });
}
