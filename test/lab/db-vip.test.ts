// The database driver, and the switchover that moves the database primary and
// the VIP together, against the real lab pair (lab "d1" for this file),
// driven over SSH with the lab's HAPair as the operator would. Every action
// runs twice (the second changes nothing); the switchover runs A->B and B->A
// under the prober's load from the client namespace with no acknowledged
// write lost; and the ways it must refuse: a lagging standby, keepalived
// stopped on the target, a migration that drops a column, a wrong host key.
import { jest } from '@jest/globals';
import { ensureMigrations, MIGRATIONS_TABLE } from '../../src/drivers/database/migrations.js';
import {
  checkReplayed,
  type DbContext,
  dbContext,
  observeDb,
  type RunningDb,
  waitForReplay,
} from '../../src/drivers/database/observe.js';
import { querySql } from '../../src/drivers/database/psql.js';
import { KeepalivedDriver } from '../../src/drivers/keepalived/driver.js';
import { MemoryRecords } from '../../src/drivers/records.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';
import { switchover } from '../../src/drivers/switchover/switchover.js';
import { failureOf } from '../support/driver-failure.js';
import {
  CountingShell,
  poolWithWrongHostKey,
  probeWhile,
  startTestLab,
  type TestLab,
} from './db-vip-lab.js';

jest.setTimeout(300_000);

let lab: TestLab;
let ctx: DbContext;
let keepalived: KeepalivedDriver;
const records = new MemoryRecords();
const log = process.env.PAIRSHIFT_DRIVER_LOG
  ? (l: string) => process.stderr.write(`${new Date().toISOString()} ${l}\n`)
  : () => {};

beforeAll(async () => {
  lab = await startTestLab('d1', { build: true });
  ctx = dbContext(lab.shell, lab.pair, log);
  keepalived = new KeepalivedDriver({ shell: lab.shell, pair: lab.pair, records, log });
});
afterAll(async () => {
  await lab?.down();
});

const sql = async (node: string, q: string) =>
  (await querySql(ctx.shell, ctx.pair, ctx.flavour, node, q)).map((r) => r.join('|'));

async function primaryLsn(node: string) {
  const s = await observeDb(ctx, node);
  if (!s.running || s.inRecovery) throw new Error(`${node} is not the primary`);
  return s.currentLsn!;
}

describe('observation', () => {
  it('sees a primary on a and a standby on b streaming from it', async () => {
    const a = (await observeDb(ctx, 'a')) as RunningDb;
    const b = (await observeDb(ctx, 'b')) as RunningDb;
    expect([a.running, a.inRecovery, typeof a.currentLsn]).toEqual([true, false, 'bigint']);
    expect([b.running, b.inRecovery, b.receiverStatus, b.senderHost]).toEqual([
      true,
      true,
      'streaming',
      lab.pair.spec.nodes[0]!.address,
    ]);
    // replay catches up with the primary's position
    await waitForReplay(ctx, 'b', a.currentLsn!, 10_000);
  });
});

