// `pairshift machine`: creates the embedded store (or uses --database-url),
// applies the migrations, and prints the upgrade state machine with the
// settings in force.
import type { Command } from 'commander';
import { describeMachine } from '../core/describe.js';
import { openContext } from './context.js';

export function registerMachineCommands(program: Command): void {
  program
    .command('machine')
    .description('create the store, apply migrations and print the configured state machine')
    .option('--database-url <url>', 'PostgreSQL URL (default: embedded store)')
    .option('--data-dir <dir>', 'embedded store folder (default ./.pairshift/data)')
    .option('--config <file>', 'configuration file')
    .action(async (opts: { databaseUrl?: string; dataDir?: string; config?: string }) => {
      const ctx = await openContext(opts);
      try {
        const say = (s: string) => process.stdout.write(`${s}\n`);
        say(
          ctx.applied.length > 0
            ? `store ready: applied ${ctx.applied.join(', ')}`
            : 'store ready: migrations up to date',
        );
        say('');
        say(describeMachine(ctx.settings));
      } finally {
        await ctx.db.close();
      }
    });
}
