// Staging a verified upgrade package for installation: the signature and the
// manifest are checked with the existing verifier, then the archive is read a
// second time through the same strict tar reader and manifest checker, and
// only the files the manifest lists are written, each into a file this code
// creates itself (O_EXCL, 0600) under a fresh private folder (0700).
//
// The second read is checked against the first: the archive's bytes must hash
// to the digest the signature was verified against, so a package swapped on
// disk between verification and extraction is refused; and every extracted
// file is hashed again from disk and compared with the manifest. Any failure
// removes the folder: a staged package is complete and verified or not there.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { type ProtectedPath, protectedTarget } from '../inventory/hapair.js';
import { ManifestChecker } from './contents.js';
import {
  type FileDigest,
  hashFile,
  migrationChecksum,
  READ_CHUNK,
  readFileChunks,
} from './hash.js';
import { MANIFEST_PATH, type PackageManifest } from './manifest.js';
import type { TrustedKey } from './signing.js';
import { readTar, type TarLimits } from './tar.js';
import { type VerifiedPackage, verifyPackage } from './verify.js';

/** What a payload file is for; the executor maps each kind to a place on the node. */
export type PayloadKind = 'jar' | 'python' | 'config';

export interface StagedPayload {
  /** The file on the operator's machine, inside the staging folder. */
  readonly path: string;
  /** Its path in the archive, e.g. payload/app.jar. */
  readonly archivePath: string;
  readonly sha256: string;
  readonly size: number;
  readonly mode: number;
  readonly kind: PayloadKind;
  /** For config files: the path relative to the config folder (payload/config/<target>). */
  readonly target?: string;
}

export interface StagedMigration {
  readonly name: string;
  readonly sql: string;
  /** sha256 of the SQL text, as the database driver records it. */
  readonly checksum: string;
}

export interface StagedPackage {
  readonly dir: string;
  readonly manifest: PackageManifest;
  readonly version: string;
  readonly upgradesFrom: readonly string[];
  readonly payload: readonly StagedPayload[];
  /** In the order of application (the manifest's `migrations`). */
  readonly migrations: readonly StagedMigration[];
  /** Removes the staging folder; safe to call twice. */
  cleanup(): Promise<void>;
}

export interface StageOptions {
  /** The package archive (.tar.gz); its signature is `<path>.sig` unless sigPath says otherwise. */
  readonly path: string;
  readonly sigPath?: string;
  readonly trustedKeys: readonly TrustedKey[];
  /** The staging folder is created inside this folder (which must exist). */
  readonly workDir: string;
  /** Bounds for the tar reader (entries, entry size, total size). */
  readonly limits?: Partial<TarLimits>;
  /**
   * The pair this package is for: its config folder and what it declares
   * that no package file may overwrite (protectedPaths in inventory/hapair.ts,
   * the root key under whatever name the pair gives it).
   */
  readonly protect?: PairProtection;
  /** The verifier; replaceable only so tests can simulate a file swapped after verification. */
  readonly verify?: (opts: {
    archivePath: string;
    sigPath?: string;
    trustedKeys: readonly TrustedKey[];
    limits?: Partial<TarLimits>;
  }) => Promise<VerifiedPackage>;
}

/** Staging limits: a release is a jar, a script, some config and SQL. */
export const STAGE_LIMITS: TarLimits = {
  maxEntries: 1000,
  maxEntrySize: 2 * 1024 ** 3,
  maxTotalSize: 4 * 1024 ** 3,
  maxPathLength: 255,
};

/** One migration's SQL is read into memory; anything bigger is not a migration. */
const MAX_MIGRATION_BYTES = 16 * 1024 * 1024;

/** The kind of a payload path, or a reason it cannot be installed. */
export function payloadKind(archivePath: string): { kind: PayloadKind; target?: string } | string {
  if (archivePath === 'payload/app.jar') return { kind: 'jar' };
  if (archivePath === 'payload/worker.py') return { kind: 'python' };
  if (archivePath.startsWith('payload/config/')) {
    const target = archivePath.slice('payload/config/'.length);
    if (target.split('/').includes('root.key'))
      return `${archivePath}: a package may not carry a root key`;
    return { kind: 'config', target };
  }
  return `${archivePath}: pairshift does not know where this payload file goes (expected payload/app.jar, payload/worker.py or payload/config/...)`;
}

export interface PairProtection {
  readonly configDir: string;
  readonly paths: readonly ProtectedPath[];
}

/** Why a config payload file may not go where it would land on the pair's nodes, or null. */
export function overwritesProtected(
  archivePath: string,
  protect: PairProtection | undefined,
): string | null {
  const k = payloadKind(archivePath);
  if (!protect || typeof k === 'string' || k.kind !== 'config' || k.target === undefined)
    return null;
  const hit = protectedTarget(`${protect.configDir}/${k.target}`, protect.paths);
  return hit
    ? `${archivePath}: would overwrite ${hit.what} on the nodes; a package may never carry it`
    : null;
}

/**
 * Refuses a manifest whose files the operator could not install (unknown
 * payload paths, a file the pair declares protected such as its root key
 * under whatever name, no jar, oversized migrations). Staging checks it;
 * the upload checks it too, so such a package is refused at upload.
 */
export function checkStageable(
  manifest: PackageManifest,
  protect?: PairProtection | undefined,
): void {
  const problems: string[] = [];
  for (const f of manifest.files) {
    if (f.path.startsWith('migrations/')) {
      if (f.size > MAX_MIGRATION_BYTES)
        problems.push(`${f.path} is ${f.size} bytes, more than ${MAX_MIGRATION_BYTES}`);
      continue;
    }
    const k = payloadKind(f.path);
    if (typeof k === 'string') problems.push(k);
    const hit = overwritesProtected(f.path, protect);
    if (hit) problems.push(hit);
  }
  if (!manifest.files.some((f) => f.path === 'payload/app.jar'))
    problems.push('the package carries no payload/app.jar');
  if (problems.length > 0) throw new Error(`cannot stage: ${problems.join('; ')}`);
}

