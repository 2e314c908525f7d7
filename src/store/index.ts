// The operator's store (task list 1.1, 1.2): PostgreSQL when a URL is given,
// embedded PGlite otherwise, both behind SqlClient and migrated by the same
// SQL files in migrations/. See docs/store.md.
export { type MigrateResult, type MigrationStatus, migrate, migrationStatus } from './migrate.js';
export { chooseStore, openStore, type StoreOptions } from './open-store.js';
export { redactDatabaseUrl } from './redact.js';
export type { SqlClient, SqlExecutor } from './sql-client.js';
export * from './upgrades.js';
