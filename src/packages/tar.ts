// A minimal POSIX ustar writer and a strict, streaming ustar reader.
//
// Why not a dependency: packages arrive from outside (CLI, REST upload) and
// the reader is the first thing that touches their bytes, so it must refuse
// everything we do not write ourselves instead of "supporting" it: only
// regular files, only relative paths without `.`/`..`/empty components, no
// links, no devices, no pax/GNU extension headers, bounded entry count and
// sizes, checksums checked, truncation detected. The reader is a pure,
// synchronous state machine (`TarParser`) fed with chunks; `readTar` wraps it
// as an async generator so callers (verification now, safe extraction later)
// keep backpressure and never buffer a whole entry.

export const BLOCK = 512;

export interface TarLimits {
  /** Most entries an archive may hold. */
  maxEntries: number;
  /** Largest single entry, in bytes. */
  maxEntrySize: number;
  /** Largest sum of entry sizes, in bytes. */
  maxTotalSize: number;
  /** Longest path, in bytes. */
  maxPathLength: number;
}

export const DEFAULT_TAR_LIMITS: TarLimits = {
  maxEntries: 1000,
  maxEntrySize: 4 * 1024 ** 3,
  maxTotalSize: 8 * 1024 ** 3,
  maxPathLength: 255,
};

/** Zero blocks tolerated after the end-of-archive marker (tar pads to records). */
const MAX_TRAILING_ZERO_BYTES = 64 * 1024;

export interface TarEntryHeader {
  path: string;
  /** Permission bits only (0o777); setuid/setgid/sticky are refused. */
  mode: number;
  size: number;
  mtime: number;
}

export type TarEvent =
  | { type: 'entry'; header: TarEntryHeader }
  | { type: 'data'; chunk: Buffer }
  | { type: 'entry-end' };

/** A refusal by the reader: `code` is stable, the message says which entry and why. */
export class TarFormatError extends Error {
  constructor(
    readonly code: TarErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TarFormatError';
  }
}

export type TarErrorCode =
  | 'bad-header'
  | 'bad-checksum'
  | 'not-ustar'
  | 'unsafe-path'
  | 'duplicate-path'
  | 'symlink'
  | 'hardlink'
  | 'device'
  | 'unsupported-type'
  | 'bad-mode'
  | 'too-many-entries'
  | 'entry-too-large'
  | 'archive-too-large'
  | 'truncated'
  | 'trailing-data';

// ---------------------------------------------------------------- paths

/**
 * Why a path may not appear in an archive, or undefined when it is safe.
 * Safe: relative, `/`-separated, no empty, `.` or `..` component, printable
 * ASCII without backslashes (a backslash is a separator on some systems).
 */
export function unsafePathReason(path: string, maxLength: number): string | undefined {
  if (path.length === 0) return 'the path is empty';
  if (Buffer.byteLength(path) > maxLength) return `the path is longer than ${maxLength} bytes`;
  if (path.startsWith('/')) return 'the path is absolute';
  if (!/^[\x21-\x7e]+$/.test(path)) return 'the path has spaces, control or non-ASCII characters';
  if (path.includes('\\')) return 'the path has a backslash';
  for (const part of path.split('/')) {
    if (part === '..') return 'the path climbs out with ..';
    if (part === '.' || part === '') return 'the path has an empty or . component';
  }
  return undefined;
}

// ---------------------------------------------------------------- writer

export interface TarWriteEntry {
  path: string;
  mode: number;
  size: number;
  /** Seconds since the epoch; 0 keeps archives reproducible. */
  mtime?: number;
  /** The contents, in order; their lengths must add up to `size`. */
  content: Buffer | AsyncIterable<Buffer> | Iterable<Buffer>;
}

