// The HTTP client of `pairshift upgrade`: one call to the operator REST API,
// its bearer token from --token-file or $PAIRSHIFT_API_TOKEN (never printed),
// request bodies streamed from disk. Failures leave here as CliErrors that
// carry their exit code (exit-codes.ts): no answer at all is
// API_UNREACHABLE, a problem+json answer becomes one line for a person
// (what, code, suggested next step) with the code its status calls for.

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CliError, EXIT, exitCodeForStatus, usageError } from './exit-codes.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

export interface ApiOptions {
  api: string;
  tokenFile?: string;
}

export interface ApiClient {
  base: URL;
  token: string | undefined;
}

/** The answer of one call: status and parsed JSON body (problem or result). */
export interface Answer {
  status: number;
  body: unknown;
}

export async function clientFrom(o: ApiOptions): Promise<ApiClient> {
  let base: URL;
  try {
    base = new URL(o.api);
  } catch {
    throw usageError(`--api ${JSON.stringify(o.api)} is not a URL like ${DEFAULT_API_URL}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw usageError(`--api ${o.api}: expected an http:// or https:// URL`);
  let token: string | undefined;
  if (o.tokenFile) {
    try {
      token = (await readFile(o.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw usageError(`cannot read the token file ${o.tokenFile}`, { cause: err });
    }
    if (!token) throw usageError(`the token file ${o.tokenFile} is empty`);
  } else if (process.env.PAIRSHIFT_API_TOKEN) {
    token = process.env.PAIRSHIFT_API_TOKEN.trim();
  }
  return { base, token };
}

/** A request body: bytes or pieces streamed in order (files read as they are sent). */
export interface Body {
  contentType: string;
  length: number;
  pieces: (Buffer | { file: string })[];
}

async function* bodyChunks(body: Body): AsyncGenerator<Buffer> {
  for (const p of body.pieces) {
    if (Buffer.isBuffer(p)) yield p;
    else
      for await (const chunk of createReadStream(p.file, { highWaterMark: 1024 * 1024 }))
        yield chunk as Buffer;
  }
}

function unreachable(c: ApiClient, cause: unknown): CliError {
  return new CliError(`cannot reach the API at ${c.base.origin}`, EXIT.API_UNREACHABLE, { cause });
}

/** How long an upload waits for 100 Continue before it sends its body anyway. */
const CONTINUE_WAIT_MS = 1000;

export async function call(
  c: ApiClient,
  method: 'GET' | 'POST',
  path: string,
  body?: Body,
  /** How long the API may stay silent (no byte) before the call counts as unreachable. */
  silenceMs = 120_000,
): Promise<Answer> {
  const url = new URL(path, c.base);
  const headers: Record<string, string | number> = { accept: 'application/json' };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  if (body) {
    headers['content-type'] = body.contentType;
    headers['content-length'] = body.length;
    // The API judges the headers first (token, role, size) and answers a
    // refusal before any byte of the body: nothing is uploaded in vain, and
    // the answer is not lost to a write into a socket it already closed.
    headers.expect = '100-continue';
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  let req!: ClientRequest;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req = send(url, { method, headers, timeout: silenceMs }, resolve);
    req.on('timeout', () =>
      req.destroy(new Error(`the API did not answer within ${silenceMs / 1000} s`)),
    );
    req.on('error', (err) => reject(unreachable(c, err)));
    if (!body) {
      req.end();
      return;
    }
    // Send once the API says "go on"; a server (or proxy) that never says
    // it gets the body after a second, as curl does. A final answer first
    // (401, 413) means the body is never sent.
    let sending = false;
    const sendBody = () => {
      if (sending) return;
      sending = true;
      clearTimeout(unasked);
      pipeline(Readable.from(bodyChunks(body)), req).catch((err: unknown) => {
        if (!req.destroyed) req.destroy(err as Error);
      });
    };
    const unasked = setTimeout(sendBody, CONTINUE_WAIT_MS);
    req.on('continue', sendBody);
    req.on('response', () => {
      clearTimeout(unasked);
      sending = true;
    });
  });
  // An answer that came before the body was sent leaves the request open.
  res.once('end', () => {
    if (!req.writableFinished) req.destroy();
  });
  const parts: Buffer[] = [];
  try {
    for await (const chunk of res) parts.push(chunk as Buffer);
  } catch (err) {
    throw unreachable(c, err); // the connection broke mid-answer
  }
  const text = Buffer.concat(parts).toString('utf8');
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: shown as text below
  }
  return { status: res.statusCode ?? 0, body: parsed };
}

interface Problem {
  title?: string;
  detail?: string;
  code?: string;
  suggestion?: string;
  status?: number;
}

/** Turns a non-2xx answer into one line for a person. */
export function problemLine(a: Answer): string {
  const p = (typeof a.body === 'object' && a.body !== null ? a.body : {}) as Problem;
  if (!p.title && !p.detail) {
    const text = typeof a.body === 'string' ? a.body.replace(/\s+/g, ' ').slice(0, 200) : '';
    return `the API answered ${a.status}${text ? `: ${text}` : ''}`;
  }
  const what = [p.title, p.detail].filter(Boolean).join(': ');
  const extra = [p.code, p.suggestion ? `suggestion: ${p.suggestion}` : undefined]
    .filter(Boolean)
    .join('; ');
  return `${what} (${a.status}${extra ? ` ${extra}` : ''})`.replace(/\s*\n\s*/g, ' ');
}

export function ok(a: Answer): Record<string, unknown> {
  if (a.status < 200 || a.status >= 300)
    throw new CliError(problemLine(a), exitCodeForStatus(a.status));
  return (a.body ?? {}) as Record<string, unknown>;
}

/** Builds the multipart form for an upload; files are streamed when sent. */
export async function uploadBody(
  fields: [string, string][],
  files: [string, string][],
): Promise<Body> {
  const boundary = `pairshift-${randomBytes(12).toString('hex')}`;
  const pieces: Body['pieces'] = [];
  let length = 0;
  const add = (b: Buffer) => {
    pieces.push(b);
    length += b.length;
  };
  for (const [name, value] of fields)
    add(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
      ),
    );
  for (const [name, path] of files) {
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      size = st.size;
    } catch (err) {
      throw usageError(`cannot read ${name} file ${path}`, { cause: err });
    }
    // The server ignores the filename; keep it a plain, quotable name.
    const filename = basename(path).replace(/[^A-Za-z0-9._-]/g, '_');
    add(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
    );
    pieces.push({ file: path });
    length += size;
    add(Buffer.from('\r\n'));
  }
  add(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, length, pieces };
}

export function jsonBody(value: unknown): Body {
  const b = Buffer.from(JSON.stringify(value));
  return { contentType: 'application/json', length: b.length, pieces: [b] };
}
