// Backup and restore of a node (task list 2.3; docs/drivers.md).
//
// Invariants:
// - The root key's content never leaves the node: archives are made and
//   unpacked there and only digests (computed there with openssl) travel.
// - A set is complete or invisible: written as .partial-<set>, renamed after
//   its manifest is written; a failed run removes its partial folder and
//   marks its rows MISSING, never CREATED or VERIFIED.
// - Restore verifies the set before touching anything.
// - Retention never deletes the newest N sets, the set just made, or a set
//   of an unfinished upgrade.
export {
  assertBackupSetGood,
  type BackupContext,
  describeProblems,
  type EnsureBackupOptions,
  type EnsureBackupResult,
  ensureBackup,
  listBackupSets,
  type SetVerification,
  verifyBackupSet,
} from './backup.js';
export { DATABASE_TOOLS, type DatabaseEngine, databaseTools } from './flavour.js';
export { backupFileName, freshSetName, isSetName, setStamp, setTime } from './naming.js';
export {
  type BackupListing,
  type BackupManifest,
  compareDigests,
  type FileCheck,
  parseDigestLines,
  parseListing,
  parseManifest,
  parseOpensslDigest,
  parseStat,
} from './parse.js';
export { type RestoreOptions, type RestoreResult, restoreBackup } from './restore.js';
export { type RetainableSet, type RetentionPolicy, setsToDelete } from './retention.js';
