// The CLI's exit codes and the watch loop's timing, without a server: which
// phase ends a watch with which code, how the retries against a silent API
// grow and stop, and the terminal block's text.
import { readFileSync } from 'node:fs';
import {
  CliError,
  EXIT,
  EXIT_MEANINGS,
  exitCodeForStatus,
  exitCodeForUpgrade,
} from '../../src/cli/exit-codes.js';
import { fitToWidth, statusBlock } from '../../src/cli/progress-text.js';
import { followProgress } from '../../src/cli/upgrade-watch.js';
import { PHASES, TERMINAL_PHASES } from '../../src/core/phases.js';

test('every code is distinct, and every phase has a verdict', () => {
  const codes = Object.values(EXIT);
  expect(new Set(codes).size).toBe(codes.length);
  for (const phase of PHASES) {
    const plain = exitCodeForUpgrade(phase, false);
    const halted = exitCodeForUpgrade(phase, true);
    if (phase === 'COMPLETE') expect([plain, halted]).toEqual([EXIT.OK, EXIT.OK]);
    else if (TERMINAL_PHASES.includes(phase))
      // a halt never outranks the end
      expect([plain, halted]).toEqual([EXIT.UPGRADE_FAILED, EXIT.UPGRADE_FAILED]);
    else expect([plain, halted]).toEqual([null, EXIT.HALTED]);
  }
  expect([400, 401, 403, 404, 409, 422, 500].map(exitCodeForStatus)).toEqual([
    EXIT.USAGE,
    EXIT.ERROR,
    EXIT.ERROR,
    EXIT.NOT_FOUND,
    EXIT.ERROR,
    EXIT.ERROR,
    EXIT.ERROR,
  ]);
});

test('a watch retries a silent API with growing, capped pauses, within --reconnect-for', async () => {
  let clock = 0;
  const pauses: number[] = [];
  const errors: string[] = [];
  const run = followProgress({
    upgradeId: 'upg-1',
    read: async () => {
      throw new CliError('cannot reach the API at http://x', EXIT.API_UNREACHABLE);
    },
    watch: true,
    intervalMs: 1000,
    timeoutMs: 0,
    reconnectForMs: 60_000,
    format: 'text',
    terminal: null,
    out: () => {},
    err: (t) => errors.push(t),
    nowMs: () => clock,
    sleep: async (ms) => {
      pauses.push(ms);
      clock += ms;
    },
    random: () => 0.5, // no jitter: the pauses are the plain doubling
  });
  await expect(run).rejects.toMatchObject({
    exitCode: EXIT.API_UNREACHABLE,
    message: 'cannot reach the API at http://x: gave up after trying for 1m',
  });
  expect(pauses.slice(0, 6)).toEqual([500, 1000, 2000, 4000, 8000, 8000]);
  expect(pauses.reduce((a, b) => a + b, 0)).toBe(60_000);
  expect(Math.max(...pauses)).toBe(8000);
  expect(errors).toEqual([
    'pairshift: cannot reach the API at http://x; trying again for up to 1m\n',
  ]);
});

test('without --watch a silent API is not retried', async () => {
  let reads = 0;
  const run = followProgress({
    upgradeId: 'upg-1',
    read: async () => {
      reads++;
      throw new CliError('cannot reach the API at http://x', EXIT.API_UNREACHABLE);
    },
    watch: false,
    intervalMs: 1000,
    timeoutMs: 0,
    reconnectForMs: 60_000,
    format: 'text',
    terminal: null,
    out: () => {},
    err: () => {},
  });
  await expect(run).rejects.toMatchObject({ exitCode: EXIT.API_UNREACHABLE });
  expect(reads).toBe(1);
});

test('the terminal block: halt, downtime not yet measured, time left; clipped to the width', () => {
  const rows = statusBlock(
    {
      upgrade_id: 'upg-1',
      pair: 'lab',
      target_version: '2.0.0',
      phase: 'VIP_SWITCH',
      progress_percent: 55,
      current_step: null,
      message: 'waiting for\nthe VIP',
      downtime: null,
      halted: { reason: 'SplitBrain', message: 'both hold the VIP', since: null },
    },
    { at: new Date('2026-12-06T04:05:06Z'), timeoutLeftMs: 89_500 },
  );
  expect(rows).toEqual([
    'upgrade   upg-1  lab -> 2.0.0',
    'phase     VIP_SWITCH  [###########---------] 55%',
    'step      -',
    'HALTED    SplitBrain: both hold the VIP',
    'message   waiting for the VIP',
    'downtime  not measured yet',
    'looked    04:05:06 UTC; gives up in 90s',
  ]);
  expect(fitToWidth(rows, 20).every((r) => r.length <= 20)).toBe(true);
  expect(fitToWidth(rows, undefined)).toBe(rows);
});

test('docs/packages.md and the help list every exit code, and no other', () => {
  const doc = readFileSync(new URL('../../docs/packages.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('### Exit codes'), doc.indexOf('### Watching'));
  const documented = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
  expect(documented).toEqual(Object.values(EXIT));
  expect(Object.keys(EXIT_MEANINGS).map(Number)).toEqual(Object.values(EXIT));
});

test('a 503 is waited out by a watch, but one look reports it as an error (exit 1)', async () => {
  const answers = [
    { status: 503, body: { title: 'store unavailable' } },
    {
      status: 200,
      body: {
        upgrade_id: 'upg-1',
        pair: 'lab',
        target_version: '2.0.0',
        phase: 'COMPLETE',
        progress_percent: 100,
        current_step: null,
        message: null,
      },
    },
  ];
  const base = {
    upgradeId: 'upg-1',
    intervalMs: 1000,
    timeoutMs: 0,
    reconnectForMs: 60_000,
    format: 'text' as const,
    terminal: null,
    out: () => {},
    err: () => {},
    sleep: async () => {},
  };
  let i = 0;
  await expect(
    followProgress({ ...base, watch: true, read: async () => answers[i++]! }),
  ).resolves.toBe(EXIT.OK);
  expect(i).toBe(2);
  await expect(
    followProgress({ ...base, watch: false, read: async () => answers[0]! }),
  ).rejects.toMatchObject({ exitCode: EXIT.ERROR, message: 'store unavailable (503)' });
});
