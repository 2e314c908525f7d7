// Upgrade packages: build, sign, verify (docs/packages.md).
// Invariants: the reader (tar.ts) refuses anything but regular files at safe
// relative paths within limits; manifest.json is the archive's first entry;
// every other entry is listed in it with matching size, mode and SHA-256, and
// every listed file is present; signatures are ed25519 over the archive's
// SHA-256 and size, checked against explicitly trusted public keys only.
export { type BuildPackageOptions, type BuiltPackage, buildPackage } from './build.js';
export { ManifestChecker, PackageContentError } from './contents.js';
export { type FileDigest, hashFile, readFileChunks } from './hash.js';
export {
  MANIFEST_PATH,
  type ManifestFile,
  type PackageManifest,
  parseManifest,
  parseManifestBytes,
} from './manifest.js';
export {
  checkSignature,
  generateSigningKeyPair,
  keyIdOf,
  loadPrivateKey,
  loadTrustedKey,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  parseSignatureFile,
  parseTrustedKey,
  type SigningKeyPaths,
  signArchive,
  type TrustedKey,
} from './signing.js';
export {
  DEFAULT_TAR_LIMITS,
  readTar,
  type TarEntryHeader,
  type TarEvent,
  TarFormatError,
  type TarLimits,
  TarParser,
  unsafePathReason,
  writeTar,
} from './tar.js';
export { checkPackageContents, type VerifiedPackage, verifyPackage } from './verify.js';
export { compareVersions, isVersion, parseVersion, upgradePathProblem } from './version.js';
