// How `pairshift upgrade` prints a result: text for a person, or the API's
// answer as JSON or YAML for a script (-o json|yaml, like kubectl's -o).
// YAML comes from the `yaml` package the configuration loader already uses.

import { Option } from 'commander';
import { stringify } from 'yaml';

export const OUTPUT_FORMATS = ['text', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format')
    .choices(OUTPUT_FORMATS)
    .default('text');
}

/** The whole value in a machine format (a YAML document ends with a newline; JSON gets one). */
export function machineText(format: Exclude<OutputFormat, 'text'>, value: unknown): string {
  return format === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value);
}

/** Prints a result: `text()` for a person, the value itself for -o json|yaml. */
export function printResult(format: OutputFormat, value: unknown, text: () => string): void {
  process.stdout.write(format === 'text' ? `${text()}\n` : machineText(format, value));
}
