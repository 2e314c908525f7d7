// Verifies a package file: the detached signature against the trusted keys,
// then what the signature covers. One streaming read of the archive, never
// held in memory or extracted to disk: under a v2 signature it hashes every
// byte and inflates only the manifest; under a v1 signature it also feeds
// the decompressor and checks every entry against the manifest.
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { ManifestChecker } from './contents.js';
import { type FileDigest, hashFile, READ_CHUNK } from './hash.js';
import type { PackageManifest } from './manifest.js';
import { ManifestHeadReader, type ManifestHeadResult, written } from './manifest-head.js';
import { ParallelSha256 } from './parallel-hash.js';
import {
  checkSignature,
  checkSignatureClaims,
  MAX_SIGNATURE_BYTES,
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
  /**
   * Whether every entry was checked against the manifest in this pass (a v1
   * signature). Under a v2 signature only the manifest was read: the entries
   * are checked when the package is staged, or by checkPackageContents.
   */
  contentsChecked: boolean;
}

export interface ContentsResult {
  manifest: PackageManifest;
  digest: FileDigest;
  manifestDigest: FileDigest;
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
export async function checkPackageContents(
  archivePath: string,
  limits: Partial<TarLimits> = {},
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
  const checker = new ManifestChecker();
  try {
    for await (const ev of readTar(gunzip, limits)) checker.onEvent(ev);
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
 * The archive read once, for a v2 signature: every byte is hashed (node's
 * crypto is OpenSSL's SHA-256) and only the leading bytes that hold the
 * manifest are inflated. Two reused read buffers: the next read runs while
 * the current chunk is hashed. Nothing else is done per byte, so this runs at
 * about `openssl dgst -sha256` speed; the entries themselves are covered by
 * the signer's attestation and re-checked in full by staging.
 */
async function hashWithManifest(
  archivePath: string,
  limits: Partial<TarLimits>,
): Promise<{ digest: FileDigest; head: ManifestHeadResult | undefined; headError: unknown }> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(archivePath, 'r');
  } catch (err) {
    throw new Error(`cannot read package ${archivePath}`, { cause: err });
  }
  const hash = createHash('sha256');
  const head = new ManifestHeadReader(limits);
  const buffers = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
  let size = 0;
  let pending: Promise<{ bytesRead: number }> | undefined;
  try {
    pending = fh.read(buffers[0]!, 0, READ_CHUNK, 0);
    for (let i = 0; ; i++) {
      const { bytesRead } = await pending;
      pending = undefined;
      if (bytesRead === 0) break;
      const chunk = buffers[i % 2]!.subarray(0, bytesRead);
      size += bytesRead;
      pending = fh.read(buffers[(i + 1) % 2]!, 0, READ_CHUNK, size);
      // Hash first, then inflate the same bytes: the manifest judged is the
      // one inside the hashed archive even if the file changes meanwhile.
      hash.update(chunk);
      if (!head.done) await head.feed(chunk);
    }
  } catch (err) {
    head.close();
    throw err;
  } finally {
    await pending?.catch(() => undefined);
    await fh.close();
  }
  const digest = { sha256: hash.digest('hex'), size };
  try {
    return { digest, head: await head.finish(), headError: undefined };
  } catch (err) {
    return { digest, head: undefined, headError: err };
  }
}

/**
 * Full verification. The signature is judged first: when the contents are
 * also bad, the caller hears that the package is not trusted (the more
 * fundamental problem) rather than details of an untrusted file.
 *
 * v2 signatures (what `package sign` writes): the ed25519 checks, then one
 * pass that hashes the archive and reads its manifest (hashWithManifest).
 * The archive must hash to the signed digest, its manifest to the signed
 * manifest digest. Entries are not inflated here: the signer attested they
 * match the manifest, and stagePackage re-reads and re-hashes every one.
 *
 * v1 signatures (older packages): one pass that hashes the archive and
 * checks every entry against the manifest (slower: it inflates everything).
 */
/**
 * A signature file's bytes, at most one byte past the limit (so a larger one
 * is refused by parseSignatureFile without being read to its end). Only a
 * regular file: a FIFO or a device could be read until memory runs out, and
 * it is opened without blocking so a FIFO nobody writes cannot hang us.
 */
export async function readSignatureBytes(sigPath: string): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(sigPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new Error(`cannot read the signature ${sigPath}`, { cause: err });
  }
  try {
    if (!(await fh.stat()).isFile())
      throw new SignatureError('malformed', `signature ${sigPath} is not a regular file`);
    const buf = Buffer.alloc(MAX_SIGNATURE_BYTES + 1);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

export async function verifyPackage(opts: VerifyOptions): Promise<VerifiedPackage> {
  const sigPath = opts.sigPath ?? `${opts.archivePath}.sig`;
  try {
    await stat(opts.archivePath);
  } catch (err) {
    throw new Error(`cannot read package ${opts.archivePath}`, { cause: err });
  }
  const sigBytes = await readSignatureBytes(sigPath);
  const sig = parseSignatureFile(sigBytes, sigPath);
  if (opts.trustedKeys.length === 0)
    throw new Error('no trusted keys given; cannot verify the signature');

  if (sig.format === SIGNATURE_FORMAT_V2) {
    // The signer and both signatures are judged before a byte is read.
    const signer = checkSignatureClaims(sig, opts.trustedKeys);
    const { digest, head, headError } = await hashWithManifest(opts.archivePath, opts.limits ?? {});
    // Every byte of the archive must be the signed one.
    checkSignature(sig, digest, opts.trustedKeys);
    if (!head) throw contentsRefused(opts.archivePath, signer, headError);
    const want = { sha256: sig.manifestSha256, size: sig.manifestSize };
    const got = head.manifestDigest;
    if (got.sha256 !== want.sha256 || got.size !== want.size)
      // Only a signer that signed a wrong manifest digest gets here.
      throw contentsRefused(
        opts.archivePath,
        signer,
        new SignatureError(
          'mismatch',
          `the signature is for another package (manifest sha256 ${want.sha256.slice(0, 16)}…, ${want.size} bytes), not this one (${got.sha256.slice(0, 16)}…, ${got.size} bytes)`,
        ),
      );
    return { manifest: head.manifest, signer, digest, manifestDigest: got, contentsChecked: false };
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
    contentsChecked: true,
  };
}

function contentsRefused(archivePath: string, signer: TrustedKey, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `package ${archivePath} is signed by ${signer.keyId} but its contents are refused: ${why}`,
    { cause: err },
  );
}
