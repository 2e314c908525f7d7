// The thirteen phases of an upgrade (task list 2.1.1): the happy path, then
// rollback and the other ends. PHASES is the single source of truth: the state
// machine, the CHECK constraints in migrations/ and the CRD enum are all
// checked against it by tests.

/**
 * The phases an upgrade passes through when nothing goes wrong, in order
 * (task list section 4). Written once so that tests and benches checking a
 * whole run compare against the same path.
 */
export const HAPPY_PATH = [
  'IDLE',
  'PREPARE',
  'BACKUP',
  'UPGRADE_BACKUP',
  'VIP_SWITCH',
  'UPGRADE_MASTER',
  'VERIFY',
  'COMPLETE',
] as const;

export const PHASES = [
  ...HAPPY_PATH,
  'ROLLBACK',
  'CANCELLED',
  'FAILED',
  'TIMEOUT',
  'UNREACHABLE',
] as const;

export type Phase = (typeof PHASES)[number];

/** Phases an upgrade never leaves. */
export const TERMINAL_PHASES: readonly Phase[] = [
  'COMPLETE',
  'CANCELLED',
  'FAILED',
  'TIMEOUT',
  'UNREACHABLE',
];

export function isPhase(value: unknown): value is Phase {
  return typeof value === 'string' && (PHASES as readonly string[]).includes(value);
}

export function isTerminal(phase: Phase): boolean {
  return TERMINAL_PHASES.includes(phase);
}
