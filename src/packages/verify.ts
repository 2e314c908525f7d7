// Verifies a package file: the detached signature against the trusted keys,
// then the contents against the manifest. One streaming read of the archive
// feeds both the archive hash (for the signature) and the decompressor (for
// the contents), so a package is never held in memory or extracted to disk.
import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ManifestChecker } from './contents.js';
import { type FileDigest, hashFile, READ_CHUNK } from './hash.js';
import type { PackageManifest } from './manifest.js';
import { ParallelSha256 } from './parallel-hash.js';
import {
  checkSignature,
  checkSignatureClaims,
  parseSignatureFile,
  SIGNATURE_FORMAT_V2,
  SignatureError,
  type TrustedKey,
} from './signing.js';
import { readTar, type TarLimits } from './tar.js';

export interface VerifyOptions {
  archivePath: string;
  /** Defaults to `<archivePath>.sig`. */
  sigPath?: string;
  trustedKeys: readonly TrustedKey[];
  limits?: Partial<TarLimits>;
}

export interface VerifiedPackage {
  manifest: PackageManifest;
  signer: TrustedKey;
  /** The archive's digest, hashed from its bytes (and equal to the signed one). */
  digest: FileDigest;
  /** The manifest entry's digest (what a v2 signature also signs). */
  manifestDigest: FileDigest;
}

export interface ContentsResult {
  manifest: PackageManifest;
  digest: FileDigest;
  manifestDigest: FileDigest;
}

interface StreamOptions {
  /** Re-hash every entry (false only under a v2 signature's attestation). */
  hashEntries: boolean;
  /** Refuse the archive as soon as its manifest differs from this (v2). */
  expectManifest?: FileDigest;
}

/** Inflated chunks handed to the tar reader; large chunks keep hashing fast. */
const INFLATE_CHUNK = 1024 * 1024;
/** Below this the hashing worker costs more to start than it saves. */
const PARALLEL_HASH_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Read buffers reused in turn: each is refilled only after the hasher and the
 * decompressor are both done with it. Reusing memory matters: fresh 4 MiB
 * buffers cost a page fault per 4 KiB, about as much CPU as inflating.
 */
const RING = 4;

/** Resolves when the stream has consumed the chunk, or was destroyed. */
function written(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('close', done);
      resolve();
    };
    stream.on('close', done);
    stream.write(chunk, done);
  });
}

interface ArchiveHasher {
  /** Resolves when the hasher is done with the chunk's memory. */
  submit(chunk: Buffer): Promise<void>;
  digest(): Promise<FileDigest>;
  close(): Promise<void>;
}

function inlineHasher(): ArchiveHasher {
  const hash = createHash('sha256');
  let size = 0;
  return {
    async submit(chunk) {
      hash.update(chunk);
      size += chunk.length;
    },
    digest: async () => ({ sha256: hash.digest('hex'), size }),
    close: async () => {},
  };
}

/**
 * Streams the archive once: hashes its bytes and checks its contents against
 * its manifest. Does not look at any signature (see verifyPackage). Large
 * archives are hashed on a worker thread fed the same chunks (parallel-hash.ts).
 */
export function checkPackageContents(
  archivePath: string,
  limits: Partial<TarLimits> = {},
): Promise<ContentsResult> {
  return streamContents(archivePath, limits, { hashEntries: true });
}

