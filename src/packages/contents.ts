// Checks an archive's entries against its manifest as they stream past:
// the manifest must come first, every later entry must be listed with the
// same size, mode and SHA-256, nothing unlisted may appear and nothing listed
// may be missing. Pure: fed with reader events, no I/O, so verification and
// (later) safe extraction share exactly the same rules.
import { createHash, type Hash } from 'node:crypto';
import {
  MANIFEST_PATH,
  MAX_MANIFEST_BYTES,
  type ManifestFile,
  type PackageManifest,
  parseManifestBytes,
} from './manifest.js';
import type { TarEvent } from './tar.js';

export class PackageContentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PackageContentError';
  }
}

type Current =
  | { kind: 'manifest'; parts: Buffer[]; size: number }
  | { kind: 'file'; file: ManifestFile; hash: Hash }
  | undefined;

export class ManifestChecker {
  private manifest: PackageManifest | undefined;
  /** SHA-256 and size of the manifest entry's bytes (what a v2 signature signs). */
  manifestDigest: { sha256: string; size: number } | undefined;
  private listed = new Map<string, ManifestFile>();
  private seen = new Set<string>();
  private current: Current;
  private entries = 0;

  /** The manifest, once its entry has been read and checked. */
  get result(): PackageManifest | undefined {
    return this.manifest;
  }

  onEvent(ev: TarEvent): void {
    if (ev.type === 'entry') this.onEntry(ev.header.path, ev.header.size, ev.header.mode);
    else if (ev.type === 'data') this.onData(ev.chunk);
    else this.onEntryEnd();
  }

  private onEntry(path: string, size: number, mode: number): void {
    this.entries += 1;
    if (this.entries === 1) {
      if (path !== MANIFEST_PATH) {
        throw new PackageContentError(
          `the package's first entry is ${path}; it must be ${MANIFEST_PATH}`,
        );
      }
      if (size > MAX_MANIFEST_BYTES) {
        throw new PackageContentError(
          `${MANIFEST_PATH} is ${size} bytes, more than ${MAX_MANIFEST_BYTES}`,
        );
      }
      this.current = { kind: 'manifest', parts: [], size: 0 };
      return;
    }
    const file = this.listed.get(path);
    if (!file) {
      throw new PackageContentError(`${path} is in the archive but not listed in the manifest`);
    }
    if (file.size !== size) {
      throw new PackageContentError(`${path} is ${size} bytes; the manifest says ${file.size}`);
    }
    if (file.mode !== mode) {
      throw new PackageContentError(
        `${path} has mode ${mode.toString(8)}; the manifest says ${file.mode.toString(8)}`,
      );
    }
    this.current = { kind: 'file', file, hash: createHash('sha256') };
  }

  private onData(chunk: Buffer): void {
    const cur = this.current;
    if (cur?.kind === 'file') cur.hash.update(chunk);
    else if (cur?.kind === 'manifest') {
      // copy: reader chunks may be views of a buffer that gets reused
      cur.parts.push(Buffer.from(chunk));
      cur.size += chunk.length;
    }
  }

  private onEntryEnd(): void {
    const cur = this.current;
    this.current = undefined;
    if (cur?.kind === 'manifest') {
      const bytes = Buffer.concat(cur.parts, cur.size);
      this.manifestDigest = {
        sha256: createHash('sha256').update(bytes).digest('hex'),
        size: bytes.length,
      };
      try {
        this.manifest = parseManifestBytes(bytes);
      } catch (err) {
        throw new PackageContentError((err as Error).message, { cause: err });
      }
      for (const f of this.manifest.files) this.listed.set(f.path, f);
      return;
    }
    if (cur?.kind === 'file') {
      const actual = cur.hash.digest('hex');
      if (actual !== cur.file.sha256) {
        throw new PackageContentError(
          `${cur.file.path} has sha256 ${actual}; the manifest says ${cur.file.sha256}`,
        );
      }
      this.seen.add(cur.file.path);
    }
  }

  /** Call after the reader ended cleanly; returns the checked manifest. */
  finish(): PackageManifest {
    if (!this.manifest) throw new PackageContentError(`the package has no ${MANIFEST_PATH}`);
    const missing = [...this.listed.keys()].filter((p) => !this.seen.has(p));
    if (missing.length > 0) {
      throw new PackageContentError(
        `the manifest lists files the archive lacks: ${missing.join(', ')}`,
      );
    }
    return this.manifest;
  }
}
