// Bring back or name (issue 12.3) on the real lab pair (lab "rp"): during
// UPGRADE_MASTER the standby's PostgreSQL is stopped (pg_ctl stop -m fast,
// the pair's own stop command) and keepalived is killed (SIGKILL) on the
// same node. The operator must start both again (START_DATABASE,
// START_KEEPALIVED) and finish the upgrade: COMPLETE, exactly one VIP
// holder, the standby streaming again, no acknowledged write lost, both
// nodes on 2.0.0. Before issue 12 it waited at 99 % until the upgrade
// timeout. Needs root and what docs/lab.md lists.

import { jest } from '@jest/globals';
import { operatorLabSuite } from './lab-suite.js';
import { clientFigures, historyOf, stepsOf } from './operator-harness.js';

jest.setTimeout(600_000);

const suite = operatorLabSuite('rp');
const { lab } = suite;

/** keepalived dies the hard way: SIGKILL to the pid its supervisor recorded (no priority-0 advert). */
async function killKeepalived(node: 'a' | 'b'): Promise<void> {
  await lab.inLab(node, ['sh', '-c', 'kill -KILL "$(cat /run/app/svc/keepalived.pid)"']);
}

async function keepalivedRunning(node: 'a' | 'b'): Promise<boolean> {
  const r = await lab.inLab(node, ['sh', '-c', lab.pair.spec.keepalived.status], true);
  return r.code === 0;
}

async function databaseRunning(node: 'a' | 'b'): Promise<boolean> {
  const r = await lab.inLab(node, ['sh', '-c', lab.pair.spec.database.status], true);
  return r.code === 0;
}

/** Why it ended as it did and every failed step: what a reader of a red CI log needs. */
async function explain(name: string): Promise<string> {
  const failed = (await stepsOf(suite.db, name)).filter((x) => x.status === 'FAILED');
  return `${name}: "${(await suite.op.status(name))?.message ?? ''}"${failed.map((x) => `\n  failed ${x.step}: ${x.message ?? ''}`).join('')}`;
}

it('the standby database stopped and keepalived killed in UPGRADE_MASTER: both brought back, COMPLETE', async () => {
  const name = 'rp-db-and-keepalived';
  const prober = lab.startClientProber();
  await prober.started(); // measuring from here on
  try {
    await new Promise((r) => setTimeout(r, 1500)); // the prober sees the pair serving first
    const started = Date.now();
    lab.writeRequest(name, lab.packages.v2);
    const phase = await suite.op.waitPhase(name, ['UPGRADE_MASTER'], 180_000);
    if (phase !== 'UPGRADE_MASTER') console.log(await explain(name));
    expect(phase).toBe('UPGRADE_MASTER');
    // a was the master: in UPGRADE_MASTER it is the standby, off the VIP.
    await lab.inLab('a', ['sh', '-c', lab.pair.spec.database.stop]);
    await killKeepalived('a');
    const brokenAt = Date.now();
    expect(await databaseRunning('a')).toBe(false);
    expect(await keepalivedRunning('a')).toBe(false);

    // Bounded: the upgrade ends (or this fails naming the phase it is stuck in).
    const final = await suite.op.waitTerminal(name, 240_000);
    const probe = await prober.stop();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const steps = await stepsOf(suite.db, name);
    const history = await historyOf(suite.db, name);
    const pair = await lab.pairState();
    const c = clientFigures(probe);
    const brought = steps.filter((s) => /START_DATABASE|START_KEEPALIVED/.test(s.step));
    console.log(
      `${name}: ${final.status!.phase} in ${seconds} s, ${((Date.now() - brokenAt) / 1000).toFixed(1)} s after the fault; ` +
        `phases ${history.map((h) => h.to).join(' > ')}; clients: HTTP longest ${c.httpLongestMs} ms, ` +
        `writes longest ${c.writeLongestMs} ms, ${c.acked} acked, ${c.lost} lost; ` +
        `brought back: ${brought.map((s) => `${s.step} ${s.status}: ${s.message ?? ''}`).join('; ')}`,
    );

    console.log(await explain(name));
    expect(final.status!.phase).toBe('COMPLETE');
    // the operator did it, once each (not a person, not the supervisor)
    expect(brought.filter((s) => s.status === 'DONE').map((s) => s.step)).toEqual(
      expect.arrayContaining([
        'UPGRADE_MASTER/START_DATABASE@a',
        'UPGRADE_MASTER/START_KEEPALIVED@a',
      ]),
    );
    expect(await databaseRunning('a')).toBe(true);
    expect(await keepalivedRunning('a')).toBe(true);
    // the pair at rest: one VIP holder serving 2.0.0, a streaming standby
    expect(pair.vipHolders).toEqual(['b']);
    expect(pair.vipHolderHealthy).toBe(true);
    expect(pair.vipVersion).toBe('2.0.0');
    expect(pair.primary).toBe('b');
    expect(pair.replication).toEqual(['streaming']);
    expect(pair.versions).toEqual({ a: '2.0.0', b: '2.0.0' });
    expect(c.acked).toBeGreaterThan(50);
    expect(c.lost).toBe(0);
  } finally {
    prober.kill();
    lab.removeRequest(name);
  }
});
