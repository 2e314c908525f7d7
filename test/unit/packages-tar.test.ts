// The strict ustar reader and the writer: round trips (property-based) and a
// catalogue of hostile archives, each refused with its own code and message.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  BLOCK,
  readTar,
  type TarErrorCode,
  TarFormatError,
  type TarLimits,
  TarParser,
  type TarWriteEntry,
  writeTar,
} from '../../src/packages/tar.js';
import { END, padded, rawHeader } from '../support/raw-tar.js';

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of gen) parts.push(p);
  return Buffer.concat(parts);
}

interface ReadEntry {
  path: string;
  mode: number;
  data: Buffer;
}

/** Reads an archive fed in chunks of the given sizes (cycled). */
async function readAll(
  archive: Buffer,
  chunkSizes: number[] = [archive.length || 1],
  limits: Partial<TarLimits> = {},
): Promise<ReadEntry[]> {
  async function* chunks(): AsyncGenerator<Buffer> {
    let i = 0;
    for (let off = 0; off < archive.length; i++) {
      const n = Math.max(1, chunkSizes[i % chunkSizes.length]!);
      yield archive.subarray(off, off + n);
      off += n;
    }
  }
  const out: ReadEntry[] = [];
  let cur: { path: string; mode: number; parts: Buffer[] } | undefined;
  for await (const ev of readTar(chunks(), limits)) {
    if (ev.type === 'entry') cur = { path: ev.header.path, mode: ev.header.mode, parts: [] };
    else if (ev.type === 'data') cur!.parts.push(Buffer.from(ev.chunk));
    else out.push({ path: cur!.path, mode: cur!.mode, data: Buffer.concat(cur!.parts) });
  }
  return out;
}

async function refusal(archive: Buffer, limits: Partial<TarLimits> = {}): Promise<TarFormatError> {
  try {
    await readAll(archive, [archive.length || 1], limits);
  } catch (err) {
    if (err instanceof TarFormatError) return err;
    throw err;
  }
  throw new Error('the archive was accepted');
}

