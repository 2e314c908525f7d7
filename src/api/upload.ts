// Receives a package upload (POST multipart/form-data with parts `package`,
// `signature`, `pair` and optional `reason`), streams the files into a fresh
// private folder under workDir with the byte limit enforced while streaming,
// then verifies it (signature against the trusted ed25519 keys, manifest and
// contents, that it carries only files the operator can install, version
// against what the pair runs) so a bad package is refused to the client at
// once. It does not extract anything: the upgrade's runtime stages the
// package from the uploaded archive, and verifies it again while doing so
// (src/packages/stage.ts), because the archive on disk is what the nodes will
// get and it is that copy, at that moment, that must be the signed one.
// Every refusal is a PackageRejected (package-errors.ts) and removes the
// folder; on success the caller owns it: it calls cleanup() if the upgrade is
// not created, and otherwise the upload janitor (upload-janitor.ts) removes
// the folder once the upgrade has ended or its UpgradeRequest is gone.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Request } from 'express';
import type { TrustedKey } from '../packages/signing.js';
import { checkStageable, type PairProtection, STAGE_LIMITS } from '../packages/stage.js';
import type { TarLimits } from '../packages/tar.js';
import { checkPackageContents, type VerifiedPackage, verifyPackage } from '../packages/verify.js';
import { upgradePathProblem } from '../packages/version.js';
import { badRequest, classifyPackageError, PackageRejected } from './package-errors.js';
import { MultipartParser, multipartBoundary, type PartHeaders } from './package-multipart.js';
import { UPLOAD_FOLDER_PREFIX } from './upload-janitor.js';
import { type ReplicaSelf, writeOwner } from './upload-replicas.js';

export { PackageRejected } from './package-errors.js';

export interface ReceiveOptions {
  /** The upload folder is created inside it (it must exist). */
  workDir: string;
  trustedKeys: TrustedKey[];
  /** Largest request body accepted, in bytes (multipart framing included). */
  maxBytes: number;
  /** The version the pair runs now, or null when unknown (then no version check). */
  installedVersion?: (pair: string) => Promise<string | null>;
  /** What the pair declares that a package may never overwrite (null: the pair is unknown). */
  protection?: (pair: string) => Promise<PairProtection | null>;
  /** Bounds for the unpacked package; default: STAGE_LIMITS with the total capped (see below). */
  limits?: Partial<TarLimits>;
  /** Called once the headers are judged, right before the body is read (100 Continue). */
  beforeBody?: () => void;
  /**
   * This replica, recorded in the upload folder (upload-replicas.ts) so that
   * another replica sharing the folder leaves an upload in progress alone.
   */
  owner?: ReplicaSelf;
}

export interface ReceivedPackage {
  /** The uploaded archive, inside the upload folder. */
  packagePath: string;
  sigPath: string;
  version: string;
  upgradesFrom: string[];
  pair: string;
  reason: string | undefined;
  /**
   * The `options` part parsed as JSON: the same object as the JSON trigger's
   * options (dry_run, auto_rollback, ...), validated by the trigger itself.
   */
  options: unknown;
  /** The upload folder; everything above lives in it. */
  dir: string;
  /** Removes the upload folder; safe to call twice. */
  cleanup(): Promise<void>;
}

const FIELD_LIMITS: Record<string, number> = { pair: 253, reason: 1000, options: 4000 };
const MAX_SIGNATURE_BYTES = 64 * 1024;
/** A pair's name is a Kubernetes object name (RFC 1123 subdomain). */
const PAIR_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Upload part name → file name in the upload folder (never the client's filename). */
const FILE_PARTS: Record<string, string> = { package: 'package.tar.gz', signature: 'package.sig' };

/**
 * Decompression is bounded by the tar reader's declared sizes; cap the total
 * at a multiple of what was uploaded (jars are already compressed; config and
 * SQL are small) so a small upload cannot make us write gigabytes.
 */
function uploadLimits(maxBytes: number, given: Partial<TarLimits> | undefined): TarLimits {
  const cap = Math.max(64 * 1024 ** 2, 4 * maxBytes);
  return {
    ...STAGE_LIMITS,
    maxTotalSize: Math.min(STAGE_LIMITS.maxTotalSize, cap),
    maxEntrySize: Math.min(STAGE_LIMITS.maxEntrySize, cap),
    ...given,
  };
}

/** Control characters (tabs and newlines allowed when `text`). */
function hasControl(s: string, text: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 || c === 0x7f) && !(text && (c === 9 || c === 10 || c === 13))) return true;
  }
  return false;
}

