// Parsing what the node prints: file digests computed there (only hashes
// travel, never contents), the listing of the backup folder, and a set's
// manifest. Pure.
import { z } from 'zod';
import { isSetName, PARTIAL_PREFIX } from './naming.js';

export interface FileDigest {
  readonly path: string;
  readonly size: number;
  readonly md5: string;
  readonly sha256: string;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/**
 * One line per file from DIGEST_SCRIPT: "<size> <md5> <sha256> <path>", or
 * "MISSING <path>" for a file that is not there.
 */
export function parseDigestLines(text: string): { digests: FileDigest[]; missing: string[] } {
  const digests: FileDigest[] = [];
  const missing: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('MISSING ')) {
      missing.push(line.slice('MISSING '.length));
      continue;
    }
    const m = /^(\d+) ([0-9a-f]{32}) ([0-9a-f]{64}) (\/.*)$/.exec(line);
    if (!m)
      throw new Error(
        `unexpected digest line from the node: ${JSON.stringify(line.slice(0, 200))}`,
      );
    digests.push({ size: Number(m[1]), md5: m[2]!, sha256: m[3]!, path: m[4]! });
  }
  return { digests, missing };
}

/** `openssl dgst -sha256 -r FILE` -> the hex digest ("<hex> *FILE"). */
export function parseOpensslDigest(text: string, bits: 128 | 256 = 256): string {
  const hex = text.trim().split(/\s+/)[0] ?? '';
  const ok = bits === 256 ? HEX64 : HEX32;
  if (!ok.test(hex))
    throw new Error(`not an openssl digest: ${JSON.stringify(text.slice(0, 120))}`);
  return hex;
}

/** `stat -c '%s %u %g %a'` -> size, uid, gid, octal mode. */
export interface FileStat {
  readonly size: number;
  readonly uid: number;
  readonly gid: number;
  readonly mode: string;
}

export function parseStat(text: string): FileStat {
  const m = /^(\d+) (\d+) (\d+) ([0-7]{3,4})$/.exec(text.trim());
  if (!m) throw new Error(`unexpected stat output: ${JSON.stringify(text.slice(0, 120))}`);
  return { size: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]), mode: m[4]!.padStart(4, '0') };
}

const fileEntry = z.object({
  kind: z.enum(['jar', 'config', 'database']),
  name: z.string().regex(/^[A-Za-z0-9._-]+$/),
  source: z.string(),
  size: z.number().int().nonnegative(),
  md5: z.string().regex(HEX32),
  sha256: z.string().regex(HEX64),
});

export const manifestSchema = z.object({
  format: z.literal('pairshift-backup/1'),
  set: z.string().refine(isSetName, 'not a set name'),
  node: z.string().min(1),
  upgradeId: z.string().nullable(),
  createdAt: z.string(),
  files: z.array(fileEntry).min(1),
});

export type BackupManifest = z.output<typeof manifestSchema>;
export type ManifestFile = BackupManifest['files'][number];

export function parseManifest(text: string, where: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${where}: manifest is not JSON`);
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${where}: manifest ${i.path.join('.') || '(document)'}: ${i.message}`);
  }
  return r.data;
}

export interface BackupListing {
  /** Complete sets, by name. */
  readonly sets: { name: string; manifest: BackupManifest }[];
  /** Sets whose manifest could not be read (named with the reason). */
  readonly unreadable: { name: string; reason: string }[];
  /** Leftover .partial- folders of a run that never finished. */
  readonly partial: string[];
}

/** LIST_SCRIPT's output: "SET <name> <manifest json>" | "NOMANIFEST <name>" | "PARTIAL <name>". */
export function parseListing(text: string): BackupListing {
  const out: BackupListing = { sets: [], unreadable: [], partial: [] };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [tag, name = '', ...rest] = line.split(' ');
    if (tag === 'PARTIAL' && name.startsWith(PARTIAL_PREFIX)) out.partial.push(name);
    else if (tag === 'NOMANIFEST' && isSetName(name))
      out.unreadable.push({ name, reason: 'no manifest' });
    else if (tag === 'SET' && isSetName(name)) {
      try {
        const manifest = parseManifest(rest.join(' '), `set ${name}`);
        if (manifest.set !== name)
          throw new Error(`set ${name}: manifest names set ${manifest.set}`);
        out.sets.push({ name, manifest });
      } catch (err) {
        out.unreadable.push({ name, reason: (err as Error).message });
      }
    }
  }
  out.sets.sort((x, y) => (x.name < y.name ? -1 : 1));
  return out;
}

export type FileCheck =
  | { readonly name: string; readonly state: 'ok' }
  | { readonly name: string; readonly state: 'missing' }
  | {
      readonly name: string;
      readonly state: 'corrupt';
      readonly expected: { size: number; md5: string; sha256: string };
      readonly found: { size: number; md5: string; sha256: string };
    };

/** Compares recomputed digests with the manifest's. */
export function compareDigests(
  manifest: BackupManifest,
  setDir: string,
  found: { digests: FileDigest[]; missing: string[] },
): FileCheck[] {
  return manifest.files.map((f) => {
    const path = `${setDir}/${f.name}`;
    const d = found.digests.find((x) => x.path === path);
    if (!d) return { name: f.name, state: 'missing' as const };
    if (d.sha256 === f.sha256 && d.md5 === f.md5 && d.size === f.size)
      return { name: f.name, state: 'ok' as const };
    return {
      name: f.name,
      state: 'corrupt' as const,
      expected: { size: f.size, md5: f.md5, sha256: f.sha256 },
      found: { size: d.size, md5: d.md5, sha256: d.sha256 },
    };
  });
}
