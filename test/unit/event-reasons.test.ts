// Event reasons are UpperCamelCase (Kubernetes' convention; tools match on
// them). Checks every reason src/core/event-reasons.ts lists, and that every
// recordEvent call in src/ takes its reason from there, so a new Event cannot
// bring a reason that was never checked.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  EVENT_REASON_RE,
  HALT_REASONS,
  phaseEventReason,
  REASON,
} from '../../src/core/event-reasons.js';
import { PHASES } from '../../src/core/phases.js';

const src = join(import.meta.dirname, '..', '..', 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

test('every reason is UpperCamelCase, the phase ones included', () => {
  const all = [...Object.values(REASON), ...HALT_REASONS, ...PHASES.map(phaseEventReason)];
  expect(all.filter((r) => !EVENT_REASON_RE.test(r))).toEqual([]);
  expect(new Set(all).size).toBe(all.length);
});

test('phase Events: Phase<Name> while running, Upgrade<End> at the end', () => {
  expect(phaseEventReason('UPGRADE_BACKUP')).toBe('PhaseUpgradeBackup');
  expect(phaseEventReason('VIP_SWITCH')).toBe('PhaseVipSwitch');
  expect(phaseEventReason('COMPLETE')).toBe('UpgradeComplete');
  expect(phaseEventReason('FAILED')).toBe('UpgradeFailed');
  expect(phaseEventReason('CANCELLED')).toBe('UpgradeCancelled');
});

test('the pattern refuses what the old reasons looked like', () => {
  for (const bad of ['PREPARE', 'CANCELLED', 'VIP_SWITCH', 'phaseChanged', 'Split brain', ''])
    expect(EVENT_REASON_RE.test(bad)).toBe(false);
});

test('every recordEvent call in src/ takes its reason from event-reasons.ts', () => {
  // recordEvent(name, type, REASON, message): the third argument.
  const call = /recordEvent\(\s*[^,]+,\s*[^,]+,\s*([^,]+),/g;
  const allowed = [/^REASON\.[A-Za-z]+$/, /^phaseEventReason\(/, /^action\.code$/];
  const found: string[] = [];
  const offenders: string[] = [];
  for (const file of tsFiles(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(call)) {
      const arg = m[1]!.trim();
      // The declarations (reason: string) and pass-throughs inside the sources.
      if (/^reason: string$/.test(arg) || /^type: EventType$/.test(arg)) continue;
      found.push(`${file.slice(src.length)}: ${arg}`);
      if (!allowed.some((re) => re.test(arg))) offenders.push(`${file.slice(src.length)}: ${arg}`);
    }
  }
  expect(offenders).toEqual([]);
  expect(found.length).toBeGreaterThanOrEqual(6); // the scan did find the calls
});
