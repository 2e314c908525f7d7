// SHA-256 on a worker thread, fed the very chunks the caller reads.
//
// Verification hashes the archive (for the signature) and, after
// decompression, every file in it (for the manifest): two SHA-256 passes over
// the same amount of data. On one thread that halves throughput; here the
// archive hash runs on a second core while the main thread inflates and
// hashes entries. The chunks are copied to the worker rather than re-read
// from disk, so both checks judge exactly the same bytes even if the file is
// replaced while it is being verified.
import { Worker } from 'node:worker_threads';
import type { FileDigest } from './hash.js';

// Plain script (eval'd worker): no module resolution, nothing to ship beside dist/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
let size = 0;
parentPort.on('message', (msg) => {
  if (msg === 'end') {
    parentPort.postMessage({ sha256: hash.digest('hex'), size });
    parentPort.close();
    return;
  }
  const chunk = new Uint8Array(msg.buffer, msg.offset, msg.length);
  hash.update(chunk);
  size += msg.length;
  parentPort.postMessage('ack');
});
`;

/** Chunks in flight to the worker before the reader waits: bounds memory (~32 MiB at 4 MiB reads). */
const MAX_IN_FLIGHT = 8;

export class ParallelSha256 {
  private readonly worker = new Worker(WORKER_SOURCE, { eval: true });
  private inFlight = 0;
  private wake: (() => void) | undefined;
  /** Resolvers of submit() promises, in the order the worker acknowledges. */
  private readonly acks: (() => void)[] = [];
  private failure: Error | undefined;
  private readonly result: Promise<FileDigest>;

  constructor() {
    this.result = new Promise<FileDigest>((resolve, reject) => {
      this.worker.on('message', (msg: 'ack' | FileDigest) => {
        if (msg === 'ack') {
          this.inFlight -= 1;
          this.acks.shift()?.();
          this.wake?.();
          this.wake = undefined;
        } else resolve(msg);
      });
      this.worker.on('error', (err) => {
        this.failure = err;
        this.wake?.();
        for (const a of this.acks.splice(0)) a();
        reject(err);
      });
      this.worker.on('exit', () => reject(new Error('the hashing worker stopped early')));
    });
    this.result.catch(() => {}); // observed via digest()
  }

  /**
   * Hands the chunk to the worker: shared memory is passed as is (the caller
   * must not change it afterwards), anything else is copied. Waits when too
   * many chunks are still being hashed.
   */
  async update(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.inFlight += 1;
    if (chunk.buffer instanceof SharedArrayBuffer) {
      this.worker.postMessage({
        buffer: chunk.buffer,
        offset: chunk.byteOffset,
        length: chunk.length,
      });
    } else {
      const copy = new Uint8Array(chunk.length);
      copy.set(chunk);
      this.worker.postMessage({ buffer: copy.buffer, offset: 0, length: copy.length }, [
        copy.buffer,
      ]);
    }
    while (this.inFlight >= MAX_IN_FLIGHT && !this.failure) {
      await new Promise<void>((r) => {
        this.wake = r;
      });
    }
  }

  /**
   * Hands a chunk in shared memory to the worker without waiting; resolves
   * once the worker has hashed it (the caller may then reuse the memory).
   * The caller bounds how many chunks are in flight (verify.ts: a ring).
   */
  submit(chunk: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (!(chunk.buffer instanceof SharedArrayBuffer))
      throw new Error('submit() takes chunks in shared memory');
    this.inFlight += 1;
    const done = new Promise<void>((r) => this.acks.push(r));
    this.worker.postMessage({
      buffer: chunk.buffer,
      offset: chunk.byteOffset,
      length: chunk.length,
    });
    return done;
  }

  digest(): Promise<FileDigest> {
    this.worker.postMessage('end');
    return this.result;
  }

  /** Stops the worker (after digest(), or to abandon the hash). */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
