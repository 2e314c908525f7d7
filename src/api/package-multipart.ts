// A small, strict, streaming multipart/form-data reader (RFC 7578) for
// package uploads. Why in-house: the upload is the first code to touch
// untrusted bytes, and it needs only a fraction of what general parsers
// accept; this one refuses what it does not expect (preambles, unknown
// headers beyond a bound, filename* parameters, nested multipart) and bounds
// everything: total bytes, parts, header bytes. It is a pure state machine:
// `write(chunk)` returns events, `end()` checks the body was complete; the
// caller writes file data with backpressure (see upload.ts).
import { badRequest } from './package-errors.js';

export interface PartHeaders {
  name: string;
  filename: string | undefined;
  contentType: string | undefined;
}

export type MultipartEvent =
  | { type: 'part'; headers: PartHeaders }
  | { type: 'data'; chunk: Buffer }
  | { type: 'part-end' };

/** Header block of one part; a real one is ~150 bytes. */
const MAX_PART_HEADER_BYTES = 8 * 1024;
/** package, signature, pair, reason: anything much beyond is not our form. */
export const MAX_PARTS = 8;

/** The boundary from a Content-Type header, or undefined when it is not multipart/form-data. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const [type, ...params] = contentType.split(';');
  if (type?.trim().toLowerCase() !== 'multipart/form-data') return undefined;
  for (const p of params) {
    const m = /^\s*boundary=(?:"([^"]{1,70})"|([^\s";]{1,70}))\s*$/i.exec(p);
    if (m) return m[1] ?? m[2];
  }
  return undefined;
}

/** Parses `form-data; name="x"; filename="y"` strictly (quoted strings without escapes). */
function parseDisposition(value: string): { name: string; filename: string | undefined } {
  // Backslashes are kept literally (browsers send Windows paths unescaped).
  const m = /^form-data((?:\s*;\s*[A-Za-z*]+="[^"\r\n]*")*)\s*$/i.exec(value.trim());
  if (!m) throw badRequest('upload-malformed', `part has an unreadable Content-Disposition`);
  let name: string | undefined;
  let filename: string | undefined;
  for (const p of m[1]!.matchAll(/;\s*([A-Za-z*]+)="([^"]*)"/g)) {
    const key = p[1]!.toLowerCase();
    if (key === 'name') name = p[2];
    else if (key === 'filename') filename = p[2];
    else throw badRequest('upload-malformed', `part has an unexpected ${key} parameter`);
  }
  if (name === undefined) throw badRequest('upload-malformed', 'part has no name');
  return { name, filename };
}

function parseHeaders(block: Buffer): PartHeaders {
  const text = block.toString('latin1');
  let disposition: string | undefined;
  let contentType: string | undefined;
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw badRequest('upload-malformed', 'part has a malformed header line');
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') {
      if (disposition !== undefined)
        throw badRequest('upload-malformed', 'part has two Content-Disposition headers');
      disposition = value;
    } else if (key === 'content-type') contentType = value;
    else if (key === 'content-transfer-encoding')
      throw badRequest('upload-malformed', 'Content-Transfer-Encoding is not supported');
    // other headers are ignored (bounded by MAX_PART_HEADER_BYTES)
  }
  if (disposition === undefined)
    throw badRequest('upload-malformed', 'part has no Content-Disposition header');
  if (contentType && /^multipart\//i.test(contentType))
    throw badRequest('upload-malformed', 'nested multipart parts are not supported');
  return { ...parseDisposition(disposition), contentType };
}

type State = 'start' | 'after-boundary' | 'headers' | 'body' | 'done';

export class MultipartParser {
  /** "\r\n--boundary": every delimiter, the first included once we prepend CRLF. */
  private readonly delimiter: Buffer;
  private state: State = 'start';
  private buf: Buffer = Buffer.from('\r\n');
  private parts = 0;

  constructor(boundary: string) {
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  write(chunk: Buffer): MultipartEvent[] {
    const events: MultipartEvent[] = [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.state === 'start') {
        if (this.buf.length < this.delimiter.length) {
          if (!this.delimiter.subarray(0, this.buf.length).equals(this.buf))
            throw badRequest('upload-malformed', 'the body does not start with the boundary');
          break;
        }
        if (!this.buf.subarray(0, this.delimiter.length).equals(this.delimiter))
          throw badRequest('upload-malformed', 'the body does not start with the boundary');
        this.buf = this.buf.subarray(this.delimiter.length);
        this.state = 'after-boundary';
      } else if (this.state === 'after-boundary') {
        if (this.buf.length < 2) break;
        const two = this.buf.subarray(0, 2).toString('latin1');
        this.buf = this.buf.subarray(2);
        if (two === '--') {
          this.state = 'done';
        } else if (two === '\r\n') {
          this.parts += 1;
          if (this.parts > MAX_PARTS)
            throw badRequest('upload-malformed', `the form has more than ${MAX_PARTS} parts`);
          this.state = 'headers';
        } else throw badRequest('upload-malformed', 'unexpected bytes after a boundary');
      } else if (this.state === 'headers') {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end === -1) {
          if (this.buf.length > MAX_PART_HEADER_BYTES)
            throw badRequest('upload-malformed', 'a part header is too long');
          break;
        }
        if (end > MAX_PART_HEADER_BYTES)
          throw badRequest('upload-malformed', 'a part header is too long');
        events.push({ type: 'part', headers: parseHeaders(this.buf.subarray(0, end)) });
        this.buf = this.buf.subarray(end + 4);
        this.state = 'body';
      } else if (this.state === 'body') {
        const at = this.buf.indexOf(this.delimiter);
        if (at === -1) {
          // Keep a tail that may be the start of a delimiter split across chunks.
          const keep = Math.min(this.buf.length, this.delimiter.length - 1);
          const emit = this.buf.length - keep;
          if (emit > 0) events.push({ type: 'data', chunk: this.buf.subarray(0, emit) });
          this.buf = Buffer.from(this.buf.subarray(emit));
          break;
        }
        if (at > 0) events.push({ type: 'data', chunk: this.buf.subarray(0, at) });
        events.push({ type: 'part-end' });
        this.buf = this.buf.subarray(at + this.delimiter.length);
        this.state = 'after-boundary';
      } else {
        // After the closing delimiter only an epilogue of CRLF/whitespace is tolerated.
        if (/[^\r\n\t ]/.test(this.buf.toString('latin1')))
          throw badRequest('upload-malformed', 'data after the closing boundary');
        if (this.buf.length > 1024) throw badRequest('upload-malformed', 'epilogue too long');
        break;
      }
    }
    return events;
  }

  /** Call when the body ended: refuses a body cut short. */
  end(): void {
    if (this.state !== 'done')
      throw badRequest('upload-malformed', 'the multipart body ended before its closing boundary');
  }
}
