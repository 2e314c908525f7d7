// `pairshift demo`: the README's main job. For now it creates the embedded
// store (or uses --database-url), applies the migrations, and prints the
// state machine with the settings in force; later it drives a full upgrade
// of a lab pair.
import type { Command } from 'commander';
import { applyEnv, loadConfigFile, resolveUpgradeSettings } from '../config/load.js';
import { settingsFromStore } from '../config/settings.js';
import { describeMachine } from '../reconciler/describe.js';
import { migrate } from '../store/migrate.js';
import { openStore } from '../store/open-store.js';
import { loadUpgradeConfig } from '../store/upgrades.js';

interface DemoOptions {
  databaseUrl?: string;
  dataDir?: string;
  config?: string;
}

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('create the store, apply migrations and print the configured state machine')
    .option('--database-url <url>', 'PostgreSQL URL (default: embedded store)')
    .option('--data-dir <dir>', 'embedded store folder (default ./.pairshift/data)')
    .option('--config <file>', 'configuration file')
    .action(async (opts: DemoOptions) => {
      const config = applyEnv(opts.config ? await loadConfigFile(opts.config) : {}, process.env);
      // A folder on the command line means the embedded store, whatever the
      // file or $PAIRSHIFT_DATABASE_URL say.
      const db = await openStore(
        opts.dataDir
          ? { databaseUrl: opts.databaseUrl, dataDir: opts.dataDir }
          : {
              databaseUrl: opts.databaseUrl ?? config.store?.databaseUrl,
              dataDir: config.store?.dataDir,
            },
      ).catch((err: unknown) => {
        throw new Error(`cannot open the store while starting the demo`, { cause: err });
      });
      try {
        const result = await migrate(db);
        const say = (s: string) => process.stdout.write(`${s}\n`);
        say(
          result.applied.length > 0
            ? `store ready: applied ${result.applied.join(', ')}`
            : 'store ready: migrations up to date',
        );
        const settings = resolveUpgradeSettings(
          settingsFromStore(await loadUpgradeConfig(db)),
          config,
        );
        say('');
        say(describeMachine(settings));
      } finally {
        await db.close();
      }
    });
}