/** A client's filename may only be a plain name: no folders, no `..`, nothing odd. */
function checkFilename(part: PartHeaders): void {
  const f = part.filename;
  if (f === undefined) return;
  if (
    f === '' ||
    f.includes('/') ||
    f.includes('\\') ||
    f === '.' ||
    f === '..' ||
    hasControl(f, false)
  )
    throw badRequest(
      'upload-bad-filename',
      `part ${part.name} has filename ${JSON.stringify(f)}; send a plain file name without folders`,
    );
}

interface Collected {
  fields: Map<string, string>;
  files: Map<string, string>;
}

/** Streams the multipart body into dir; enforces maxBytes while reading. */
async function collectParts(
  req: Request,
  dir: string,
  maxBytes: number,
  beforeBody: () => void = () => undefined,
): Promise<Collected> {
  const boundary = multipartBoundary(req.headers['content-type']);
  if (!boundary)
    throw new PackageRejected(
      415,
      'upload-wrong-media-type',
      `expected multipart/form-data with a boundary, got ${JSON.stringify(req.headers['content-type'] ?? '(none)')}`,
      'send the package as multipart/form-data (parts package, signature, pair, reason)',
    );
  const tooLarge = () =>
    new PackageRejected(
      413,
      'upload-too-large',
      `the upload is larger than the limit of ${maxBytes} bytes`,
      'upload a smaller package, or place it on the operator host and pass its path instead',
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  beforeBody();

  const parser = new MultipartParser(boundary);
  const seen = new Set<string>();
  const fields = new Map<string, string>();
  const files = new Map<string, string>();
  let current:
    | { name: string; kind: 'file'; fh: Awaited<ReturnType<typeof open>>; size: number }
    | { name: string; kind: 'field'; parts: Buffer[]; size: number }
    | undefined;
  let received = 0;
  try {
    for await (const raw of req as AsyncIterable<Buffer>) {
      received += raw.length;
      if (received > maxBytes) throw tooLarge();
      for (const ev of parser.write(raw)) {
        if (ev.type === 'part') {
          const { name } = ev.headers;
          if (seen.has(name))
            throw badRequest('upload-duplicate-part', `the form has two ${name} parts`);
          seen.add(name);
          if (FILE_PARTS[name]) {
            checkFilename(ev.headers);
            const path = join(dir, FILE_PARTS[name]);
            // wx + 0600: a file we create ourselves, never through a link
            current = { name, kind: 'file', fh: await open(path, 'wx', 0o600), size: 0 };
            files.set(name, path);
          } else if (FIELD_LIMITS[name] !== undefined) {
            if (ev.headers.filename !== undefined)
              throw badRequest(
                'upload-bad-field',
                `part ${name} must be a plain field, not a file`,
              );
            current = { name, kind: 'field', parts: [], size: 0 };
          } else {
            throw badRequest(
              'upload-unknown-part',
              `unexpected part ${JSON.stringify(name.slice(0, 64))}; expected package, signature, pair, reason and options`,
            );
          }
        } else if (ev.type === 'data' && current) {
          current.size += ev.chunk.length;
          if (current.kind === 'file') {
            if (current.name === 'signature' && current.size > MAX_SIGNATURE_BYTES)
              throw badRequest(
                'upload-malformed',
                'the signature part is too large to be a signature',
              );
            await current.fh.write(ev.chunk);
          } else {
            if (current.size > FIELD_LIMITS[current.name]!)
              throw badRequest(
                'upload-bad-field',
                `${current.name} is longer than ${FIELD_LIMITS[current.name]} bytes`,
              );
            current.parts.push(Buffer.from(ev.chunk));
          }
        } else if (ev.type === 'part-end' && current) {
          // Synced before the upgrade can name it: the leader may be another
          // replica reading the same (shared) volume, and a crash of this one
          // must not leave it a file shorter than the one verified here.
          if (current.kind === 'file') {
            await current.fh.sync();
            await current.fh.close();
          } else fields.set(current.name, Buffer.concat(current.parts).toString('utf8'));
          current = undefined;
        }
      }
    }
    parser.end();
  } catch (err) {
    if (err instanceof PackageRejected) throw err;
    // The client went away mid-body (ECONNRESET, "aborted"): nothing to keep.
    throw new PackageRejected(
      400,
      'upload-malformed',
      'the upload was cut short',
      'send the package again',
      { cause: err },
    );
  } finally {
    if (current?.kind === 'file') await current.fh.close().catch(() => undefined);
  }
  return { fields, files };
}

function requireParts(c: Collected): {
  pair: string;
  reason: string | undefined;
  options: unknown;
} {
  for (const name of ['package', 'signature'])
    if (!c.files.has(name)) throw badRequest('upload-missing-part', `the form has no ${name} part`);
  const pair = c.fields.get('pair');
  if (pair === undefined) throw badRequest('upload-missing-part', 'the form has no pair part');
  if (!PAIR_RE.test(pair))
    throw badRequest(
      'upload-bad-field',
      `pair ${JSON.stringify(pair.slice(0, 64))} is not a valid name`,
    );
  const reason = c.fields.get('reason');
  if (reason !== undefined && (reason.trim() === '' || hasControl(reason, true)))
    throw badRequest('upload-bad-field', 'reason must be non-empty text');
  const text = c.fields.get('options');
  let options: unknown;
  if (text !== undefined) {
    try {
      options = JSON.parse(text);
    } catch {
      throw badRequest('upload-bad-field', 'options must be a JSON object, e.g. {"dry_run": true}');
    }
    if (typeof options !== 'object' || options === null || Array.isArray(options))
      throw badRequest('upload-bad-field', 'options must be a JSON object, e.g. {"dry_run": true}');
  }
  return { pair, reason, options };
}

/** Checks the package against what the pair runs, by the one version rule. */
function checkVersion(
  pkg: { version: string; upgradesFrom: readonly string[] },
  installed: string | null,
  pair: string,
): void {
  if (installed === null) return;
  const problem = upgradePathProblem(pkg, installed);
  if (problem?.code === 'not-newer')
    throw new PackageRejected(
      422,
      'package-not-newer',
      `package version ${pkg.version} is not newer than ${installed}, which pair ${pair} runs; a downgrade is a rollback`,
      'upload a newer package, or roll back the upgrade that installed this version',
    );
  if (problem?.code === 'wrong-version-line')
    throw new PackageRejected(
      422,
      'package-wrong-version-line',
      `package ${pkg.version} upgrades from ${pkg.upgradesFrom.join(', ')}, not from ${installed}, which pair ${pair} runs`,
      'upload a package built for the installed version (pairshift package build --from-versions)',
    );
}

/** Every entry of the archive against its manifest; the bytes must be the signed ones. */
async function checkContents(
  archivePath: string,
  verified: VerifiedPackage,
  limits: TarLimits,
): Promise<void> {
  try {
    const contents = await checkPackageContents(archivePath, limits);
    if (contents.digest.sha256 !== verified.digest.sha256)
      throw new Error(`${archivePath} changed while it was being verified`);
  } catch (err) {
    throw new Error(
      `package ${archivePath} is signed by ${verified.signer.keyId} but its contents are refused: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** Refusal messages name files as the client sent them, not where the server keeps them. */
function withoutFolder(err: unknown, dir: string): unknown {
  if (!(err instanceof PackageRejected) || !err.message.includes(dir)) return err;
  const message = err.message
    .replaceAll(`${dir}/package.tar.gz`, 'the package')
    .replaceAll(`${dir}/package.sig`, 'the signature')
    .replaceAll(dir, '(upload)');
  return new PackageRejected(err.status, err.code, message, err.suggestion, {
    cause: err.cause,
    ...(err.detail !== undefined ? { detail: err.detail } : {}),
  });
}

export async function receivePackage(req: Request, opts: ReceiveOptions): Promise<ReceivedPackage> {
  // mkdtemp creates the folder with mode 0700. The prefix is how the
  // janitor (upload-janitor.ts) tells upload folders from upgrades' own.
  const dir = await mkdtemp(join(opts.workDir, UPLOAD_FOLDER_PREFIX));
  let kept = false;
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    if (opts.owner) await writeOwner(dir, opts.owner);
    const collected = await collectParts(req, dir, opts.maxBytes, opts.beforeBody);
    const { pair, reason, options } = requireParts(collected);
    const installed = opts.installedVersion ? await opts.installedVersion(pair) : null;
    const protect = (await opts.protection?.(pair)) ?? undefined;
    const packagePath = collected.files.get('package')!;
    const sigPath = collected.files.get('signature')!;
    const limits = uploadLimits(opts.maxBytes, opts.limits);
    let manifest: { version: string; upgradesFrom: string[] };
    try {
      const verified = await verifyPackage({
        archivePath: packagePath,
        sigPath,
        trustedKeys: opts.trustedKeys,
        limits,
      });
      manifest = verified.manifest;
      checkStageable(verified.manifest, protect);
      checkVersion(manifest, installed, pair);
      // Under a v2 signature only the manifest was read: judge every entry
      // now too (no extraction), so a package that staging would refuse is
      // refused to the client, not at the start of its upgrade.
      if (!verified.contentsChecked) await checkContents(packagePath, verified, limits);
    } catch (err) {
      throw withoutFolder(classifyPackageError(err), dir);
    }
    kept = true;
    return {
      packagePath,
      sigPath,
      version: manifest.version,
      upgradesFrom: [...manifest.upgradesFrom],
      pair,
      reason,
      options,
      dir,
      cleanup,
    };
  } finally {
    if (!kept) await cleanup();
  }
}
