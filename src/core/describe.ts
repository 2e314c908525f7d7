// A plain-text rendering of the state machine and its settings, for people:
// `pairshift demo` prints it, and it doubles as a check that the table reads
// the way the task list does.

import { formatDuration } from '../config/duration.js';
import type { UpgradeSettings } from '../config/settings.js';
import { TRANSITION_RULES } from './machine.js';
import { PHASES, TERMINAL_PHASES } from './phases.js';

export function describeMachine(settings: UpgradeSettings): string {
  const lines: string[] = [];
  lines.push(`phases (${PHASES.length}): ${PHASES.join(', ')}`);
  lines.push(`terminal: ${TERMINAL_PHASES.join(', ')}`);
  lines.push('', 'transitions:');
  for (const r of TRANSITION_RULES) {
    const to = typeof r.to === 'string' ? r.to : '<why it started: FAILED, CANCELLED or TIMEOUT>';
    const guard = r.guard ? ` [if ${r.guard}]` : '';
    lines.push(`  ${r.from.join('|')} --${r.event}${guard}--> ${to}   # ${r.note}`);
  }
  lines.push('', 'settings:');
  for (const [key, value] of Object.entries(settings)) {
    const shown =
      typeof value === 'number' && /Timeout|Interval|Budget|Grace/.test(key)
        ? formatDuration(value)
        : String(value);
    lines.push(`  ${key}: ${shown}`);
  }
  return lines.join('\n');
}
