// The database driver (task list 2.6). Invariants:
// - SQL runs on the node through its own client as the database's OS user
//   over SSH (peer authentication): the operator holds no database password.
// - Migrations are checked for backward compatibility before anything runs,
//   run in one transaction on the primary only, and are recorded with their
//   checksum in the app database, so a re-run applies nothing and a changed
//   migration is refused.
// - The database knows nothing of the VIP: the operations a switchover is
//   made of (stop cleanly, promote, rejoin as standby; roles.ts) each act on
//   one node, and the choreography that orders them with the VIP move is
//   src/drivers/switchover/. A rejoin never runs pg_rewind on its own.
export { type Incompatibility, incompatibilities } from './compat.js';
export { ensureStandbyRunning, type StandbyStartResult } from './ensure-standby.js';
export { type DatabaseFlavour, type Engine, flavourFor } from './flavour.js';
export { compareLsn, formatLsn, type Lsn, lagBytes, parseLsn } from './lsn.js';
export {
  ensureMigrations,
  MIGRATIONS_TABLE,
  type Migration,
  type MigrationsResult,
} from './migrations.js';
export {
  checkReplayed,
  type DbContext,
  type DbState,
  dbContext,
  observeDb,
  type RunningDb,
  type StoppedDb,
  waitForReplay,
} from './observe.js';
export { querySql } from './psql.js';
export { type SwitchoverDatabase, switchoverDatabase } from './roles.js';
