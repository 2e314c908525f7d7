// `pairshift config check FILE`: validate a configuration file together with
// the environment overrides, and show the settings that would be in force.
import type { Command } from 'commander';
import { formatDuration } from '../config/duration.js';
import { applyEnv, loadConfigFile, resolveUpgradeSettings } from '../config/load.js';
import { redactDatabaseUrl } from '../store/redact.js';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('the operator configuration file');
  config
    .command('check')
    .argument('<file>', 'YAML configuration file')
    .description('validate FILE (and PAIRSHIFT_* environment overrides) and print the result')
    .action(async (file: string) => {
      const parsed = applyEnv(await loadConfigFile(file), process.env);
      const settings = resolveUpgradeSettings({}, parsed);
      const out: string[] = [`${file}: ok`];
      const url = parsed.store?.databaseUrl;
      out.push(
        `store: ${url ? `postgres ${redactDatabaseUrl(url)}` : `embedded ${parsed.store?.dataDir ?? '.pairshift/data'}`}`,
      );
      out.push(`log: level ${parsed.log?.level ?? 'info'}, format ${parsed.log?.format ?? 'auto'}`);
      out.push(
        'upgrade (file and environment over the built-in defaults; the store may change defaults):',
      );
      for (const [k, v] of Object.entries(settings)) {
        const set = parsed.upgrade && k in parsed.upgrade ? ' (set)' : '';
        out.push(
          `  ${k}: ${typeof v === 'number' && /Timeout|Interval|Budget/.test(k) ? formatDuration(v) : v}${set}`,
        );
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
