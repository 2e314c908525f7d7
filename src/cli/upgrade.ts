// `pairshift upgrade trigger|progress|rollback|cancel|history|logs`: the CLI
// face of the REST API (task list 3), for operators who drive upgrades from
// a shell. Every command is one HTTP call (progress --watch polls); the
// bearer token comes from --token-file or $PAIRSHIFT_API_TOKEN and is never
// printed. A package upload streams the files from disk (no whole-file
// buffering). A problem+json answer becomes one line: what went wrong, its
// code and the suggested next step; the exit code is then 1.

import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { isPhase, isTerminal } from '../core/phases.js';

export const DEFAULT_API_URL = 'http://127.0.0.1:8080';

interface ApiOptions {
  api: string;
  tokenFile?: string;
  output: 'text' | 'json';
}

interface ApiClient {
  base: URL;
  token: string | undefined;
}

/** The answer of one call: status and parsed JSON body (problem or result). */
interface Answer {
  status: number;
  body: unknown;
}

async function clientFrom(o: ApiOptions): Promise<ApiClient> {
  let base: URL;
  try {
    base = new URL(o.api);
  } catch {
    throw new Error(`--api ${JSON.stringify(o.api)} is not a URL like ${DEFAULT_API_URL}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:')
    throw new Error(`--api ${o.api}: expected an http:// or https:// URL`);
  let token: string | undefined;
  if (o.tokenFile) {
    try {
      token = (await readFile(o.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new Error(`cannot read the token file ${o.tokenFile}`, { cause: err });
    }
    if (!token) throw new Error(`the token file ${o.tokenFile} is empty`);
  } else if (process.env.PAIRSHIFT_API_TOKEN) {
    token = process.env.PAIRSHIFT_API_TOKEN.trim();
  }
  return { base, token };
}

/** A request body: bytes or pieces streamed in order (files read as they are sent). */
interface Body {
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

/** How long an upload waits for 100 Continue before it sends its body anyway. */
const CONTINUE_WAIT_MS = 1000;

async function call(
  c: ApiClient,
  method: 'GET' | 'POST',
  path: string,
  body?: Body,
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
    req = send(url, { method, headers, timeout: 120_000 }, resolve);
    req.on('timeout', () => req.destroy(new Error('the API did not answer within 120 s')));
    req.on('error', (err) =>
      reject(new Error(`cannot reach the API at ${c.base.origin}`, { cause: err })),
    );
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
  for await (const chunk of res) parts.push(chunk as Buffer);
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

function ok(a: Answer): Record<string, unknown> {
  if (a.status < 200 || a.status >= 300) throw new Error(problemLine(a));
  return (a.body ?? {}) as Record<string, unknown>;
}

function print(o: ApiOptions, value: unknown, text: () => string): void {
  process.stdout.write(o.output === 'json' ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

const id = (s: string) => encodeURIComponent(s);

function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^[1-9]\d{0,6}$/.test(v)) throw new Error(`${name} must be a whole number from 1`);
    return Number(v);
  };
}

/** Builds the multipart form for an upload; files are streamed when sent. */
async function uploadBody(fields: [string, string][], files: [string, string][]): Promise<Body> {
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
      throw new Error(`cannot read ${name} file ${path}`, { cause: err });
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

function jsonBody(value: unknown): Body {
  const b = Buffer.from(JSON.stringify(value));
  return { contentType: 'application/json', length: b.length, pieces: [b] };
}

interface Progress {
  upgrade_id: string;
  pair: string;
  target_version: string;
  phase: string;
  progress_percent: number;
  current_step: string | null;
  message: string | null;
}

function progressLine(p: Progress): string {
  const step = p.current_step ? `, step ${p.current_step}` : '';
  const msg = p.message ? ` — ${p.message}` : '';
  return `${p.upgrade_id}: ${p.pair} -> ${p.target_version}  ${p.phase} ${p.progress_percent}%${step}${msg}`;
}

function apiOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'the operator API', DEFAULT_API_URL)
    .option('--token-file <file>', 'file holding the bearer token (default: $PAIRSHIFT_API_TOKEN)')
    .addOption(
      new Option('--output <format>', 'output format').choices(['text', 'json']).default('text'),
    );
}

export function registerUpgradeCommands(program: Command): void {
  const up = program
    .command('upgrade')
    .description('Drive upgrades through the operator REST API (trigger, progress, rollback, ...)');

  apiOptions(
    up
      .command('trigger')
      .description('Start an upgrade: upload a signed package, or name one on the operator host')
      .requiredOption('--pair <name>', 'the HA pair to upgrade')
      .option('--package <file>', 'package archive to upload (.tar.gz)')
      .option('--signature <file>', 'its signature (default: <package>.sig)')
      .option('--package-path <path>', 'a package already on the operator host (absolute path)')
      .option('--version <version>', 'with --package-path: the package version')
      .option('--signature-path <path>', 'with --package-path: its signature on the operator host')
      .option('--reason <text>', 'why (recorded with the upgrade)')
      .option('--dry-run', 'verify, observe and plan only: nothing on the nodes changes'),
  ).action(async (o) => {
    const c = await clientFrom(o);
    if (Boolean(o.package) === Boolean(o.packagePath))
      throw new Error('give either --package FILE (upload) or --package-path PATH --version V');
    let body: Body;
    if (o.package) {
      if (o.version) throw new Error('--version goes with --package-path; an upload says its own');
      const fields: [string, string][] = [['pair', o.pair]];
      if (o.reason) fields.push(['reason', o.reason]);
      if (o.dryRun) fields.push(['options', JSON.stringify({ dry_run: true })]);
      body = await uploadBody(fields, [
        ['package', o.package],
        ['signature', o.signature ?? `${o.package}.sig`],
      ]);
    } else {
      if (!o.version) throw new Error('--package-path needs --version');
      body = jsonBody({
        pair: o.pair,
        package: {
          path: o.packagePath,
          version: o.version,
          ...(o.signaturePath ? { signature_path: o.signaturePath } : {}),
        },
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.dryRun ? { options: { dry_run: true } } : {}),
      });
    }
    const out = ok(await call(c, 'POST', '/api/v1/upgrade/trigger', body));
    print(
      o,
      out,
      () =>
        `upgrade ${out.upgrade_id} started: ${out.pair} -> ${out.target_version} (${out.phase}); ` +
        `follow it with: pairshift upgrade progress ${out.upgrade_id} --watch`,
    );
  });

  apiOptions(
    up
      .command('progress')
      .description('Show an upgrade’s phase and progress')
      .argument('<id>', 'upgrade id')
      .option('--watch', 'keep showing changes until the upgrade ends')
      .option(
        '--interval <seconds>',
        'with --watch: seconds between polls',
        positiveInt('--interval'),
        2,
      ),
  ).action(async (upgradeId: string, o) => {
    const c = await clientFrom(o);
    let last = '';
    for (;;) {
      const p = ok(
        await call(c, 'GET', `/api/v1/upgrade/progress/${id(upgradeId)}`),
      ) as unknown as Progress;
      const line = o.output === 'json' ? JSON.stringify(p) : progressLine(p);
      if (line !== last) process.stdout.write(`${line}\n`);
      last = line;
      if (!o.watch || (isPhase(p.phase) && isTerminal(p.phase))) return;
      await sleep(o.interval * 1000);
    }
  });

  for (const action of ['rollback', 'cancel'] as const) {
    apiOptions(
      up
        .command(action)
        .description(
          action === 'rollback'
            ? 'Roll an upgrade back to the old version'
            : 'Stop an upgrade at a safe point',
        )
        .argument('<id>', 'upgrade id')
        .requiredOption('--reason <text>', 'why (recorded with the request)'),
    ).action(async (upgradeId: string, o) => {
      const c = await clientFrom(o);
      const out = ok(
        await call(
          c,
          'POST',
          `/api/v1/upgrade/${action}/${id(upgradeId)}`,
          jsonBody({ reason: o.reason }),
        ),
      );
      print(o, out, () => `${action} of ${out.upgrade_id} accepted (${out.phase}): ${out.effect}`);
    });
  }

  apiOptions(
    up
      .command('history')
      .description('Phase transitions of all upgrades, newest first')
      .option('--page <n>', 'page number', positiveInt('--page'))
      .option('--page-size <n>', 'entries per page', positiveInt('--page-size')),
  ).action(async (o) => {
    const c = await clientFrom(o);
    const q = new URLSearchParams();
    if (o.page) q.set('page', String(o.page));
    if (o.pageSize) q.set('page_size', String(o.pageSize));
    const out = ok(await call(c, 'GET', `/api/v1/upgrade/history${q.size ? `?${q}` : ''}`));
    print(o, out, () =>
      pageText(
        out,
        (e) =>
          `${e.at}  ${e.upgrade_id}  ${e.from_phase ?? '-'} -> ${e.to_phase}  ${e.cause} (${e.actor})`,
      ),
    );
  });

  apiOptions(
    up
      .command('logs')
      .description('An upgrade’s log, newest first')
      .argument('<id>', 'upgrade id')
      .addOption(
        new Option('--level <level>', 'only this level').choices(['INFO', 'WARNING', 'ERROR']),
      )
      .option('--page <n>', 'page number', positiveInt('--page'))
      .option('--page-size <n>', 'entries per page', positiveInt('--page-size')),
  ).action(async (upgradeId: string, o) => {
    const c = await clientFrom(o);
    const q = new URLSearchParams();
    if (o.level) q.set('level', o.level);
    if (o.page) q.set('page', String(o.page));
    if (o.pageSize) q.set('page_size', String(o.pageSize));
    const out = ok(
      await call(c, 'GET', `/api/v1/upgrade/logs/${id(upgradeId)}${q.size ? `?${q}` : ''}`),
    );
    print(o, out, () =>
      pageText(
        out,
        (e) => `${e.timestamp}  ${String(e.level).padEnd(7)} ${e.source}: ${e.message}`,
      ),
    );
  });
}

function pageText(
  out: Record<string, unknown>,
  line: (e: Record<string, unknown>) => string,
): string {
  const items = (out.items ?? []) as Record<string, unknown>[];
  const page = Number(out.page);
  const size = Number(out.page_size);
  const total = Number(out.total);
  const pages = Math.max(1, Math.ceil(total / size));
  const head = `page ${page} of ${pages} (${total} in all)`;
  return items.length === 0 ? `${head}: nothing here` : [head, ...items.map(line)].join('\n');
}
