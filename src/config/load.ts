// Loading configuration: a YAML file, then environment overrides, each
// validated; the first problem is reported as one line naming the file (or
// the variable), the field and what was expected.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { type ConfigFile, configFileSchema, upgradeSettingsSchema } from './schema.js';
import { BUILT_IN_DEFAULTS, type UpgradeSettings } from './settings.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** The file or environment variable the problem is in. */
    readonly source: string,
    /** The field, dotted (upgrade.vipSwitchTimeout), or '' for the whole document. */
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${source}: ${field ? `${field}: ` : ''}${problem}`);
  }
}

function firstIssue(
  source: string,
  error: z.ZodError,
  fieldName?: (path: string) => string,
): ConfigError {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  let problem = issue.message;
  if (issue.code === 'unrecognized_keys') {
    problem = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  } else if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
    problem = 'is required';
  }
  return new ConfigError(
    fieldName ? fieldName(path) : source,
    fieldName ? '' : path,
    `${problem}${more}`,
  );
}

export function parseConfig(text: string, source: string): ConfigFile {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : '';
    throw new ConfigError(
      source,
      '',
      `not valid YAML${where ? ` at ${where}` : ''}: ${e.message.split(' at line ')[0]}`,
    );
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, '', 'expected a mapping of sections (store, log, upgrade)');
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(source, parsed.error);
  return parsed.data;
}

export async function loadConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(err);
    throw new ConfigError(path, '', `cannot read the configuration file (${why})`);
  }
  return parseConfig(text, path);
}

/** Upgrade setting name -> environment variable (upgradeTimeout -> PAIRSHIFT_UPGRADE_TIMEOUT). */
export function envVarFor(setting: keyof UpgradeSettings): string {
  const snake = setting.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
  return snake.startsWith('UPGRADE_') ? `PAIRSHIFT_${snake}` : `PAIRSHIFT_UPGRADE_${snake}`;
}

const COUNT_SETTINGS = new Set<keyof UpgradeSettings>([
  'vipSwitchRetries',
  'healthCheckRetries',
  'healthCheckConsecutivePasses',
  'backupRetention',
]);

function envValue(setting: keyof UpgradeSettings, text: string): unknown {
  if (setting === 'autoRollback') return text === 'true' ? true : text === 'false' ? false : text;
  if (COUNT_SETTINGS.has(setting)) return /^-?\d+$/.test(text.trim()) ? Number(text) : text;
  return text;
}

/** Environment overrides on top of a parsed file; the variable names the field in errors. */
export function applyEnv(config: ConfigFile, env: NodeJS.ProcessEnv): ConfigFile {
  const out: ConfigFile = {
    ...config,
    store: { ...config.store },
    log: { ...config.log },
    upgrade: { ...config.upgrade },
  };
  const plain: [string, (v: string) => void][] = [
    ['PAIRSHIFT_DATABASE_URL', (v) => (out.store!.databaseUrl = v)],
    ['PAIRSHIFT_DATA_DIR', (v) => (out.store!.dataDir = v)],
    ['PAIRSHIFT_DATABASE_PASSWORD_FILE', (v) => (out.store!.passwordFile = v)],
  ];
  for (const [name, set] of plain) {
    const v = env[name];
    if (v !== undefined && v !== '') set(v);
  }
  Object.assign(out, operatorEnv(out, env));
  const logOverlay: Record<string, string> = {};
  if (env.PAIRSHIFT_LOG_LEVEL) logOverlay.level = env.PAIRSHIFT_LOG_LEVEL;
  if (env.PAIRSHIFT_LOG_FORMAT) logOverlay.format = env.PAIRSHIFT_LOG_FORMAT;
  const log = configFileSchema.shape.log.safeParse(logOverlay);
  if (!log.success) throw firstIssue('env', log.error, (p) => `PAIRSHIFT_LOG_${p.toUpperCase()}`);
  out.log = { ...out.log, ...log.data };

  const overlay: Record<string, unknown> = {};
  for (const key of Object.keys(BUILT_IN_DEFAULTS) as (keyof UpgradeSettings)[]) {
    const v = env[envVarFor(key)];
    if (v !== undefined && v !== '') overlay[key] = envValue(key, v);
  }
  const upgrade = upgradeSettingsSchema.safeParse(overlay);
  if (!upgrade.success) {
    throw firstIssue('env', upgrade.error, (p) => envVarFor(p as keyof UpgradeSettings));
  }
  out.upgrade = { ...out.upgrade, ...upgrade.data };
  return out;
}

/**
 * The operator's own settings that have a command-line flag also have a
 * variable, so every one of them resolves flag > environment > file >
 * default (src/cli/operator.ts applies the flag and the default).
 */
const OPERATOR_ENV: readonly [string, 'packages' | 'operator' | 'api' | 'metrics', string][] = [
  ['PAIRSHIFT_WORK_DIR', 'packages', 'workDir'],
  ['PAIRSHIFT_MANIFESTS_DIR', 'operator', 'manifestsDir'],
  ['PAIRSHIFT_CONCURRENCY', 'operator', 'concurrency'],
  ['PAIRSHIFT_API_LISTEN', 'api', 'listen'],
  ['PAIRSHIFT_METRICS_LISTEN', 'metrics', 'listen'],
  ['PAIRSHIFT_SHUTDOWN_GRACE', 'operator', 'shutdownGrace'],
];

function operatorEnv(config: ConfigFile, env: NodeJS.ProcessEnv): Partial<ConfigFile> {
  const out: Partial<ConfigFile> = {};
  for (const [name, section, field] of OPERATOR_ENV) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    const value = field === 'concurrency' && /^\d+$/.test(text.trim()) ? Number(text) : text;
    const parsed = configFileSchema.shape[section].safeParse({ [field]: value });
    if (!parsed.success) throw firstIssue('env', parsed.error, () => name);
    const merged = { ...(out[section] ?? config[section]), ...parsed.data };
    (out as Record<string, unknown>)[section] = merged;
  }
  return out;
}

/** Built-in defaults, then the store's upgrade_config, then file and environment. */
export function resolveUpgradeSettings(
  fromStore: Partial<UpgradeSettings>,
  config: ConfigFile,
): UpgradeSettings {
  return { ...BUILT_IN_DEFAULTS, ...fromStore, ...config.upgrade };
}
