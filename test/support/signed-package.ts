// Signed packages for tests: built by the real builder from a folder of
// sources, or made by hand (for contents the builder would never write), and
// signed with a test key.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildPackage } from '../../src/packages/build.js';
import { MANIFEST_FORMAT, parseManifest, serializeManifest } from '../../src/packages/manifest.js';
import { generateSigningKeyPair, loadPrivateKey, signArchive } from '../../src/packages/signing.js';
import { writeTar } from '../../src/packages/tar.js';

export interface SignedTestPackage {
  /** dir/app-2.0.0.tar.gz, with its signature beside it (.sig). */
  readonly path: string;
  readonly publicKeyPath: string;
  readonly privateKeyPath: string;
}

/** A small signed 2.0.0 package (upgrades from 1.0.0) in dir, its keys in dir/keys. */
export async function signedTestPackage(dir: string): Promise<SignedTestPackage> {
  mkdirSync(join(dir, 'keys'));
  const keys = await generateSigningKeyPair(join(dir, 'keys'));
  writeFileSync(join(dir, 'app.jar'), Buffer.alloc(50_000, 7));
  writeFileSync(join(dir, 'worker.py'), 'print("v2")\n');
  const path = await buildSignedPackage(dir, keys.privateKeyPath);
  return { path, publicKeyPath: keys.publicKeyPath, privateKeyPath: keys.privateKeyPath };
}

/**
 * Builds 2.0.0 (upgrades from 1.0.0) from dir/app.jar and dir/worker.py, with
 * dir/config and dir/migrations when they exist, and signs it.
 */
export async function buildSignedPackage(
  dir: string,
  privateKeyPath: string,
  out = join(dir, 'app-2.0.0.tar.gz'),
): Promise<string> {
  const optional = (name: string) => (existsSync(join(dir, name)) ? join(dir, name) : undefined);
  const configDir = optional('config');
  const migrationsDir = optional('migrations');
  await buildPackage({
    version: '2.0.0',
    upgradesFrom: ['1.0.0'],
    jarPath: join(dir, 'app.jar'),
    pythonPath: join(dir, 'worker.py'),
    ...(configDir ? { configDir } : {}),
    ...(migrationsDir ? { migrationsDir } : {}),
    outPath: out,
  });
  await signArchive(out, await loadPrivateKey(privateKeyPath));
  return out;
}

export interface HandEntry {
  path: string;
  data: Buffer;
  mode?: number;
}

/** dir/hand.tar.gz: exactly these entries, in this order, validly signed. */
export async function signedHandArchive(
  dir: string,
  privateKeyPath: string,
  entries: HandEntry[],
): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of writeTar(
    entries.map((e) => ({
      path: e.path,
      mode: e.mode ?? 0o644,
      size: e.data.length,
      content: e.data,
    })),
  )) {
    parts.push(p);
  }
  const out = join(dir, 'hand.tar.gz');
  writeFileSync(out, gzipSync(Buffer.concat(parts)));
  await signArchive(out, await loadPrivateKey(privateKeyPath));
  return out;
}

/** A valid 2.0.0 manifest listing these files (mode 0644 unless given); extra overrides fields. */
export function manifestFor(files: HandEntry[], extra = {}): Buffer {
  return serializeManifest(
    parseManifest({
      format: MANIFEST_FORMAT,
      name: 'app',
      version: '2.0.0',
      upgradesFrom: ['1.0.0'],
      files: files.map((f) => ({
        path: f.path,
        sha256: createHash('sha256').update(f.data).digest('hex'),
        size: f.data.length,
        mode: f.mode ?? 0o644,
      })),
      migrations: [],
      createdAt: new Date(0).toISOString(),
      ...extra,
    }),
  );
}
