// The lab fault table (src/lab/faults.ts), pure: every fault can be undone
// as it was injected, iptables rules are added once and removed however often
// they were added, and the scripts name the targets they were given.
import { FAULT_KINDS, FAULTS, type FaultTarget, faultScripts } from '../../src/lab/faults.js';
import { allCases } from '../lab/fault-matrix.js';

const t: FaultTarget = {
  node: 'b',
  peer: 'a',
  nodeAddress: '198.18.7.12',
  peerAddress: '198.18.7.11',
  uplink: '198.18.7.1',
  stageDir: '/tmp/stage/x',
  version: '2.0.0',
  delaySeconds: 12,
};

test('every command fault has an inject, and an undo unless what it removed is gone for good', () => {
  for (const k of FAULT_KINDS) {
    const f = FAULTS[k];
    if (f.package) {
      expect(f.inject(t)).toEqual([]);
      continue;
    }
    expect(f.inject(t).length).toBeGreaterThan(0);
    if (k !== 'remove-staged') expect(f.undo(t).length).toBeGreaterThan(0);
    expect(f.phases.length).toBeGreaterThan(0);
  }
});

test('iptables rules are checked before insertion and deleted in a loop (idempotent both ways)', () => {
  for (const k of ['split-brain', 'stop-replication'] as const) {
    for (const s of faultScripts(k, t, false))
      for (const m of s.script.matchAll(/iptables -I (\S+) ([^&|;]+)/g))
        expect(s.script).toContain(`iptables -C ${m[1]} ${m[2]!.trim()}`);
    for (const s of faultScripts(k, t, true)) expect(s.script).toMatch(/while iptables -C/);
  }
});

test('split brain is thrown at both nodes; stop-replication names the peer', () => {
  expect(faultScripts('split-brain', t, false).map((s) => s.where)).toEqual(['node', 'peer']);
  expect(faultScripts('split-brain', t, false)[0]!.script).toContain(
    '-p 112 -d 224.0.0.18 -j DROP',
  );
  expect(faultScripts('stop-replication', t, false)[0]!.script).toContain(
    `-d ${t.peerAddress} --dport 5432`,
  );
  expect(faultScripts('link-cut', t, false)[0]!.script).toContain(`blackhole ${t.uplink}/32`);
});

test('slow-health writes the version and the delay; remove-staged needs the folder', () => {
  expect(faultScripts('slow-health', t, false)[0]!.script).toContain("'2.0.0' 12");
  expect(() =>
    faultScripts('remove-staged', { ...t, stageDir: undefined } as FaultTarget, false),
  ).toThrow(/staging folder/);
  expect(faultScripts('remove-staged', t, false)).toEqual([
    { where: 'host', script: "rm -rf '/tmp/stage/x'" },
  ]);
});

test('the matrix covers every fault in every phase it lists, and filters', () => {
  const all = allCases();
  expect(all.length).toBe(FAULT_KINDS.reduce((n, k) => n + FAULTS[k].phases.length, 0));
  expect(new Set(all.map((c) => c.fault))).toEqual(new Set(FAULT_KINDS));
  expect(allCases({ fault: ['split-brain'], phase: ['ROLLBACK'] })).toEqual([
    { fault: 'split-brain', node: 'a', phase: 'ROLLBACK' },
  ]);
});
