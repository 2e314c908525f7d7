// The setup most lab files share: a lab brought up with its signed packages,
// a fresh embedded store and the operator running in this process before the
// file's tests, all taken down after them. Kept apart from
// operator-harness.ts, which bench/upgrade.ts also compiles without jest.
import { afterAll, beforeAll } from '@jest/globals';
import type { SqlClient } from '../../src/store/sql-client.js';
import { buildDist, type InProcessOperator, OperatorLab } from './operator-harness.js';

export interface OperatorLabSuite {
  readonly lab: OperatorLab;
  /** The store; set once beforeAll ran. */
  readonly db: SqlClient;
  /** The operator in this process; set once beforeAll ran. */
  readonly op: InProcessOperator;
}

export function operatorLabSuite(name: string): OperatorLabSuite {
  const lab = new OperatorLab(name);
  let db: SqlClient | undefined;
  let op: InProcessOperator | undefined;
  beforeAll(async () => {
    buildDist();
    await lab.up();
    await lab.buildPackages();
    db = (await lab.newStore()).db;
    op = await lab.startInProcess(db);
  }, 600_000);
  afterAll(async () => {
    try {
      await op?.stop();
      await db?.close();
    } finally {
      await lab.dispose();
    }
  });
  return {
    lab,
    get db() {
      if (!db) throw new Error(`lab ${name}: the store is not open yet (beforeAll has not run)`);
      return db;
    },
    get op() {
      if (!op)
        throw new Error(`lab ${name}: the operator is not running yet (beforeAll has not run)`);
      return op;
    },
  };
}