describe('schema migrations', () => {
  const v2 = [
    {
      name: '0001_orders.sql',
      sql: 'CREATE TABLE orders (id bigint PRIMARY KEY, total numeric NOT NULL);',
    },
    { name: '0002_orders_note.sql', sql: 'ALTER TABLE orders ADD COLUMN note text;' },
  ];

  it('refuses a migration that drops a column before anything runs', async () => {
    const counting = new CountingShell(lab.shell);
    const e = await failureOf(
      ensureMigrations({ ...ctx, shell: counting }, 'a', [
        ...v2,
        { name: '0003_drop.sql', sql: '-- tidy up\nALTER TABLE orders DROP COLUMN note;' },
      ]),
    );
    expect(e.kind).toBe('terminal');
    expect(e.message).toMatch(/0003_drop\.sql line 2: .*drop/i);
    expect(counting.commands).toEqual([]); // not even an observation
    expect(await sql('a', "SELECT to_regclass('orders') IS NULL")).toEqual(['t']);
  });

  it('applies them in one transaction on the primary, and a second run applies nothing', async () => {
    const dry = await ensureMigrations(ctx, 'a', v2, { dryRun: true });
    expect(dry).toMatchObject({
      outcome: 'changed',
      applied: ['0001_orders.sql', '0002_orders_note.sql'],
    });
    expect(await sql('a', "SELECT to_regclass('orders') IS NULL")).toEqual(['t']);

    const first = await ensureMigrations(ctx, 'a', v2);
    expect(first).toMatchObject({
      outcome: 'changed',
      applied: ['0001_orders.sql', '0002_orders_note.sql'],
    });
    // owned by the app's role, so the app can use it
    expect(await sql('a', "SELECT tableowner FROM pg_tables WHERE tablename = 'orders'")).toEqual([
      lab.pair.spec.database.user,
    ]);
    expect(await sql('a', `SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`)).toEqual([
      '0001_orders.sql',
      '0002_orders_note.sql',
    ]);
    const second = await ensureMigrations(ctx, 'a', v2);
    expect(second).toMatchObject({ outcome: 'unchanged', applied: [] });
    // the standby has it once it replayed the primary's position
    await waitForReplay(ctx, 'b', await primaryLsn('a'), 10_000);
    expect(await sql('b', 'SELECT count(*) FROM orders')).toEqual(['0']);
  });

  it('refuses a changed migration that already ran, and rolls back a failing set whole', async () => {
    const changed = await failureOf(
      ensureMigrations(ctx, 'a', [
        v2[0]!,
        { ...v2[1]!, sql: 'ALTER TABLE orders ADD COLUMN memo text;' },
      ]),
    );
    expect(changed.kind).toBe('terminal');
    expect(changed.message).toMatch(/0002_orders_note\.sql already ran with different content/);
    // the second statement fails: the first must not stay
    const failing = await failureOf(
      ensureMigrations(ctx, 'a', [
        ...v2,
        { name: '0003_customers.sql', sql: 'CREATE TABLE customers (id bigint PRIMARY KEY);' },
        { name: '0004_bad.sql', sql: 'CREATE INDEX ON no_such_table (id);' },
      ]),
    );
    expect(failing.message).toMatch(/no_such_table/);
    expect(await sql('a', "SELECT to_regclass('customers') IS NULL")).toEqual(['t']);
    expect(await sql('a', `SELECT count(*) FROM ${MIGRATIONS_TABLE}`)).toEqual(['2']);
    // and migrations never run on a standby
    const onStandby = await failureOf(ensureMigrations(ctx, 'b', v2));
    expect(onStandby.message).toMatch(/b: .*not a running primary/);
  });
});

describe('a lagging standby', () => {
  it('waitForReplay reports waiting, then times out naming the lag', async () => {
    await sql('b', 'SELECT pg_wal_replay_pause()');
    try {
      await sql('a', "INSERT INTO orders VALUES (1, 10, 'while paused')");
      const lsn = await primaryLsn('a');
      const waiting = await failureOf(checkReplayed(ctx, 'b', lsn));
      expect(waiting.kind).toBe('waiting');
      const started = Date.now();
      const timedOut = await failureOf(waitForReplay(ctx, 'b', lsn, 1500));
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
      expect(timedOut.kind).toBe('terminal');
      expect(timedOut.message).toMatch(
        /^b: the standby did not replay .* within 1500 ms: replayed .* behind/,
      );
    } finally {
      await sql('b', 'SELECT pg_wal_replay_resume()');
    }
  });

  it('a standby whose WAL receiver is stopped makes the switchover refuse before anything changes', async () => {
    const b = (await observeDb(ctx, 'b')) as RunningDb;
    const conninfo = b.primaryConninfo;
    await sql('b', "ALTER SYSTEM SET primary_conninfo = ''");
    await sql('b', 'SELECT pg_reload_conf()');
    try {
      await sql('a', "INSERT INTO orders VALUES (2, 20, 'receiver stopped')");
      const e = await failureOf(switchover(ctx, keepalived, 'b', { catchUpTimeoutMs: 2000 }));
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/check standby caught up: the standby did not replay/);
      expect(e.message).toMatch(/WAL receiver not running/);
      // nothing moved: a is still the primary behind the VIP
      expect(((await observeDb(ctx, 'a')) as RunningDb).inRecovery).toBe(false);
      expect(await keepalived.outsideHolder()).toMatchObject({ kind: 'node', node: 'a' });
    } finally {
      await sql('b', `ALTER SYSTEM SET primary_conninfo = '${conninfo.replace(/'/g, "''")}'`);
      await sql('b', 'SELECT pg_reload_conf()');
    }
    await waitForReplay(ctx, 'b', await primaryLsn('a'), 15_000);
  });
});

