// Reads a package's manifest from the start of its archive without inflating
// the rest: the caller feeds the archive's leading chunks (the same bytes it
// hashes for the signature) and stops as soon as `done` is true. The first
// entry goes through the strict tar reader and the manifest checker's rules
// (it must be manifest.json, at most 1 MiB, a valid manifest); nothing after
// it is decompressed, so a gzip bomb behind the manifest costs nothing here.
import type { Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ManifestChecker, PackageContentError } from './contents.js';
import type { FileDigest } from './hash.js';
import type { PackageManifest } from './manifest.js';
import { type TarLimits, TarParser } from './tar.js';

/**
 * Compressed bytes handed to the decompressor at a time: small, so inflating
 * stops soon after the manifest (a few hundred bytes into the archive).
 */
const FEED_SLICE = 16 * 1024;

export interface ManifestHeadResult {
  manifest: PackageManifest;
  /** SHA-256 and size of the manifest entry's bytes (what a v2 signature signs). */
  manifestDigest: FileDigest;
}

/** Resolves when the stream has consumed the chunk, or was destroyed. */
export function written(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('close', done);
      resolve();
    };
    stream.on('close', done);
    stream.write(chunk, done);
  });
}

export class ManifestHeadReader {
  private readonly gunzip = createGunzip({ chunkSize: 64 * 1024 });
  private readonly parser: TarParser;
  private readonly checker = new ManifestChecker();
  private result: ManifestHeadResult | undefined;
  private failure: unknown;
  private ended = false;

  constructor(limits: Partial<TarLimits> = {}) {
    this.parser = new TarParser(limits);
    this.gunzip.on('data', (out: Buffer) => this.onOutput(out));
    this.gunzip.on('error', (err) => this.fail(err));
  }

  /** True once the manifest was read or refused: feed no more. */
  get done(): boolean {
    return this.result !== undefined || this.failure !== undefined;
  }

  /**
   * Decompresses a leading chunk of the archive, in small slices, until the
   * manifest is complete. Resolves when the decompressor no longer needs the
   * chunk's memory (the caller reuses its read buffers).
   */
  async feed(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length && !this.done; off += FEED_SLICE)
      await written(this.gunzip, chunk.subarray(off, off + FEED_SLICE));
  }

  /** Call after the last chunk: the manifest, or why there is none. */
  async finish(): Promise<ManifestHeadResult> {
    if (!this.done && !this.ended) {
      this.ended = true;
      // (a destroyed stream emits nothing more: never wait on one)
      if (!this.gunzip.destroyed)
        await new Promise<void>((resolve) => {
          this.gunzip.once('end', resolve);
          this.gunzip.once('close', resolve);
          this.gunzip.end();
        });
      if (!this.done) {
        // The archive ended before its first entry did.
        try {
          this.parser.end();
          this.checker.finish();
          throw new PackageContentError('the package has no manifest.json');
        } catch (err) {
          this.fail(err);
        }
      }
    }
    this.close();
    if (this.result) return this.result;
    throw this.failure;
  }

  /** Stops decompressing (also on the caller's error paths). */
  close(): void {
    this.gunzip.destroy();
  }

  private onOutput(out: Buffer): void {
    if (this.done) return;
    try {
      for (const ev of this.parser.write(out)) {
        this.checker.onEvent(ev);
        if (ev.type === 'entry-end') {
          // The first entry is complete: the checker has parsed the manifest.
          this.result = {
            manifest: this.checker.result!,
            manifestDigest: this.checker.manifestDigest!,
          };
          this.close();
          return;
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    if (this.done) return;
    const code = (err as NodeJS.ErrnoException).code;
    this.failure =
      typeof code === 'string' && code.startsWith('Z_')
        ? new Error(`the package is not a valid gzip file (${(err as Error).message})`, {
            cause: err,
          })
        : err;
    this.close();
  }
}
