// Split brain during a real upgrade (issue 12): lab "ht", the in-process
// operator (standalone, embedded store) and the client prober through the
// VIP. In UPGRADE_BACKUP both nodes stop hearing each other's VRRP adverts
// (iptables drops IP protocol 112 in both nodes' namespaces), so both claim
// the VIP. The operator must halt (Stalled=True naming the split brain, one
// WARNING, no step while it lasts), and once the adverts flow again and one
// node holds the VIP, resume by itself and end with one VIP holder, both
// nodes on one version, no acknowledged write lost and the root key equal on
// both nodes. Needs root and what docs/lab.md lists, plus iptables.

import { jest } from '@jest/globals';
import { findCondition } from '../../src/core/conditions.js';
import { isTerminal } from '../../src/core/phases.js';
import type { UpgradeRequestStatus } from '../../src/core/upgrade-request.js';
import { listLogs } from '../../src/store/upgrades.js';
import { operatorLabSuite } from './lab-suite.js';
import { clientFigures, historyOf, type NodeName, sleep, stepsOf } from './operator-harness.js';
import { captureLabName, captureObject } from './status-capture.js';

jest.setTimeout(420_000);

const suite = operatorLabSuite(captureLabName('ht'));
const { lab } = suite;

/**
 * Both nodes stop hearing each other's VRRP adverts (IP protocol 112 to
 * 224.0.0.18), so each keepalived claims the VIP. Returns the undo. (A small
 * helper on purpose; the lab's general fault injector is another piece of
 * issue 12.)
 */
async function dropVrrp(): Promise<() => Promise<void>> {
  const rule = (op: '-I' | '-D', chain: 'INPUT' | 'OUTPUT') => [
    'iptables',
    op,
    chain,
    '-p',
    '112',
    '-d',
    '224.0.0.18',
    '-j',
    'DROP',
  ];
  const nodes: NodeName[] = ['a', 'b'];
  for (const n of nodes) {
    await lab.inLab(n, rule('-I', 'INPUT'));
    await lab.inLab(n, rule('-I', 'OUTPUT'));
  }
  return async () => {
    for (const n of nodes) {
      await lab.inLab(n, rule('-D', 'INPUT'), true);
      await lab.inLab(n, rule('-D', 'OUTPUT'), true);
    }
  };
}

/** Polls the published status until pred holds; throws with the last status after timeoutMs. */
async function statusUntil(
  name: string,
  pred: (s: UpgradeRequestStatus) => boolean,
  timeoutMs: number,
): Promise<UpgradeRequestStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await suite.op.status(name);
    if (s && pred(s)) return s;
    if (Date.now() > deadline)
      throw new Error(`${name}: condition not met in ${timeoutMs} ms; last ${JSON.stringify(s)}`);
    await sleep(250);
  }
}

async function rootKeyDigests(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const node of ['a', 'b'] as const) {
    const r = await lab.inLab(node, ['sha256sum', lab.pair.spec.paths.rootKey]);
    out[node] = r.stdout.split(' ')[0]!;
  }
  return out;
}

const stalled = (s: UpgradeRequestStatus) => findCondition(s.conditions, 'Stalled');