function writeString(buf: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar header field too long: ${value}`);
  bytes.copy(buf, offset);
}

function writeOctal(buf: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits, NUL terminated (the classic ustar encoding).
  const digits = value.toString(8);
  if (digits.length > length - 1)
    throw new Error(`value ${value} does not fit a ${length}-byte tar field`);
  writeString(buf, offset, length, `${digits.padStart(length - 1, '0')}\0`);
}

/** Splits a path into ustar (prefix, name) or throws when it cannot fit. */
function splitUstarPath(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`path too long for a ustar header: ${path}`);
}

export function encodeHeader(entry: Omit<TarWriteEntry, 'content'>): Buffer {
  const reason = unsafePathReason(entry.path, DEFAULT_TAR_LIMITS.maxPathLength);
  if (reason) throw new Error(`cannot write tar entry ${JSON.stringify(entry.path)}: ${reason}`);
  if ((entry.mode & ~0o777) !== 0) throw new Error(`tar entry ${entry.path}: mode must be 0..0777`);
  const h = Buffer.alloc(BLOCK);
  const [prefix, name] = splitUstarPath(entry.path);
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, entry.mode);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, entry.size);
  writeOctal(h, 136, 12, entry.mtime ?? 0);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  h[156] = 0x30; // '0': regular file
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 345, 155, prefix);
  writeString(h, 148, 8, `${checksum(h).toString(8).padStart(6, '0')}\0 `);
  return h;
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum;
}

/**
 * Yields the archive's bytes entry by entry (header, contents, padding) and
 * the end-of-archive marker. Refuses sizes that do not match what was declared.
 */
export async function* writeTar(
  entries: Iterable<TarWriteEntry> | AsyncIterable<TarWriteEntry>,
): AsyncGenerator<Buffer> {
  const seen = new Set<string>();
  for await (const entry of entries) {
    if (seen.has(entry.path)) throw new Error(`duplicate tar entry ${entry.path}`);
    seen.add(entry.path);
    yield encodeHeader(entry);
    let written = 0;
    const parts = Buffer.isBuffer(entry.content) ? [entry.content] : entry.content;
    for await (const part of parts) {
      written += part.length;
      if (written > entry.size) break;
      yield part;
    }
    if (written !== entry.size) {
      throw new Error(`tar entry ${entry.path}: declared ${entry.size} bytes, got ${written}`);
    }
    const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(2 * BLOCK);
}

// ---------------------------------------------------------------- reader

function readString(buf: Buffer, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? length : nul).toString('latin1');
}

/** Parses an octal numeric field strictly: digits, then NUL/space padding only. */
function readOctal(buf: Buffer, offset: number, length: number, field: string): number {
  const raw = buf.subarray(offset, offset + length);
  if (raw[0] !== undefined && raw[0] & 0x80) {
    throw new TarFormatError('bad-header', `tar header ${field} uses base-256 encoding, not ustar`);
  }
  const text = raw
    .toString('latin1')
    .replace(/^[ ]+/, '')
    .replace(/[\0 ]+$/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new TarFormatError('bad-header', `tar header ${field} is not an octal number`);
  }
  return Number.parseInt(text, 8);
}

const TYPE_NAMES: Record<string, [TarErrorCode, string]> = {
  '1': ['hardlink', 'a hard link'],
  '2': ['symlink', 'a symbolic link'],
  '3': ['device', 'a character device'],
  '4': ['device', 'a block device'],
  '5': ['unsupported-type', 'a directory'],
  '6': ['unsupported-type', 'a FIFO'],
  '7': ['unsupported-type', 'a contiguous file'],
  x: ['unsupported-type', 'a pax extended header'],
  g: ['unsupported-type', 'a pax global header'],
  L: ['unsupported-type', 'a GNU long-name header'],
  K: ['unsupported-type', 'a GNU long-link header'],
};

type ParserState =
  | { kind: 'header' }
  | { kind: 'body'; remaining: number; padding: number }
  | { kind: 'padding'; remaining: number }
  | { kind: 'end'; trailing: number };

/**
 * The strict reader as a pure state machine: `write(chunk)` returns the events
 * that chunk completes, `end()` checks the archive was complete. Any refusal
 * throws a TarFormatError and the parser must not be used afterwards.
 */
export class TarParser {
  private state: ParserState = { kind: 'header' };
  private pending: Buffer = Buffer.alloc(0);
  private entries = 0;
  private total = 0;
  private zeroBlocks = 0;
  private readonly paths = new Set<string>();
  private readonly limits: TarLimits;

  constructor(limits: Partial<TarLimits> = {}) {
    this.limits = { ...DEFAULT_TAR_LIMITS, ...limits };
  }

  write(input: Buffer): TarEvent[] {
    const events: TarEvent[] = [];
    let chunk = input;
    while (chunk.length > 0) {
      const s = this.state;
      if (s.kind === 'body') {
        const take = Math.min(s.remaining, chunk.length);
        // Data is passed through without copying: the consumer hashes or writes it.
        if (take > 0) events.push({ type: 'data', chunk: chunk.subarray(0, take) });
        chunk = chunk.subarray(take);
        s.remaining -= take;
        if (s.remaining === 0) {
          events.push({ type: 'entry-end' });
          this.state =
            s.padding > 0 ? { kind: 'padding', remaining: s.padding } : { kind: 'header' };
        }
        continue;
      }
      if (s.kind === 'padding') {
        const take = Math.min(s.remaining, chunk.length);
        chunk = chunk.subarray(take);
        s.remaining -= take;
        if (s.remaining === 0) this.state = { kind: 'header' };
        continue;
      }
      if (s.kind === 'end') {
        if (chunk.some((b) => b !== 0)) {
          throw new TarFormatError('trailing-data', 'tar archive has data after its end marker');
        }
        s.trailing += chunk.length;
        if (s.trailing > MAX_TRAILING_ZERO_BYTES) {
          throw new TarFormatError(
            'trailing-data',
            'tar archive has too much padding after its end marker',
          );
        }
        chunk = chunk.subarray(chunk.length);
        continue;
      }
      // header: collect exactly one block, possibly across chunks
      const need = BLOCK - this.pending.length;
      if (this.pending.length === 0 && chunk.length >= BLOCK) {
        this.onHeaderBlock(chunk.subarray(0, BLOCK), events);
        chunk = chunk.subarray(BLOCK);
      } else {
        const take = Math.min(need, chunk.length);
        this.pending = Buffer.concat([this.pending, chunk.subarray(0, take)]);
        chunk = chunk.subarray(take);
        if (this.pending.length === BLOCK) {
          const block = this.pending;
          this.pending = Buffer.alloc(0);
          this.onHeaderBlock(block, events);
        }
      }
    }
    return events;
  }

  /** Call when the input is exhausted: refuses archives cut short. */
  end(): void {
    const s = this.state;
    if (s.kind === 'end') return;
    if (s.kind === 'body') {
      throw new TarFormatError(
        'truncated',
        `tar archive is truncated inside an entry (${s.remaining} bytes missing)`,
      );
    }
    throw new TarFormatError('truncated', 'tar archive is truncated: no end-of-archive marker');
  }

  private onHeaderBlock(block: Buffer, events: TarEvent[]): void {
    if (isZero(block)) {
      this.zeroBlocks += 1;
      if (this.zeroBlocks === 2) this.state = { kind: 'end', trailing: 0 };
      return;
    }
    if (this.zeroBlocks > 0) {
      throw new TarFormatError('bad-header', 'tar archive has a lone zero block between entries');
    }
    const header = this.parseHeader(block);
    events.push({ type: 'entry', header });
    const padding = (BLOCK - (header.size % BLOCK)) % BLOCK;
    if (header.size === 0) {
      events.push({ type: 'entry-end' });
      this.state = { kind: 'header' };
    } else {
      this.state = { kind: 'body', remaining: header.size, padding };
    }
  }

  private parseHeader(block: Buffer): TarEntryHeader {
    const n = this.entries + 1;
    if (
      readString(block, 257, 6) !== 'ustar' ||
      block[262] !== 0 ||
      readString(block, 263, 2) !== '00'
    ) {
      throw new TarFormatError('not-ustar', `tar entry ${n} is not a POSIX ustar header`);
    }
    const stored = readOctal(block, 148, 8, 'checksum');
    if (stored !== checksum(block)) {
      throw new TarFormatError('bad-checksum', `tar entry ${n} has a bad header checksum`);
    }
    const name = readString(block, 0, 100);
    const prefix = readString(block, 345, 155);
    const path = prefix ? `${prefix}/${name}` : name;
    const shown = JSON.stringify(path);
    const type = String.fromCharCode(block[156]!);
    if (type !== '0' && type !== '\0') {
      const known = TYPE_NAMES[type];
      const [code, what] =
        known ?? (['unsupported-type', `an entry of type ${JSON.stringify(type)}`] as const);
      const target =
        code === 'symlink' || code === 'hardlink'
          ? ` to ${JSON.stringify(readString(block, 157, 100))}`
          : '';
      throw new TarFormatError(
        code,
        `tar entry ${shown} is ${what}${target}; only regular files are allowed`,
      );
    }
    const unsafe = unsafePathReason(path, this.limits.maxPathLength);
    if (unsafe) throw new TarFormatError('unsafe-path', `tar entry ${shown} is refused: ${unsafe}`);
    if (this.paths.has(path)) {
      throw new TarFormatError('duplicate-path', `tar entry ${shown} appears twice`);
    }
    const mode = readOctal(block, 100, 8, 'mode');
    if ((mode & ~0o777) !== 0) {
      throw new TarFormatError(
        'bad-mode',
        `tar entry ${shown} has mode ${mode.toString(8)}: setuid, setgid and sticky bits are refused`,
      );
    }
    const size = readOctal(block, 124, 12, 'size');
    if (size > this.limits.maxEntrySize) {
      throw new TarFormatError(
        'entry-too-large',
        `tar entry ${shown} declares ${size} bytes, more than the limit of ${this.limits.maxEntrySize}`,
      );
    }
    if (this.entries + 1 > this.limits.maxEntries) {
      throw new TarFormatError(
        'too-many-entries',
        `tar archive has more than ${this.limits.maxEntries} entries`,
      );
    }
    if (this.total + size > this.limits.maxTotalSize) {
      throw new TarFormatError(
        'archive-too-large',
        `tar archive contents exceed the limit of ${this.limits.maxTotalSize} bytes at entry ${shown}`,
      );
    }
    this.entries += 1;
    this.total += size;
    this.paths.add(path);
    return { path, mode, size, mtime: readOctal(block, 136, 12, 'mtime') };
  }
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Streams events from an archive's (already decompressed) bytes. */
export async function* readTar(
  source: AsyncIterable<Buffer>,
  limits: Partial<TarLimits> = {},
): AsyncGenerator<TarEvent> {
  const parser = new TarParser(limits);
  for await (const chunk of source) {
    for (const ev of parser.write(chunk)) yield ev;
  }
  parser.end();
}
