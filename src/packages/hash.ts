// SHA-256 of files and streams with large reads: Node's hash only reaches
// `openssl dgst -sha256` speed when fed 1 MiB and more at a time.
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';

export const READ_CHUNK = 4 * 1024 * 1024;

export interface FileDigest {
  sha256: string;
  size: number;
}

/**
 * Reads a file once in large chunks, handing each chunk to `onChunk` (which
 * must finish with it synchronously: the buffer is reused) while hashing it.
 */
export async function hashFile(
  path: string,
  onChunk?: (chunk: Buffer) => void,
): Promise<FileDigest> {
  const hash: Hash = createHash('sha256');
  const fh = await open(path, 'r');
  let size = 0;
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      onChunk?.(chunk);
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Yields a file's bytes in fresh large chunks (safe to keep or pass on).
 * `shared` puts them in SharedArrayBuffers, which a worker thread can read
 * without a copy.
 */
export async function* readFileChunks(
  path: string,
  chunkSize = READ_CHUNK,
  shared = false,
): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    for (;;) {
      const buf = shared
        ? Buffer.from(new SharedArrayBuffer(chunkSize))
        : Buffer.allocUnsafe(chunkSize);
      const { bytesRead } = await fh.read(buf, 0, chunkSize, null);
      if (bytesRead === 0) return;
      yield bytesRead === chunkSize ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** A migration's checksum, as the ledger records it (sha256 of its UTF-8 text). */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}