describe('tar writer and reader', () => {
  it('reads back what it writes, including long paths split into prefix and name', async () => {
    const long = `payload/${'d'.repeat(90)}/${'f'.repeat(90)}.txt`;
    const entries: TarWriteEntry[] = [
      { path: 'manifest.json', mode: 0o644, size: 2, content: Buffer.from('{}') },
      { path: 'payload/empty', mode: 0o600, size: 0, content: Buffer.alloc(0) },
      { path: long, mode: 0o755, size: 513, content: Buffer.alloc(513, 7) },
    ];
    const archive = await collect(writeTar(entries));
    expect(archive.length % BLOCK).toBe(0);
    const read = await readAll(archive, [1, 511, 7, 4096]);
    expect(read.map((e) => [e.path, e.mode, e.data.length])).toEqual([
      ['manifest.json', 0o644, 2],
      ['payload/empty', 0o600, 0],
      [long, 0o755, 513],
    ]);
    expect(read[2]!.data.equals(Buffer.alloc(513, 7))).toBe(true);
  });

  it('writes archives GNU tar lists and extracts identically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k-tar-'));
    try {
      const data = Buffer.from('hello tar\n');
      const archive = await collect(
        writeTar([{ path: 'payload/a.txt', mode: 0o640, size: data.length, content: data }]),
      );
      writeFileSync(join(dir, 'x.tar'), archive);
      const listing = execFileSync('tar', ['-tvf', join(dir, 'x.tar')], { encoding: 'utf8' });
      expect(listing).toMatch(/^-rw-r----- .* 10 .*payload\/a\.txt$/m);
      const content = execFileSync('tar', ['-xOf', join(dir, 'x.tar'), 'payload/a.txt']);
      expect(content.equals(data)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads archives made by GNU tar in ustar format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'k-tar-'));
    try {
      writeFileSync(join(dir, 'f.txt'), 'from gnu tar');
      execFileSync('tar', ['--format=ustar', '-cf', 'x.tar', 'f.txt'], { cwd: dir });
      const archive = execFileSync('cat', [join(dir, 'x.tar')]);
      const read = await readAll(archive);
      expect(read.map((e) => [e.path, e.data.toString()])).toEqual([['f.txt', 'from gnu tar']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to write a size that does not match the content', async () => {
    await expect(
      collect(writeTar([{ path: 'a', mode: 0o644, size: 5, content: Buffer.from('abc') }])),
    ).rejects.toThrow('declared 5 bytes, got 3');
    await expect(
      collect(writeTar([{ path: '../a', mode: 0o644, size: 0, content: Buffer.alloc(0) }])),
    ).rejects.toThrow('climbs out');
  });

  it('round-trips any set of safe entries, however the bytes are chunked (property)', async () => {
    const segment = fc
      .stringMatching(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}$/)
      .filter((s) => s !== '.');
    const entry = fc.record({
      path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((p) => p.join('/')),
      mode: fc.integer({ min: 0, max: 0o777 }),
      data: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 5 }),
        async (entries, chunkSizes) => {
          const archive = await collect(
            writeTar(
              entries.map((e) => ({
                path: e.path,
                mode: e.mode,
                size: e.data.length,
                content: e.data,
              })),
            ),
          );
          const read = await readAll(archive, chunkSizes);
          expect(read.map((e) => e.path)).toEqual(entries.map((e) => e.path));
          read.forEach((r, i) => {
            expect(r.mode).toBe(entries[i]!.mode);
            expect(r.data.equals(entries[i]!.data)).toBe(true);
          });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('the reader on corrupted input (property)', () => {
  it('either refuses with a TarFormatError or yields only safe regular files within limits', async () => {
    const base = await collect(
      writeTar([
        { path: 'manifest.json', mode: 0o644, size: 3, content: Buffer.from('{}\n') },
        { path: 'payload/app.jar', mode: 0o644, size: 1500, content: Buffer.alloc(1500, 9) },
        { path: 'migrations/001.sql', mode: 0o600, size: 10, content: Buffer.from('SELECT 1;\n') },
      ]),
    );
    const limits = { maxEntries: 5, maxEntrySize: 4096, maxTotalSize: 8192 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ at: fc.nat(base.length - 1), value: fc.integer({ min: 0, max: 255 }) }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.nat(base.length),
        async (edits, cut) => {
          const bytes = Buffer.from(base.subarray(0, Math.max(cut, base.length - 2048)));
          for (const e of edits) if (e.at < bytes.length) bytes[e.at] = e.value;
          try {
            const entries = await readAll(bytes, [700], limits);
            expect(entries.length).toBeLessThanOrEqual(limits.maxEntries);
            for (const e of entries) {
              expect(e.path).not.toMatch(/(^|\/)\.\.(\/|$)|^\//);
              expect(e.data.length).toBeLessThanOrEqual(limits.maxEntrySize);
            }
          } catch (err) {
            expect(err).toBeInstanceOf(TarFormatError);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('the reader refuses hostile archives', () => {
  type Case = [string, () => Buffer, TarErrorCode, RegExp, Partial<TarLimits>?];
  const cases: Case[] = [
    [
      'a ../ entry',
      () => Buffer.concat([rawHeader({ name: 'payload/../../etc/passwd' }), END]),
      'unsafe-path',
      /"payload\/\.\.\/\.\.\/etc\/passwd" is refused: the path climbs out with \.\./,
    ],
    [
      'a ../ hidden in the prefix field',
      () => Buffer.concat([rawHeader({ name: 'x', prefix: '..' }), END]),
      'unsafe-path',
      /"\.\.\/x" is refused: the path climbs out/,
    ],
    [
      'an absolute path',
      () => Buffer.concat([rawHeader({ name: '/etc/cron.d/evil' }), END]),
      'unsafe-path',
      /"\/etc\/cron\.d\/evil" is refused: the path is absolute/,
    ],
    [
      'a backslash path',
      () => Buffer.concat([rawHeader({ name: '..\\..\\evil' }), END]),
      'unsafe-path',
      /backslash/,
    ],
    [
      'an empty path',
      () => Buffer.concat([rawHeader({ name: '' }), END]),
      'unsafe-path',
      /the path is empty/,
    ],
    [
      'a symlink',
      () =>
        Buffer.concat([
          rawHeader({ name: 'payload/app.jar', type: '2', linkname: '/etc/shadow' }),
          END,
        ]),
      'symlink',
      /"payload\/app\.jar" is a symbolic link to "\/etc\/shadow"; only regular files are allowed/,
    ],
    [
      'a hardlink',
      () =>
        Buffer.concat([rawHeader({ name: 'payload/x', type: '1', linkname: '/etc/passwd' }), END]),
      'hardlink',
      /is a hard link to "\/etc\/passwd"/,
    ],
    [
      'a character device',
      () => Buffer.concat([rawHeader({ name: 'payload/null', type: '3' }), END]),
      'device',
      /is a character device/,
    ],
    [
      'a block device',
      () => Buffer.concat([rawHeader({ name: 'payload/sda', type: '4' }), END]),
      'device',
      /is a block device/,
    ],
    [
      'a FIFO',
      () => Buffer.concat([rawHeader({ name: 'payload/fifo', type: '6' }), END]),
      'unsupported-type',
      /is a FIFO/,
    ],
    [
      'a pax header (could rename the next entry)',
      () => Buffer.concat([rawHeader({ name: 'PaxHeaders/x', type: 'x' }), END]),
      'unsupported-type',
      /pax extended header/,
    ],
    [
      'a directory',
      () => Buffer.concat([rawHeader({ name: 'payload/', type: '5' }), END]),
      'unsupported-type',
      /is a directory/,
    ],
    [
      'a setuid file',
      () => Buffer.concat([rawHeader({ name: 'payload/su', mode: 0o4755 }), END]),
      'bad-mode',
      /mode 4755: setuid, setgid and sticky bits are refused/,
    ],
    [
      'a huge declared size',
      () => Buffer.concat([rawHeader({ name: 'payload/bomb', size: 0o77777777777 }), END]),
      'entry-too-large',
      /"payload\/bomb" declares 8589934591 bytes, more than the limit of 4294967296/,
    ],
    [
      'a base-256 size field',
      () =>
        Buffer.concat([
          rawHeader({ name: 'payload/b', sizeField: '\x80\0\0\0\0\0\0\0\0\0\x10\0' }),
          END,
        ]),
      'bad-header',
      /size uses base-256 encoding/,
    ],
    [
      'contents over the total limit',
      () =>
        Buffer.concat([
          rawHeader({ name: 'a', size: 600 }),
          padded(Buffer.alloc(600)),
          rawHeader({ name: 'b', size: 600 }),
          padded(Buffer.alloc(600)),
          END,
        ]),
      'archive-too-large',
      /exceed the limit of 1000 bytes at entry "b"/,
      { maxTotalSize: 1000 },
    ],
    [
      'too many entries',
      () =>
        Buffer.concat([...Array.from({ length: 4 }, (_, i) => rawHeader({ name: `f${i}` })), END]),
      'too-many-entries',
      /more than 3 entries/,
      { maxEntries: 3 },
    ],
    [
      'a duplicate path (a later entry would replace a checked one)',
      () => Buffer.concat([rawHeader({ name: 'a' }), rawHeader({ name: 'a' }), END]),
      'duplicate-path',
      /"a" appears twice/,
    ],
    [
      'an archive truncated inside an entry',
      () => Buffer.concat([rawHeader({ name: 'a', size: 1000 }), Buffer.alloc(700)]),
      'truncated',
      /truncated inside an entry \(300 bytes missing\)/,
    ],
    [
      'an archive without its end marker',
      () => Buffer.concat([rawHeader({ name: 'a', size: 3 }), padded(Buffer.from('abc'))]),
      'truncated',
      /no end-of-archive marker/,
    ],
    [
      'a header cut in half',
      () => rawHeader({ name: 'a' }).subarray(0, 300),
      'truncated',
      /no end-of-archive marker/,
    ],
    [
      'a bad checksum',
      () => Buffer.concat([rawHeader({ name: 'a', badChecksum: true }), END]),
      'bad-checksum',
      /entry 1 has a bad header checksum/,
    ],
    [
      'a GNU-format header',
      () => Buffer.concat([rawHeader({ name: 'a', magic: 'ustar ', version: ' \0' }), END]),
      'not-ustar',
      /entry 1 is not a POSIX ustar header/,
    ],
    ['random bytes', () => Buffer.alloc(2048, 0x41), 'not-ustar', /not a POSIX ustar header/],
    [
      'data hidden after the end marker',
      () => Buffer.concat([END, rawHeader({ name: 'hidden' })]),
      'trailing-data',
      /data after its end marker/,
    ],
  ];

  // Rest parameters: jest would take a fifth named parameter for `done`.
  it.each(cases)('%s', async (...[, make, code, message, limits]: Case) => {
    const err = await refusal(make(), limits);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it('refuses endless zero padding after the end marker', () => {
    const parser = new TarParser();
    parser.write(END);
    expect(() => parser.write(Buffer.alloc(128 * 1024))).toThrow(/too much padding/);
  });

  it('accepts the usual record padding after the end marker', async () => {
    const archive = Buffer.concat([rawHeader({ name: 'a' }), END, Buffer.alloc(9 * BLOCK)]);
    expect((await readAll(archive)).map((e) => e.path)).toEqual(['a']);
  });
});