/** The absolute place of an archive path inside dir; refuses anything that would leave it. */
export function placeInside(dir: string, archivePath: string): string {
  const root = resolve(dir);
  const full = resolve(root, archivePath);
  if (!full.startsWith(root + sep) || archivePath.includes('\0'))
    throw new Error(`${archivePath} would land outside the staging folder`);
  return full;
}

/**
 * Second pass over the archive: writes each listed file into dir while the
 * manifest checker judges the entries, and hashes the archive bytes so the
 * caller can compare them with the verified digest.
 */
async function extract(
  archivePath: string,
  dir: string,
  limits: Partial<TarLimits>,
): Promise<{ manifest: PackageManifest; digest: FileDigest }> {
  const archiveHash = createHash('sha256');
  let archiveSize = 0;
  const gunzip = createGunzip({ chunkSize: 1024 * 1024 });
  const feeding = (async () => {
    try {
      for await (const chunk of readFileChunks(archivePath, READ_CHUNK)) {
        if (gunzip.destroyed) return;
        archiveHash.update(chunk);
        archiveSize += chunk.length;
        if (!gunzip.write(chunk))
          await new Promise<void>((r) => {
            const done = () => {
              gunzip.off('drain', done);
              gunzip.off('close', done);
              r();
            };
            gunzip.on('drain', done);
            gunzip.on('close', done);
          });
      }
      gunzip.end();
    } catch (err) {
      gunzip.destroy(err as Error);
    }
  })();
  const checker = new ManifestChecker();
  let out: Awaited<ReturnType<typeof open>> | undefined;
  try {
    for await (const ev of readTar(gunzip, limits)) {
      // The checker throws on anything unlisted, mis-sized or out of order
      // before a byte of it is written.
      checker.onEvent(ev);
      if (ev.type === 'entry') {
        if (ev.header.path === MANIFEST_PATH) continue;
        const target = placeInside(dir, ev.header.path);
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        // wx: never through an existing file or link; 0600 until installed
        out = await open(target, 'wx', 0o600);
      } else if (ev.type === 'data') {
        if (out) await out.write(ev.chunk);
      } else if (out) {
        await out.close();
        out = undefined;
      }
    }
    await feeding;
    const manifest = checker.finish();
    return { manifest, digest: { sha256: archiveHash.digest('hex'), size: archiveSize } };
  } finally {
    await out?.close().catch(() => undefined);
    gunzip.destroy();
    await feeding;
  }
}

export async function stagePackage(opts: StageOptions): Promise<StagedPackage> {
  const limits = { ...STAGE_LIMITS, ...opts.limits };
  const verify = opts.verify ?? verifyPackage;
  const verified = await verify({
    archivePath: opts.path,
    ...(opts.sigPath ? { sigPath: opts.sigPath } : {}),
    trustedKeys: opts.trustedKeys,
    limits,
  });
  const manifest = verified.manifest;
  checkStageable(manifest, opts.protect);

  let dir: string;
  try {
    dir = await mkdtemp(join(opts.workDir, `stage-${manifest.name}-${manifest.version}-`));
  } catch (err) {
    throw new Error(
      `cannot create a staging folder in ${opts.workDir}: ${(err as NodeJS.ErrnoException).code ?? err}`,
      { cause: err },
    );
  }
  let removed = false;
  const cleanup = async () => {
    if (removed) return;
    await rm(dir, { recursive: true, force: true });
    removed = true;
  };
  try {
    const second = await extract(opts.path, dir, limits);
    if (
      second.digest.sha256 !== verified.digest.sha256 ||
      second.digest.size !== verified.digest.size
    ) {
      throw new Error(
        `${opts.path} changed after it was verified (sha256 ${second.digest.sha256.slice(0, 16)}…, expected ${verified.digest.sha256.slice(0, 16)}…)`,
      );
    }
    // Re-check each file as it lies on disk now.
    for (const f of manifest.files) {
      const d = await hashFile(placeInside(dir, f.path));
      if (d.sha256 !== f.sha256 || d.size !== f.size)
        throw new Error(
          `${f.path} extracted with sha256 ${d.sha256.slice(0, 16)}… (${d.size} bytes); the manifest says ${f.sha256.slice(0, 16)}… (${f.size} bytes)`,
        );
    }
    const payload: StagedPayload[] = [];
    for (const f of manifest.files) {
      if (!f.path.startsWith('payload/')) continue;
      const k = payloadKind(f.path) as { kind: PayloadKind; target?: string };
      payload.push({
        path: placeInside(dir, f.path),
        archivePath: f.path,
        sha256: f.sha256,
        size: f.size,
        mode: f.mode,
        kind: k.kind,
        ...(k.target !== undefined ? { target: k.target } : {}),
      });
    }
    const migrations: StagedMigration[] = [];
    for (const name of manifest.migrations) {
      const sql = await readFile(placeInside(dir, `migrations/${name}`), 'utf8');
      migrations.push({ name, sql, checksum: migrationChecksum(sql) });
    }
    return {
      dir,
      manifest,
      version: manifest.version,
      upgradesFrom: manifest.upgradesFrom,
      payload,
      migrations,
      cleanup,
    };
  } catch (err) {
    await cleanup().catch(() => undefined);
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot stage package ${opts.path}: ${why}`, { cause: err });
  }
}