describe('refusals that leave the pair serving', () => {
  it('refuses while keepalived is stopped on the target', async () => {
    const k = lab.pair.spec.keepalived;
    await lab.shell.exec('b', ['sh', '-c', k.stop]);
    try {
      const e = await failureOf(switchover(ctx, keepalived, 'b'));
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/keepalived is not running on b/);
      expect(((await observeDb(ctx, 'a')) as RunningDb).inRecovery).toBe(false);
      expect(((await observeDb(ctx, 'b')) as RunningDb).inRecovery).toBe(true);
    } finally {
      await lab.shell.exec('b', ['sh', '-c', k.start]);
    }
  });

  it('refuses a node whose host key is not the pinned one, before acting', async () => {
    const wrong = await poolWithWrongHostKey(lab.pair, 'a');
    try {
      const e = await failureOf(
        switchover(
          dbContext(wrong, lab.pair),
          new KeepalivedDriver({ shell: wrong, pair: lab.pair }),
          'b',
        ),
      );
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/a: .*host key .* is not pinned/);
    } finally {
      await wrong.close();
    }
    expect(((await observeDb(ctx, 'a')) as RunningDb).inRecovery).toBe(false);
  });
});

describe("a standby that misses the old primary's last WAL", () => {
  it('is not promoted: the old primary is started again and keeps the VIP', async () => {
    const b = (await observeDb(ctx, 'b')) as RunningDb;
    const conninfo = b.primaryConninfo;
    let cut = false;
    // Just before the old primary stops, cut b's WAL receiver: the shutdown
    // checkpoint then never reaches it.
    const hooked: NodeShell = {
      exec: async (node, argv, opts) => {
        if (
          !cut &&
          node === 'a' &&
          argv[0] === 'sh' &&
          argv[2]?.startsWith(lab.pair.spec.database.stop)
        ) {
          cut = true;
          await sql('b', "ALTER SYSTEM SET primary_conninfo = ''");
          await sql('b', 'SELECT pg_reload_conf()');
          for (let i = 0; i < 100; i++) {
            const s = (await observeDb(ctx, 'b')) as RunningDb;
            if (s.receiverStatus !== 'streaming') break;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        return lab.shell.exec(node, argv, opts);
      },
    };
    try {
      const e = await failureOf(
        switchover({ ...ctx, shell: hooked }, keepalived, 'b', { finalLsnTimeoutMs: 1000 }),
      );
      expect(cut).toBe(true);
      expect(e.kind).toBe('terminal');
      expect(e.message).toMatch(/b did not receive the old primary's final record/);
      expect(e.message).toMatch(/a was started again as the primary and the VIP stays on it/);
      // the pair serves: a is the primary behind the VIP, /health answers 200
      expect(((await observeDb(ctx, 'a')) as RunningDb).inRecovery).toBe(false);
      expect(await keepalived.outsideHolder()).toMatchObject({ kind: 'node', node: 'a' });
      const health = await lab.inLab('client', [
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--retry',
        '5',
        '--retry-all-errors',
        `http://${lab.pair.spec.vip.address}:8080/health`,
      ]);
      expect(health.stdout).toBe('200');
    } finally {
      await sql('b', `ALTER SYSTEM SET primary_conninfo = '${conninfo.replace(/'/g, "''")}'`);
      await sql('b', 'SELECT pg_reload_conf()');
    }
    // b catches up again (it never saw a's shutdown checkpoint, and needs no rewind)
    await waitForReplay(ctx, 'b', await primaryLsn('a'), 20_000);
  });
});

describe('controlled switchover under load', () => {
  for (const [from, to] of [
    ['a', 'b'],
    ['b', 'a'],
  ] as const) {
    it(`moves the primary and the VIP ${from} -> ${to} with no acknowledged write lost; a second run changes nothing`, async () => {
      let result: Awaited<ReturnType<typeof switchover>> | undefined;
      const report = await probeWhile(lab, async () => {
        result = await switchover(ctx, keepalived, to, { upgradeId: 'u-db' });
      });
      process.stdout.write(
        `switchover ${from}->${to}: ${JSON.stringify({ ...result, steps: undefined })}; http longest ${report.http.longestOutageMs} ms, db longest ${report.db.longestOutageMs} ms, writes ${JSON.stringify(report.db.writes)}, lost ${report.verification?.lostAcknowledged}, http failures ${JSON.stringify(report.http.reasons)}\n`,
      );
      expect(result!.outcome).toBe('changed');
      expect(result!.from).toBe(from);
      if (report.verification?.lostAcknowledged === undefined)
        throw new Error(`the prober could not verify: ${JSON.stringify(report.verification)}`);
      expect(report.verification.lostAcknowledged).toBe(0);
      // the load was real and spanned the switchover: writes before and after an outage
      expect(report.db.writes.acked).toBeGreaterThan(200);
      expect(report.db.outages.length).toBeGreaterThanOrEqual(1);
      expect(report.db.outages.every((o: { open: boolean }) => !o.open)).toBe(true);
      // the outage is bounded (generous here: the machine is shared; bench/ gives medians)
      expect(report.db.longestOutageMs).toBeLessThan(5000);
      const now = (await observeDb(ctx, to)) as RunningDb;
      const old = (await observeDb(ctx, from)) as RunningDb;
      expect([now.inRecovery, old.inRecovery, old.receiverStatus]).toEqual([
        false,
        true,
        'streaming',
      ]);
      expect(await keepalived.outsideHolder()).toMatchObject({ kind: 'node', node: to });
      expect(records.vipSwitches.at(-1)).toMatchObject({
        fromNode: from,
        toNode: to,
        result: 'SUCCESS',
      });

      const counting = new CountingShell(lab.shell);
      const again = await switchover(
        { ...ctx, shell: counting },
        new KeepalivedDriver({ shell: counting, pair: lab.pair }),
        to,
      );
      expect(again.outcome).toBe('unchanged');
      expect(again.steps).toEqual([]);
    });
  }

  it('finishes a switchover interrupted after the old primary stopped (re-run resumes)', async () => {
    // The state an operator killed right after step 4 leaves: a stopped cleanly.
    await sql('a', 'CHECKPOINT');
    await lab.shell.exec('a', ['sh', '-c', lab.pair.spec.database.stop]);
    const dry = await switchover(ctx, keepalived, 'b', { dryRun: true });
    expect(dry.steps).toEqual([
      'check-final-lsn-received',
      'promote',
      'move-vip',
      'rejoin-old-primary',
      'verify-streaming',
    ]);
    const r = await switchover(ctx, keepalived, 'b', { upgradeId: 'u-db' });
    expect(r.outcome).toBe('changed');
    expect((await switchover(ctx, keepalived, 'b')).outcome).toBe('unchanged');
    // and back, for a tidy lab
    expect((await switchover(ctx, keepalived, 'a')).outcome).toBe('changed');
  });
});
