// Hand-made ustar pieces for hostile archives: headers with arbitrary fields,
// bypassing the writer's checks, so the reader's refusals can be tested.
import { BLOCK } from '../../src/packages/tar.js';

export interface RawHeaderFields {
  name: string;
  /** The type flag; '0' (a regular file) unless given. */
  type?: string;
  size?: number;
  /** The size field's twelve bytes as written, for malformed sizes. */
  sizeField?: string;
  mode?: number;
  linkname?: string;
  prefix?: string;
  magic?: string;
  version?: string;
  /** Writes a checksum one off from the right one. */
  badChecksum?: boolean;
}

/** A header with arbitrary fields and (unless told otherwise) a valid checksum. */
export function rawHeader(f: RawHeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(f.name, 0, 100, 'latin1');
  h.write(`${(f.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write(f.sizeField ?? `${(f.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(f.type ?? '0', 156, 'latin1');
  h.write(f.linkname ?? '', 157, 100, 'latin1');
  h.write(f.magic ?? 'ustar\0', 257, 'latin1');
  h.write(f.version ?? '00', 263, 'latin1');
  h.write(f.prefix ?? '', 345, 155, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (f.badChecksum) sum += 1;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** An entry's data padded with zeros to whole blocks. */
export function padded(data: Buffer): Buffer {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** The two zero blocks that end an archive. */
export const END = Buffer.alloc(2 * BLOCK);
