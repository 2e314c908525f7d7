// The lab's releases as signed upgrade packages: v2 and v3 of the app and a
// deliberately broken release for rollback tests. Each package carries every
// schema migration from 1.0.0 up to its version; the migrations are
// idempotent and backward compatible (nullable columns, new tables, indexes),
// so the old jar keeps working on the primary while the backup is upgraded,
// and a package can be applied from any version it upgrades from.

import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildPackage } from '../../packages/build.js';
import type { PackageManifest } from '../../packages/manifest.js';
import {
  generateSigningKeyPair,
  keyIdOf,
  loadPrivateKey,
  loadTrustedKey,
  PRIVATE_KEY_FILE,
  PUBLIC_KEY_FILE,
  type SigningKeyPaths,
  signArchive,
} from '../../packages/signing.js';
import { compareVersions } from '../../packages/version.js';
import { buildAppRelease } from './build.js';

/** The version a lab is brought up with. */
export const LAB_BASE_VERSION = '1.0.0';
/** Good releases a lab can upgrade to. */
export const LAB_RELEASE_VERSIONS = ['2.0.0', '3.0.0'] as const;
/** The default broken release: newer than every good one, so it is an upgrade from any of them. */
export const LAB_BROKEN_VERSION = '4.0.0';

export interface LabMigration {
  /** File name; the order of application is the order of names. */
  name: string;
  /** The release that introduced it. */
  since: string;
  sql: string;
}

export const LAB_MIGRATIONS: readonly LabMigration[] = [
  {
    name: '001_app_events.sql',
    since: '2.0.0',
    sql: `-- 2.0.0: an events table and a nullable column; 1.0.0 ignores both.
CREATE TABLE IF NOT EXISTS app_events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  detail text
);
ALTER TABLE IF EXISTS app_heartbeat ADD COLUMN IF NOT EXISTS host text;
`,
  },
  {
    name: '002_app_events_at_idx.sql',
    since: '3.0.0',
    sql: `-- 3.0.0: an index; changes no table shape.
CREATE INDEX IF NOT EXISTS app_events_at_idx ON app_events (at);
`,
  },
  {
    name: '003_app_events_note.sql',
    since: '4.0.0',
    sql: `-- 4.0.0 (the broken release): another nullable column, harmless to keep after a rollback.
ALTER TABLE app_events ADD COLUMN IF NOT EXISTS note text;
`,
  },
];

/** The migrations a package of this version carries: all of them up to and including it. */
export function labMigrationsFor(version: string): LabMigration[] {
  return LAB_MIGRATIONS.filter((m) => compareVersions(m.since, version) <= 0);
}

/** Every lab version (base and releases) older than this one. */
export function labUpgradesFrom(version: string): string[] {
  return [LAB_BASE_VERSION, ...LAB_RELEASE_VERSIONS, LAB_BROKEN_VERSION].filter(
    (v) => compareVersions(v, version) < 0,
  );
}

/**
 * The lab's package-signing key pair in dir (package-signing.key, 0600;
 * package-signing.pub, the key the lab trusts): created when absent, reused
 * when present (and checked to be a matching pair).
 */
export async function ensureLabSigningKey(dir: string): Promise<SigningKeyPaths> {
  const privateKeyPath = join(dir, PRIVATE_KEY_FILE);
  const publicKeyPath = join(dir, PUBLIC_KEY_FILE);
  const havePriv = existsSync(privateKeyPath);
  const havePub = existsSync(publicKeyPath);
  if (!havePriv && !havePub) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return generateSigningKeyPair(dir);
  }
  if (havePriv !== havePub) {
    throw new Error(
      `${dir} holds only half of a signing key pair (${havePriv ? PRIVATE_KEY_FILE : PUBLIC_KEY_FILE}); remove it to start afresh`,
    );
  }
  const priv = await loadPrivateKey(privateKeyPath);
  const pub = await loadTrustedKey(publicKeyPath);
  const keyId = keyIdOf(createPublicKey(priv));
  if (keyId !== pub.keyId) {
    throw new Error(
      `${privateKeyPath} and ${publicKeyPath} are not a pair (${keyId} vs ${pub.keyId})`,
    );
  }
  return { privateKeyPath, publicKeyPath, keyId };
}

