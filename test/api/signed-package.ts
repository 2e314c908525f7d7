// A small signed 2.0.0 package (upgrades from 1.0.0) and its key pair, for
// the tests that upload or stage one through the API.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPackage } from '../../src/packages/build.js';
import { generateSigningKeyPair, loadPrivateKey, signArchive } from '../../src/packages/signing.js';

export interface SignedTestPackage {
  /** dir/app-2.0.0.tar.gz, with its signature beside it (.sig). */
  readonly path: string;
  readonly publicKeyPath: string;
  readonly privateKeyPath: string;
}

/** Builds and signs the package in dir (keys in dir/keys). */
export async function signedTestPackage(dir: string): Promise<SignedTestPackage> {
  mkdirSync(join(dir, 'keys'));
  const keys = await generateSigningKeyPair(join(dir, 'keys'));
  writeFileSync(join(dir, 'app.jar'), Buffer.alloc(50_000, 7));
  writeFileSync(join(dir, 'worker.py'), 'print("v2")\n');
  const path = join(dir, 'app-2.0.0.tar.gz');
  await buildPackage({
    version: '2.0.0',
    upgradesFrom: ['1.0.0'],
    jarPath: join(dir, 'app.jar'),
    pythonPath: join(dir, 'worker.py'),
    outPath: path,
  });
  await signArchive(path, await loadPrivateKey(keys.privateKeyPath));
  return { path, publicKeyPath: keys.publicKeyPath, privateKeyPath: keys.privateKeyPath };
}
