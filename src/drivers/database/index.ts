// The database driver (task list 2.6). Invariants:
// - SQL runs on the node through its own client as the database's OS user
//   over SSH (peer authentication): the operator holds no database password.
// - Migrations are checked for backward compatibility before anything runs,
//   run in one transaction on the primary only, and are recorded with their
//   checksum in the app database, so a re-run applies nothing and a changed
//   migration is refused.
// - The switchover plans from what it observes, so a re-run after any step
//   finishes the job; nothing is promoted unless the standby received the old
//   primary's last record, the VIP moves only to a promoted node, and the old
//   primary rejoins only if it wrote nothing past the new timeline's branch
//   point (never pg_rewind on its own).
export { type Incompatibility, incompatibilities } from './compat.js';
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
export {
  observeSwitchover,
  type SwitchoverOptions,
  type SwitchoverResult,
  switchover,
} from './switchover.js';
export { planSwitchover, type SwitchoverStep } from './switchover-plan.js';
