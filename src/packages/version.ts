// The version rule lives in the core (src/core/version.ts), where the
// UpgradeRequest schema can use it too; packages code imports it from here.
export {
  compareVersions,
  isVersion,
  parseVersion,
  type UpgradePathProblem,
  upgradePathProblem,
  type Version,
} from '../core/version.js';