export interface LabPackageOptions {
  version: string;
  broken?: boolean;
  /**
   * Adds a last migration that fails after its first statement (the fault
   * matrix's "migration fails half way"); the app itself is good.
   */
  failingMigration?: boolean;
  outDir: string;
  /** Path of the ed25519 private key (ensureLabSigningKey().privateKeyPath). */
  signingKey: string;
  /** Passed to buildAppRelease. */
  cacheDir?: string;
}

/** The failing-migration variant's last migration: a first statement that succeeds, then an error. */
export const HALF_WAY_MIGRATION: LabMigration = {
  name: '999_fails_half_way.sql',
  since: LAB_BASE_VERSION,
  sql: `-- fault matrix: the first statement succeeds, the second fails (division by zero),
-- so the migration's transaction rolls back half way.
CREATE TABLE IF NOT EXISTS fault_half_way (id int);
SELECT 1 / 0;
`,
};

export interface LabPackage {
  packagePath: string;
  sigPath: string;
  version: string;
  broken: boolean;
  manifest: PackageManifest;
}

/** Builds and signs the lab package for a version: outDir/app-<version>[-broken].tar.gz and .sig. */
export async function buildLabPackage(opts: LabPackageOptions): Promise<LabPackage> {
  const broken = opts.broken ?? false;
  const upgradesFrom = labUpgradesFrom(opts.version);
  if (upgradesFrom.length === 0) {
    throw new Error(
      `lab package ${opts.version} would upgrade from nothing; use a version above ${LAB_BASE_VERSION}`,
    );
  }
  const key = await loadPrivateKey(opts.signingKey);
  await mkdir(opts.outDir, { recursive: true });
  const work = await mkdtemp(join(opts.outDir, '.k-build-'));
  try {
    const app = await buildAppRelease({
      version: opts.version,
      broken,
      outDir: join(work, 'app'),
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    });
    const migrationsDir = join(work, 'migrations');
    await mkdir(migrationsDir);
    const migrations = labMigrationsFor(opts.version);
    if (opts.failingMigration) migrations.push(HALF_WAY_MIGRATION);
    for (const m of migrations) await writeFile(join(migrationsDir, m.name), m.sql);
    const configDir = join(work, 'config');
    await mkdir(configDir);
    await writeFile(
      join(configDir, 'release.properties'),
      `# Shipped by the lab's ${opts.version} package; the services do not depend on it.\nrelease.version=${opts.version}\nrelease.broken=${broken}\n`,
    );
    const variant = `${broken ? '-broken' : ''}${opts.failingMigration ? '-failing-migration' : ''}`;
    const packagePath = join(opts.outDir, `app-${opts.version}${variant}.tar.gz`);
    const built = await buildPackage({
      name: 'app',
      version: opts.version,
      upgradesFrom,
      jarPath: app.jarPath,
      pythonPath: app.pythonPath,
      configDir,
      migrationsDir,
      outPath: packagePath,
    });
    const { sigPath } = await signArchive(packagePath, key);
    return { packagePath, sigPath, version: opts.version, broken, manifest: built.manifest };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface LabPackageSet {
  keys: SigningKeyPaths;
  v2: LabPackage;
  v3: LabPackage;
  broken: LabPackage;
}

/**
 * Everything a lab needs for upgrade tests in one call: the signing key pair
 * in keyDir (created once) and signed v2, v3 and broken packages in outDir.
 */
export async function buildLabPackages(opts: {
  keyDir: string;
  outDir: string;
  cacheDir?: string;
}): Promise<LabPackageSet> {
  const keys = await ensureLabSigningKey(opts.keyDir);
  const common = {
    outDir: opts.outDir,
    signingKey: keys.privateKeyPath,
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
  };
  // one at a time: javac is the slow part and the machine is small
  const v2 = await buildLabPackage({ ...common, version: LAB_RELEASE_VERSIONS[0] });
  const v3 = await buildLabPackage({ ...common, version: LAB_RELEASE_VERSIONS[1] });
  const broken = await buildLabPackage({ ...common, version: LAB_BROKEN_VERSION, broken: true });
  return { keys, v2, v3, broken };
}
