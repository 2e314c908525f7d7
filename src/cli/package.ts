// `pairshift package build|keygen|sign|verify`: upgrade packages from the
// command line (docs/packages.md). Thin: parse options, call src/packages.
import { mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  buildPackage,
  generateSigningKeyPair,
  loadPrivateKey,
  loadTrustedKey,
  parseVersion,
  signArchive,
  verifyPackage,
} from '../packages/index.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function splitVersions(list: string): string[] {
  const versions = list
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  for (const v of versions) parseVersion(v);
  return versions;
}

export function registerPackageCommands(program: Command): void {
  // `package build --version V` would otherwise be taken by the program's own
  // --version (commander reads program options anywhere on the line); with
  // positional options the program's flags count only before the subcommand.
  program.enablePositionalOptions();
  const pkg = program.command('package').description('Build, sign and verify upgrade packages');

  pkg
    .command('build')
    .description('Build an upgrade package (tar.gz with manifest.json, payload/ and migrations/)')
    .requiredOption('--version <version>', 'version of the package, MAJOR.MINOR.PATCH')
    .requiredOption('--from-versions <list>', 'comma-separated versions it upgrades from')
    .requiredOption('--jar <file>', 'the Java service jar')
    .requiredOption('--python <file>', 'the Python service script')
    .option('--config-dir <dir>', 'configuration files to ship (never the root key)')
    .option('--migrations <dir>', 'folder of NAME.sql schema migrations, applied in name order')
    .option('--name <name>', 'package name', 'app')
    .requiredOption('--out <file>', 'where to write the .tar.gz')
    .action(async (o) => {
      parseVersion(o.version);
      const built = await buildPackage({
        name: o.name,
        version: o.version,
        upgradesFrom: splitVersions(o.fromVersions),
        jarPath: o.jar,
        pythonPath: o.python,
        configDir: o.configDir,
        migrationsDir: o.migrations,
        outPath: o.out,
      });
      process.stdout.write(
        `built ${built.path}: ${built.manifest.name} ${built.manifest.version}, ` +
          `${built.manifest.files.length} files, ${built.manifest.migrations.length} migrations\n`,
      );
    });

  pkg
    .command('keygen')
    .description(
      'Create an ed25519 signing key pair (package-signing.key 0600, package-signing.pub)',
    )
    .requiredOption('--out <dir>', 'folder for the key pair (created if missing)')
    .action(async (o) => {
      await mkdir(o.out, { recursive: true, mode: 0o700 });
      const keys = await generateSigningKeyPair(o.out);
      process.stdout.write(
        `key ${keys.keyId}: private ${keys.privateKeyPath}, public ${keys.publicKeyPath}\n`,
      );
    });

  pkg
    .command('sign')
    .description('Write FILE.sig, a detached ed25519 signature of the archive')
    .requiredOption('--key <file>', 'ed25519 private key (PEM)')
    .option('--sig <file>', 'where to write the signature (default FILE.sig)')
    .argument('<file>', 'package archive')
    .action(async (file: string, o) => {
      const key = await loadPrivateKey(o.key);
      const { sigPath, signature } = await signArchive(file, key, o.sig);
      process.stdout.write(`signed ${file} with key ${signature.keyId}: ${sigPath}\n`);
    });

  pkg
    .command('verify')
    .description('Check the signature against trusted keys, then every file against the manifest')
    .option('--pubkey <file>', 'trusted ed25519 public key (repeatable)', collect, [] as string[])
    .option('--sig <file>', 'signature file (default FILE.sig)')
    .option('--output <format>', 'text or json', 'text')
    .argument('<file>', 'package archive')
    .action(async (file: string, o) => {
      if (o.pubkey.length === 0) throw new Error('give at least one trusted key with --pubkey');
      const trustedKeys = await Promise.all((o.pubkey as string[]).map(loadTrustedKey));
      const v = await verifyPackage({ archivePath: file, sigPath: o.sig, trustedKeys });
      if (o.output === 'json') {
        process.stdout.write(
          `${JSON.stringify({ ok: true, signer: v.signer.keyId, sha256: v.digest.sha256, manifest: v.manifest }, null, 2)}\n`,
        );
      } else {
        process.stdout.write(
          `ok: ${v.manifest.name} ${v.manifest.version} (upgrades from ${v.manifest.upgradesFrom.join(', ')}), ` +
            `${v.manifest.files.length} files verified, signed by ${v.signer.keyId}\n`,
        );
      }
    });
}
