// Logging with winston: JSON lines in production (and whenever output is not
// a terminal), readable lines on a terminal. Redaction runs first, inside the
// logger, so no transport can see a secret.
import type { Writable } from 'node:stream';
import winston from 'winston';
import { redact, type SecretRegistry, secrets } from './redact.js';

export type LogFormat = 'json' | 'pretty' | 'auto';

export interface LoggerOptions {
  level?: 'error' | 'warn' | 'info' | 'debug';
  format?: LogFormat;
  /** Where console output goes; stderr by default so stdout stays for command output. */
  stream?: Writable & { isTTY?: boolean };
  /** Also append JSON lines to this file. */
  file?: string;
  registry?: SecretRegistry;
}

export type Logger = winston.Logger;

// winston keeps level/message under symbols too; only enumerable fields are redacted and symbols copied across.
const redactFormat = winston.format((info, opts: unknown) => {
  const { registry } = opts as { registry: SecretRegistry };
  const clean = redact({ ...info }, registry) as Record<string, unknown>;
  for (const key of Object.keys(info)) delete (info as Record<string, unknown>)[key];
  Object.assign(info, clean);
  return info;
});

const pretty = winston.format.printf((info) => {
  const { level, message, timestamp, upgradeId, ...rest } = info as Record<string, unknown>;
  const ctx = upgradeId ? ` [${upgradeId}]` : '';
  const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
  return `${String(timestamp).slice(11, 23)} ${level}${ctx} ${message}${extra}`;
});

export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  const registry = opts.registry ?? secrets;
  const format =
    opts.format === 'auto' || !opts.format ? (stream.isTTY ? 'pretty' : 'json') : opts.format;
  const base = [redactFormat({ registry }), winston.format.timestamp()];
  const json = winston.format.combine(...base, winston.format.json());
  const transports: winston.transport[] = [
    new winston.transports.Stream({
      stream,
      format:
        format === 'json'
          ? json
          : winston.format.combine(
              ...base,
              winston.format.colorize({ level: Boolean(stream.isTTY) }),
              pretty,
            ),
    }),
  ];
  if (opts.file)
    transports.push(new winston.transports.File({ filename: opts.file, format: json }));
  return winston.createLogger({ level: opts.level ?? 'info', transports });
}

/** A child logger whose every line carries the upgrade it is about. */
export function upgradeLogger(logger: Logger, upgradeId: string): Logger {
  return logger.child({ upgradeId });
}