test('both nodes claim the VIP in UPGRADE_BACKUP: halted with Stalled=True and no step, then resumes by itself to an end', async () => {
  const name = 'ht-split';
  // A pair just brought up on a busy machine: both Java services answer first.
  const deadline = Date.now() + 120_000;
  while (Object.values(await lab.versions()).join() !== '1.0.0,1.0.0') {
    if (Date.now() > deadline) throw new Error(`ht: the pair never served 1.0.0 on both nodes`);
    await sleep(1000);
  }
  const keysBefore = await rootKeyDigests();
  const prober = lab.startClientProber();
  await prober.started(); // measuring from here on
  let undo: (() => Promise<void>) | null = null;
  try {
    await sleep(1500); // the prober sees the pair serving first
    lab.writeRequest(name, lab.packages.v2);
    const reached = await suite.op.waitPhase(name, ['UPGRADE_BACKUP'], 120_000);
    if (reached !== 'UPGRADE_BACKUP') {
      // Why it ended before the fault: what a reader of a red CI log needs.
      const failed = (await stepsOf(suite.db, name)).filter((x) => x.status === 'FAILED');
      console.log(
        `ht: ended ${reached} before the fault: "${(await suite.op.status(name))?.message ?? ''}"` +
          failed.map((x) => `\n  failed ${x.step}: ${x.message ?? ''}`).join(''),
      );
    }
    expect(reached).toBe('UPGRADE_BACKUP');
    undo = await dropVrrp();

    // Halted, naming the cause.
    const halted = await statusUntil(name, (s) => stalled(s)?.status === 'True', 60_000);
    const c = stalled(halted)!;
    captureObject(
      'split-brain-halted',
      await suite.op.source.getUpgradeRequest(name),
      'split-brain.test.ts, halted on the split brain in UPGRADE_BACKUP',
    );
    expect(c.reason).toBe('SplitBrain');
    expect(c.message).toMatch(/split brain: both a and b hold the VIP/);
    expect(c.message).toMatch(/resumes by itself/);
    expect(findCondition(halted.conditions, 'Reconciling')?.status).toBe('False');
    expect(halted.message).toMatch(/split brain/);
    expect(isTerminal(halted.phase)).toBe(false);
    const haltedAt = new Date(c.lastTransitionTime).getTime();

    // Kept halted: nothing is done on the nodes while it lasts.
    await sleep(20_000);
    const during = await suite.op.status(name);
    expect(stalled(during!)?.status).toBe('True');
    const stepsStarted = (await stepsOf(suite.db, name)).filter(
      (r) => r.startedAt !== null && r.startedAt.getTime() > haltedAt,
    );
    expect(stepsStarted.map((r) => `${r.step} ${r.status}`)).toEqual([]);

    await undo();
    undo = null;
    const resumedAt = Date.now();
    await statusUntil(name, (s) => stalled(s)?.status === 'False', 60_000);
    console.log(
      `ht: resumed ${((Date.now() - resumedAt) / 1000).toFixed(1)} s after VRRP flowed again`,
    );

    const final = await suite.op.waitTerminal(name, 240_000);
    const probe = await prober.stop();
    const pair = await lab.pairState();
    const figures = clientFigures(probe);
    const history = await historyOf(suite.db, name);
    console.log(
      `ht: ${final.status!.phase}; phases ${history.map((h) => h.to).join(' > ')}; ` +
        `clients: HTTP longest ${figures.httpLongestMs} ms, writes longest ${figures.writeLongestMs} ms, ` +
        `${figures.acked} acked, ${figures.lost} lost; versions ${JSON.stringify(pair.versions)}, VIP on ${pair.vipHolders.join()}`,
    );
    expect(['COMPLETE', 'FAILED', 'CANCELLED']).toContain(final.status!.phase);
    expect(stalled(final.status!)?.status).toBe('False');
    expect(pair.vipHolders).toHaveLength(1);
    expect(pair.versions.a).toBe(pair.versions.b);
    if (final.status!.phase === 'COMPLETE') expect(pair.versions.a).toBe('2.0.0');
    expect(figures.acked).toBeGreaterThan(50);
    expect(figures.lost).toBe(0);
    const keys = await rootKeyDigests();
    expect(keys.a).toBe(keys.b);
    expect(keys).toEqual(keysBefore);

    // One WARNING and one Event for the cause, not one per round; one resume.
    const logs = (await listLogs(suite.db, name, { page: 1, pageSize: 500 })).items.map(
      (l) => l.message,
    );
    expect(logs.filter((m) => m.startsWith('SplitBrain: '))).toHaveLength(1);
    expect(logs.filter((m) => m.startsWith('Resumed: '))).toHaveLength(1);
  } finally {
    await undo?.();
    prober.kill();
  }
});
