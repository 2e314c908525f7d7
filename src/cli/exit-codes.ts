// The exit codes of the pairshift CLI, in one place, so that a pipeline can
// tell "the upgrade failed" from "I typed the command wrong" from "the API
// is down" without reading stderr. kubectl and `kubectl argo rollouts
// status` exit 1 for all of these; we keep 1 as the catch-all (every other
// pairshift command already exits 1 on an error) and give the outcomes a
// script branches on their own numbers. docs/packages.md ("Exit codes")
// lists them; the numbers are part of the CLI's contract: never renumber.

import type { Phase } from '../core/phases.js';

export const EXIT = {
  /** Done; for progress: the upgrade is COMPLETE (or, without --watch, still running). */
  OK: 0,
  /** Any other failure: the API refused the request (401, 403, 409, 422, ...) or failed (5xx). */
  ERROR: 1,
  /** The command line is wrong: an unknown flag, a missing argument, a bad value. */
  USAGE: 2,
  /** The API knows no such upgrade or pair (404). */
  NOT_FOUND: 3,
  /** The API could not be reached (or, with --watch, stayed unreachable past --reconnect-for). */
  API_UNREACHABLE: 4,
  /** --timeout passed before the upgrade ended. */
  WAIT_TIMEOUT: 5,
  /** The upgrade is halted (Stalled): the operator waits for the cause to go away or a person. */
  HALTED: 6,
  /** The upgrade ended without COMPLETE: FAILED, TIMEOUT, UNREACHABLE or CANCELLED. */
  UPGRADE_FAILED: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Each code in a few words, for `pairshift upgrade --help` (docs/packages.md has the full table). */
export const EXIT_MEANINGS: Readonly<Record<ExitCode, string>> = {
  [EXIT.OK]: 'done (progress: the upgrade is COMPLETE, or running without --watch)',
  [EXIT.ERROR]: 'any other error (the API refused or failed the request)',
  [EXIT.USAGE]: 'wrong command line (flag, argument, value, unreadable file)',
  [EXIT.NOT_FOUND]: 'no such upgrade or pair',
  [EXIT.API_UNREACHABLE]: 'the API could not be reached',
  [EXIT.WAIT_TIMEOUT]: '--timeout passed before the upgrade ended',
  [EXIT.HALTED]: 'the upgrade is halted (Stalled): it needs a person',
  [EXIT.UPGRADE_FAILED]: 'the upgrade ended in FAILED, TIMEOUT, UNREACHABLE or CANCELLED',
};

export function exitCodesHelp(): string {
  const rows = Object.entries(EXIT_MEANINGS).map(
    ([code, what]) => `  ${code.padStart(2)}  ${what}`,
  );
  return ['', 'Exit codes:', ...rows].join('\n');
}

/** An error that says which exit code it ends the command with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** A mistake on the command line (exit 2), found by our own checks rather than commander's. */
export function usageError(message: string, options?: ErrorOptions): CliError {
  return new CliError(message, EXIT.USAGE, options);
}

/** The exit code an error ends the command with: its own, else the catch-all. */
export function exitCodeOf(err: unknown): ExitCode {
  return err instanceof CliError ? err.exitCode : EXIT.ERROR;
}

/** The exit code of an API answer that is not a success. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.NOT_FOUND;
  // 400: what we sent was malformed, which for the CLI means what was typed
  // (an upgrade id that is not one); 413 and 422 are about a package and
  // stay errors.
  if (status === 400) return EXIT.USAGE;
  return EXIT.ERROR;
}

/**
 * What an upgrade's state means for a command that waits on it: done (OK),
 * go on waiting (null), or the code to end with. A halt counts only before
 * the end (the API never reports one for a finished upgrade).
 */
export function exitCodeForUpgrade(phase: Phase, halted: boolean): ExitCode | null {
  switch (phase) {
    case 'COMPLETE':
      return EXIT.OK;
    case 'FAILED':
    case 'TIMEOUT':
    case 'UNREACHABLE':
    case 'CANCELLED':
      return EXIT.UPGRADE_FAILED;
    default:
      return halted ? EXIT.HALTED : null;
  }
}