async function streamContents(
  archivePath: string,
  limits: Partial<TarLimits>,
  opts: StreamOptions,
): Promise<ContentsResult> {
  let archiveSize: number;
  try {
    archiveSize = (await stat(archivePath)).size;
  } catch (err) {
    throw new Error(`cannot read package ${archivePath}`, { cause: err });
  }
  const parallel = archiveSize >= PARALLEL_HASH_MIN_BYTES;
  const hasher: ArchiveHasher = parallel ? new ParallelSha256() : inlineHasher();
  const gunzip = createGunzip({ chunkSize: INFLATE_CHUNK });
  // Feed the decompressor by hand (not stream.pipeline): when the reader
  // refuses an entry we want its error, not the pipeline's "aborted".
  const feeding = (async () => {
    let fh: Awaited<ReturnType<typeof open>> | undefined;
    try {
      fh = await open(archivePath, 'r');
      const ring: Buffer[] = [];
      const busy: Promise<unknown>[] = [];
      for (let i = 0; ; i++) {
        const slot = i % RING;
        await busy[slot];
        if (gunzip.destroyed) return;
        ring[slot] ??= parallel
          ? Buffer.from(new SharedArrayBuffer(READ_CHUNK))
          : Buffer.allocUnsafe(READ_CHUNK);
        const { bytesRead } = await fh.read(ring[slot], 0, READ_CHUNK, null);
        if (bytesRead === 0) break;
        const chunk = ring[slot].subarray(0, bytesRead);
        const both = Promise.all([hasher.submit(chunk), written(gunzip, chunk)]);
        both.catch(() => undefined); // observed when the slot is awaited
        busy[slot] = both;
      }
      await Promise.all(busy);
      gunzip.end();
    } catch (err) {
      gunzip.destroy(err as Error);
    } finally {
      await fh?.close();
    }
  })();
  const checker = new ManifestChecker({ hashEntries: opts.hashEntries });
  try {
    let manifestChecked = !opts.expectManifest;
    for await (const ev of readTar(gunzip, limits)) {
      checker.onEvent(ev);
      if (!manifestChecked && checker.manifestDigest) {
        // v2: the manifest binds everything after it; a different one ends the read.
        const want = opts.expectManifest!;
        const got = checker.manifestDigest;
        if (got.sha256 !== want.sha256 || got.size !== want.size)
          throw new SignatureError(
            'mismatch',
            `the signature is for another package (manifest sha256 ${want.sha256.slice(0, 16)}…), not this one (${got.sha256.slice(0, 16)}…)`,
          );
        manifestChecked = true;
      }
    }
    await feeding;
    const manifest = checker.finish();
    return {
      manifest,
      digest: await hasher.digest(),
      manifestDigest: checker.manifestDigest!,
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      const why = (err as Error).message;
      throw new Error(`${archivePath} is not a valid gzip file (${why})`, { cause: err });
    }
    throw err;
  } finally {
    gunzip.destroy();
    await feeding;
    await hasher.close();
  }
}

/**
 * Full verification. The signature is judged first: when the contents are
 * also bad, the caller hears that the package is not trusted (the more
 * fundamental problem) rather than details of an untrusted file.
 */
export async function verifyPackage(opts: VerifyOptions): Promise<VerifiedPackage> {
  const sigPath = opts.sigPath ?? `${opts.archivePath}.sig`;
  try {
    await stat(opts.archivePath);
  } catch (err) {
    throw new Error(`cannot read package ${opts.archivePath}`, { cause: err });
  }
  let sigBytes: Buffer;
  try {
    sigBytes = await readFile(sigPath);
  } catch (err) {
    throw new Error(`cannot read the signature ${sigPath}`, { cause: err });
  }
  const sig = parseSignatureFile(sigBytes, sigPath);
  if (opts.trustedKeys.length === 0)
    throw new Error('no trusted keys given; cannot verify the signature');

  if (sig.format === SIGNATURE_FORMAT_V2) {
    // The signer and both signatures are judged before a byte is inflated.
    const signer = checkSignatureClaims(sig, opts.trustedKeys);
    let contents: ContentsResult | undefined;
    let contentsError: unknown;
    try {
      contents = await streamContents(opts.archivePath, opts.limits ?? {}, {
        hashEntries: false,
        expectManifest: { sha256: sig.manifestSha256, size: sig.manifestSize },
      });
    } catch (err) {
      contentsError = err;
    }
    // The archive's bytes must be the signed ones (hashed in the same read;
    // re-hashed whole when the read stopped early, to say which problem it is).
    const digest = contents?.digest ?? (await hashFile(opts.archivePath));
    checkSignature(sig, digest, opts.trustedKeys);
    if (!contents) throw contentsRefused(opts.archivePath, signer, contentsError);
    return {
      manifest: contents.manifest,
      signer,
      digest,
      manifestDigest: contents.manifestDigest,
    };
  }

  let contents: ContentsResult | undefined;
  let contentsError: unknown;
  try {
    contents = await checkPackageContents(opts.archivePath, opts.limits);
  } catch (err) {
    contentsError = err;
  }
  // When the contents check stopped early the archive hash is incomplete:
  // hash the whole file for the signature verdict (error path only).
  const digest = contents?.digest ?? (await hashFile(opts.archivePath));
  const signer = checkSignature(sig, digest, opts.trustedKeys);
  if (!contents) throw contentsRefused(opts.archivePath, signer, contentsError);
  return {
    manifest: contents.manifest,
    signer,
    digest,
    manifestDigest: contents.manifestDigest,
  };
}

function contentsRefused(archivePath: string, signer: TrustedKey, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `package ${archivePath} is signed by ${signer.keyId} but its contents are refused: ${why}`,
    { cause: err },
  );
}
