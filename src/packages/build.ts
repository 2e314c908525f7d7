// Builds an upgrade package: manifest.json first, then payload/ (app.jar,
// worker.py, config/...) and migrations/*.sql, as a gzip'd ustar archive.
// Files are hashed before writing (the manifest comes first) and hashed again
// while being written, so a file that changes mid-build fails the build
// instead of producing a package whose manifest lies.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, readdir, rename, rm } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import { hashFile, readFileChunks } from './hash.js';
import {
  MANIFEST_FORMAT,
  MANIFEST_PATH,
  type ManifestFile,
  type PackageManifest,
  parseManifest,
  serializeManifest,
} from './manifest.js';
import { type TarWriteEntry, writeTar } from './tar.js';

export interface BuildPackageOptions {
  name?: string;
  version: string;
  upgradesFrom: string[];
  jarPath: string;
  pythonPath: string;
  /** Configuration files to ship, copied under payload/config/. */
  configDir?: string;
  /** *.sql schema migrations, applied in file-name order. */
  migrationsDir?: string;
  outPath: string;
  /** For reproducible tests; defaults to now. */
  createdAt?: Date;
}

export interface BuiltPackage {
  path: string;
  manifest: PackageManifest;
}

/** Files that must never travel in a package: the root key stays on the nodes. */
const FORBIDDEN_CONFIG_NAMES = new Set(['root.key']);

interface SourceFile {
  archivePath: string;
  sourcePath: string;
  mode: number;
}

async function regularFile(path: string, what: string): Promise<{ size: number; mode: number }> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}`, { cause: err });
  }
  if (!st.isFile()) throw new Error(`${what} ${path} is not a regular file`);
  return { size: st.size, mode: st.mode & 0o777 };
}

async function walkConfig(dir: string, root = dir): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const full = join(dir, name);
    const st = await lstat(full);
    const rel = relative(root, full).split(sep).join('/');
    if (st.isSymbolicLink())
      throw new Error(`config file ${full} is a symbolic link; packages carry regular files only`);
    if (st.isDirectory()) out.push(...(await walkConfig(full, root)));
    else if (st.isFile()) {
      if (FORBIDDEN_CONFIG_NAMES.has(name)) {
        throw new Error(
          `${full}: the root key must never be put in a package; it stays on the nodes`,
        );
      }
      // keep restrictive modes (0600 stays 0600) but never ship execute/setuid bits for config
      out.push({ archivePath: `payload/config/${rel}`, sourcePath: full, mode: st.mode & 0o666 });
    } else throw new Error(`config entry ${full} is not a regular file or folder`);
  }
  return out;
}

async function listMigrations(dir: string): Promise<SourceFile[]> {
  const names = (await readdir(dir)).sort();
  const out: SourceFile[] = [];
  for (const name of names) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$/.test(name)) {
      throw new Error(`migrations folder ${dir} holds ${name}, which is not a NAME.sql file`);
    }
    await regularFile(join(dir, name), 'migration');
    out.push({ archivePath: `migrations/${name}`, sourcePath: join(dir, name), mode: 0o644 });
  }
  return out;
}

async function collectSources(opts: BuildPackageOptions): Promise<SourceFile[]> {
  await regularFile(opts.jarPath, 'jar');
  await regularFile(opts.pythonPath, 'Python service');
  const files: SourceFile[] = [
    { archivePath: 'payload/app.jar', sourcePath: opts.jarPath, mode: 0o644 },
    { archivePath: 'payload/worker.py', sourcePath: opts.pythonPath, mode: 0o644 },
  ];
  if (opts.configDir) files.push(...(await walkConfig(opts.configDir)));
  if (opts.migrationsDir) files.push(...(await listMigrations(opts.migrationsDir)));
  return files;
}

async function* fileEntries(
  manifestBytes: Buffer,
  sources: SourceFile[],
  listed: Map<string, ManifestFile>,
): AsyncGenerator<TarWriteEntry> {
  yield { path: MANIFEST_PATH, mode: 0o644, size: manifestBytes.length, content: manifestBytes };
  for (const src of sources) {
    const file = listed.get(src.archivePath)!;
    const hash = createHash('sha256');
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const chunk of readFileChunks(src.sourcePath)) {
        hash.update(chunk);
        yield chunk;
      }
      if (hash.digest('hex') !== file.sha256) {
        throw new Error(`${src.sourcePath} changed while the package was being built; build again`);
      }
    }
    yield { path: file.path, mode: file.mode, size: file.size, content: hashed() };
  }
}

export async function buildPackage(opts: BuildPackageOptions): Promise<BuiltPackage> {
  const sources = await collectSources(opts);
  const files: ManifestFile[] = [];
  for (const src of sources) {
    const { sha256, size } = await hashFile(src.sourcePath);
    files.push({ path: src.archivePath, sha256, size, mode: src.mode });
  }
  const manifest = parseManifest({
    format: MANIFEST_FORMAT,
    name: opts.name ?? 'app',
    version: opts.version,
    upgradesFrom: opts.upgradesFrom,
    files,
    migrations: sources
      .filter((s) => s.archivePath.startsWith('migrations/'))
      .map((s) => basename(s.archivePath)),
    createdAt: (opts.createdAt ?? new Date()).toISOString(),
  });
  const listed = new Map(files.map((f) => [f.path, f]));
  // Write beside the target and rename, so a failed build leaves no half package.
  const tmp = `${opts.outPath}.partial-${process.pid}`;
  try {
    await pipeline(
      Readable.from(writeTar(fileEntries(serializeManifest(manifest), sources, listed))),
      createGzip({ level: zlibConstants.Z_BEST_SPEED, chunkSize: 1024 * 1024 }),
      createWriteStream(tmp, { mode: 0o644 }),
    );
    await rename(tmp, opts.outPath);
  } catch (err) {
    await rm(tmp, { force: true });
    // our own errors (a file changed mid-build) already say what happened
    if ((err as NodeJS.ErrnoException).code === undefined) throw err;
    throw new Error(`cannot write package ${opts.outPath}`, { cause: err });
  }
  return { path: opts.outPath, manifest };
}
