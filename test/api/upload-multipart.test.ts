// The strict multipart reader, fed the same body in arbitrary chunk splits:
// the parts and their bytes never depend on where the chunks end (the
// delimiter may be split anywhere, and part data may hold near-delimiters).
import fc from 'fast-check';
import { PackageRejected } from '../../src/api/package-errors.js';
import { MultipartParser, multipartBoundary } from '../../src/api/package-multipart.js';

const BOUNDARY = 'b0undary-XYZ';

interface Part {
  name: string;
  filename?: string;
  data: Buffer;
}

function encode(parts: Part[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    const fn = p.filename !== undefined ? `; filename="${p.filename}"` : '';
    out.push(
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"${fn}\r\n\r\n`),
      p.data,
      Buffer.from('\r\n'),
    );
  }
  out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}

function parse(body: Buffer, cuts: number[]): Part[] {
  const parser = new MultipartParser(BOUNDARY);
  const parts: Part[] = [];
  let cur: { name: string; filename?: string; chunks: Buffer[] } | undefined;
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  let prev = 0;
  for (const at of [...points, body.length]) {
    if (at <= prev && at !== body.length) continue;
    for (const ev of parser.write(body.subarray(prev, at))) {
      if (ev.type === 'part')
        cur = {
          name: ev.headers.name,
          ...(ev.headers.filename !== undefined ? { filename: ev.headers.filename } : {}),
          chunks: [],
        };
      else if (ev.type === 'data') cur!.chunks.push(Buffer.from(ev.chunk));
      else {
        const { chunks, ...rest } = cur!;
        parts.push({ ...rest, data: Buffer.concat(chunks) });
      }
    }
    prev = at;
  }
  parser.end();
  return parts;
}

// Data made of pieces that look like the delimiter, to catch split-handling bugs.
const tricky = fc
  .array(
    fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.constantFrom(
        Buffer.from('\r\n'),
        Buffer.from('\r\n--'),
        Buffer.from(`\r\n--${BOUNDARY.slice(0, 5)}`),
        Buffer.from(`--${BOUNDARY}`),
        Buffer.from(`\r\n-${BOUNDARY}`),
        Buffer.from('\r\n\r\n'),
      ),
    ),
    { maxLength: 12 },
  )
  .map((xs) => Buffer.concat(xs))
  // a real delimiter inside the data would end the part: that is not data
  .filter((b) => !b.includes(`\r\n--${BOUNDARY}`));

describe('MultipartParser', () => {
  it('reads the same parts whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.constantFrom('package', 'signature', 'pair', 'reason'),
            data: tricky,
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.nat(), { maxLength: 30 }),
        (parts, cuts) => {
          const body = encode(parts);
          const got = parse(body, cuts);
          expect(got.map((p) => [p.name, p.data.toString('hex')])).toEqual(
            parts.map((p) => [p.name, p.data.toString('hex')]),
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it('keeps filenames as sent (backslashes literal)', () => {
    const got = parse(
      encode([{ name: 'package', filename: 'C:\\x\\p.tar.gz', data: Buffer.from('x') }]),
      [],
    );
    expect(got[0]!.filename).toBe('C:\\x\\p.tar.gz');
  });

  it.each([
    [
      'preamble',
      Buffer.concat([Buffer.from('hello\r\n'), encode([{ name: 'pair', data: Buffer.from('a') }])]),
    ],
    ['no closing boundary', encode([{ name: 'pair', data: Buffer.from('a') }]).subarray(0, -8)],
    [
      'data after the closing boundary',
      Buffer.concat([encode([{ name: 'pair', data: Buffer.from('a') }]), Buffer.from('junk')]),
    ],
    [
      'no Content-Disposition',
      Buffer.from(`--${BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--${BOUNDARY}--\r\n`),
    ],
    [
      'filename* parameter',
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="package"; filename*="utf-8''x"\r\n\r\nx\r\n--${BOUNDARY}--\r\n`,
      ),
    ],
    [
      'nested multipart',
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="package"\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\nx\r\n--${BOUNDARY}--\r\n`,
      ),
    ],
    ['header block over 8 KiB', Buffer.from(`--${BOUNDARY}\r\nX-Pad: ${'a'.repeat(9000)}\r\n`)],
    [
      'too many parts',
      encode(Array.from({ length: 9 }, () => ({ name: 'reason', data: Buffer.from('x') }))),
    ],
  ])('refuses %s as upload-malformed (400)', (_name, body) => {
    let err: unknown;
    try {
      parse(body, [7, 100, 1000]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PackageRejected);
    expect((err as PackageRejected).status).toBe(400);
    expect((err as PackageRejected).code).toBe('upload-malformed');
  });

  it('finds the boundary in Content-Type, quoted or not, and nothing else', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc')).toBe('abc');
    expect(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"')).toBe('a b');
    expect(multipartBoundary('multipart/form-data')).toBeUndefined();
    expect(multipartBoundary('multipart/mixed; boundary=abc')).toBeUndefined();
    expect(multipartBoundary('application/json')).toBeUndefined();
    expect(multipartBoundary(undefined)).toBeUndefined();
    expect(multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(71)}`)).toBeUndefined();
  });
});
