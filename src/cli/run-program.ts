// How every pairshift command line ends: what a program throws becomes one
// line on stderr, named after the program, and its exit code
// (exit-codes.ts; stack traces only with PAIRSHIFT_DEBUG=1). Shared by
// `pairshift` (main.ts) and `kubectl-pairshift` (kubectl-plugin.ts), which
// must not load each other's commands.
import { type Command, CommanderError } from 'commander';
import { describeError } from './errors.js';
import { EXIT, exitCodeOf } from './exit-codes.js';

/**
 * Runs a program (pairshift, kubectl-pairshift) and turns what it throws
 * into one line on stderr, named after the program, and its exit code.
 */
export async function runProgram(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed help or the usage error; help and
      // --version asked for end 0, anything else was a wrong command line
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    process.stderr.write(`${program.name()}: ${describeError(err)}\n`);
    if (process.env.PAIRSHIFT_DEBUG === '1' && err instanceof Error) {
      process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = exitCodeOf(err);
  }
}
