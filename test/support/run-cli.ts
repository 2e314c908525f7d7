// Runs the pairshift CLI (or another entry point, runEntry) in-process (from source, no build needed) and
// captures what it prints and the exit code it sets.
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(...args: string[]): Promise<CliResult> {
  return runEntry(main, 'pairshift', args);
}

/** Runs one CLI entry point (pairshift's main, the kubectl plugin's) in-process. */
export async function runEntry(
  entry: (argv: string[]) => Promise<void>,
  name: string,
  args: string[],
): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const before = process.exitCode;
  process.exitCode = undefined;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    await entry(['node', name, ...args]);
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = before;
  return { code, stdout: out.join(''), stderr: err.join('') };
}
