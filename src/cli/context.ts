// What every long-running command needs first: the configuration (file +
// environment), the store (migrated), and the settings in force.
import { applyEnv, loadConfigFile, resolveUpgradeSettings } from '../config/load.js';
import type { ConfigFile } from '../config/schema.js';
import { settingsFromStore, type UpgradeSettings } from '../config/settings.js';
import { migrate } from '../store/migrate.js';
import { openStore } from '../store/open-store.js';
import type { SqlClient } from '../store/sql-client.js';
import { loadUpgradeConfig } from '../store/upgrades.js';

export interface ContextOptions {
  config?: string;
  databaseUrl?: string;
  dataDir?: string;
}

export interface CommandContext {
  config: ConfigFile;
  db: SqlClient;
  settings: UpgradeSettings;
  /** Migrations this call applied (empty: the store was up to date). */
  applied: string[];
}

/**
 * Which store: flag > environment > file (config has the environment
 * applied). A folder on the command line means the embedded store, whatever
 * the file or $PAIRSHIFT_DATABASE_URL say.
 */
export function storeChoice(
  opts: ContextOptions,
  config: ConfigFile,
): {
  databaseUrl: string | undefined;
  dataDir: string | undefined;
  passwordFile?: string | undefined;
} {
  return opts.dataDir
    ? { databaseUrl: opts.databaseUrl, dataDir: opts.dataDir }
    : {
        databaseUrl: opts.databaseUrl ?? config.store?.databaseUrl,
        dataDir: config.store?.dataDir,
        passwordFile: config.store?.passwordFile,
      };
}

export async function openContext(opts: ContextOptions): Promise<CommandContext> {
  const config = applyEnv(opts.config ? await loadConfigFile(opts.config) : {}, process.env);
  const db = await openStore(storeChoice(opts, config)).catch((err: unknown) => {
    throw new Error('cannot open the store', { cause: err });
  });
  try {
    const { applied } = await migrate(db);
    const settings = resolveUpgradeSettings(settingsFromStore(await loadUpgradeConfig(db)), config);
    return { config, db, settings, applied };
  } catch (err) {
    await db.close();
    throw err;
  }
}
