// The package manifest: what a package is, which versions it upgrades from,
// and every file it carries with its SHA-256, size and mode. It is the first
// entry of the archive so a reader can check each later entry against it in
// one streaming pass. Validation here is structural (pure); checking the
// files against the archive is verify.ts's job.
import { z } from 'zod';
import { unsafePathReason } from './tar.js';
import { compareVersions, isVersion } from './version.js';

export const MANIFEST_PATH = 'manifest.json';
export const MANIFEST_FORMAT = 'pairshift-package/v1';
/** A manifest is small; anything bigger is refused before parsing. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

const version = z.string().refine(isVersion, { message: 'expected a version MAJOR.MINOR.PATCH' });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');
const archivePath = z.string().superRefine((p, ctx) => {
  const reason = unsafePathReason(p, 255);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
  else if (!p.startsWith('payload/') && !p.startsWith('migrations/')) {
    ctx.addIssue({ code: 'custom', message: 'files live under payload/ or migrations/' });
  }
});

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a lowercase name like "app"'),
    version,
    upgradesFrom: z.array(version).min(1, 'a package must say which versions it upgrades from'),
    files: z.array(
      z
        .object({
          path: archivePath,
          sha256,
          size: z.number().int().min(0),
          mode: z.number().int().min(0).max(0o777),
        })
        .strict(),
    ),
    migrations: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$/, 'expected NAME.sql')),
    createdAt: z.iso.datetime(),
  })
  .strict();

export type PackageManifest = z.infer<typeof manifestSchema>;
export type ManifestFile = PackageManifest['files'][number];

/** Cross-field rules the schema cannot express; returns every problem found. */
function semanticProblems(m: PackageManifest): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const from of m.upgradesFrom) {
    if (seen.has(from)) problems.push(`upgradesFrom lists ${from} twice`);
    seen.add(from);
    if (compareVersions(from, m.version) >= 0) {
      problems.push(`upgradesFrom ${from} is not older than the package version ${m.version}`);
    }
  }
  const paths = new Set<string>();
  for (const f of m.files) {
    if (paths.has(f.path)) problems.push(`files lists ${f.path} twice`);
    paths.add(f.path);
  }
  // A file that is also another file's folder (a and a/b) cannot be
  // extracted: an unsafe layout, refused wherever a manifest is read (build,
  // sign, verify, upload) rather than failing later in staging.
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = parts.slice(0, i).join('/');
      if (paths.has(folder))
        problems.push(`unsafe layout: ${folder} is a file and also the folder of ${p}`);
    }
  }
  const migrationNames = new Set<string>();
  for (const name of m.migrations) {
    if (migrationNames.has(name)) problems.push(`migrations lists ${name} twice`);
    migrationNames.add(name);
    if (!paths.has(`migrations/${name}`)) problems.push(`migration ${name} is not among the files`);
  }
  for (const p of paths) {
    if (p.startsWith('migrations/') && !migrationNames.has(p.slice('migrations/'.length))) {
      problems.push(`${p} is not listed in migrations, so its order is unknown`);
    }
  }
  return problems;
}

/** Parses and checks a manifest; the error lists every problem found. */
export function parseManifest(raw: unknown): PackageManifest {
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `${i.path.length ? i.path.join('.') : '(top)'}: ${i.message}`,
    );
    throw new Error(`package manifest is invalid: ${lines.join('; ')}`);
  }
  const problems = semanticProblems(parsed.data);
  if (problems.length > 0) throw new Error(`package manifest is invalid: ${problems.join('; ')}`);
  return parsed.data;
}

export function parseManifestBytes(bytes: Buffer): PackageManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error('package manifest is not valid JSON', { cause: err });
  }
  return parseManifest(raw);
}

/** Stable JSON (two-space indent, trailing newline) so equal manifests are equal bytes. */
export function serializeManifest(m: PackageManifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`, 'utf8');
}
