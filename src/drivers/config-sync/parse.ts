// Pure parsing for the config sync driver: the rsync job's status line and
// the per-file checksum listing each node prints, and the comparison of two
// nodes' listings. No I/O.
import { z } from 'zod';
import type { RsyncState } from '../records.js';

/**
 * What the declared status command prints: one line of JSON. Only `paused`
 * and `loop` are required; `last` (the last run) is optional. The lab's
 * sync-ctl prints exactly this (docs/lab.md).
 */
const statusSchema = z
  .object({
    loop: z.enum(['running', 'stopped']),
    paused: z.boolean(),
    last: z
      .object({
        lastRun: z.string().nullable().optional(),
        lastResult: z.string().nullable().optional(),
        lastError: z.string().nullable().optional(),
        lastPush: z.string().nullable().optional(),
      })
      .passthrough()
      .nullable()
      .optional(),
  })
  .passthrough();

export interface RsyncJobStatus {
  /** paused beats everything: a paused job pushes nothing whatever its loop does. */
  readonly state: Exclude<RsyncState, 'unknown'>;
  readonly paused: boolean;
  readonly loopRunning: boolean;
  readonly lastRun: string | null;
  readonly lastResult: string | null;
  readonly lastError: string | null;
}

export function parseRsyncStatus(text: string): RsyncJobStatus {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (!line)
    throw new Error(
      `the rsync status command printed no JSON line: ${JSON.stringify(text.slice(0, 200))}`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new Error(
      `the rsync status command printed invalid JSON: ${JSON.stringify(line.slice(0, 200))}`,
    );
  }
  const r = statusSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(
      `the rsync status JSON has a bad ${i.path.join('.') || 'document'}: ${i.message}`,
    );
  }
  const s = r.data;
  const lastResult = s.last?.lastResult ?? null;
  const state = s.paused
    ? 'paused'
    : s.loop === 'stopped'
      ? 'stopped'
      : lastResult === 'error'
        ? 'failed'
        : 'running';
  return {
    state,
    paused: s.paused,
    loopRunning: s.loop === 'running',
    lastRun: s.last?.lastRun ?? null,
    lastResult,
    lastError: s.last?.lastError ?? null,
  };
}

export interface FileSum {
  readonly sha256: string;
  /** "mode:uid:gid", e.g. "600:0:0" */
  readonly meta: string;
}

/** CHECKSUM_SCRIPT's output: NUL-terminated "<sha256> <mode:uid:gid> ./<path>" records. */
export function parseChecksumListing(text: string): Map<string, FileSum> {
  const out = new Map<string, FileSum>();
  for (const rec of text.split('\0')) {
    if (rec === '' || rec === '\n') continue;
    const m = /^([0-9a-f]{64}) ([0-7]{1,4}:\d+:\d+) \.\/([\s\S]+)$/.exec(rec);
    if (!m) throw new Error(`unexpected checksum record: ${JSON.stringify(rec.slice(0, 200))}`);
    out.set(m[3]!, { sha256: m[1]!, meta: m[2]! });
  }
  return out;
}

export interface FileDifference {
  readonly path: string;
  readonly reason: 'content' | 'owner or mode' | 'only on one node';
  /** node name -> its sha256 and meta (absent where the file is missing) */
  readonly nodes: Record<string, FileSum | null>;
}

/** Files that differ between two nodes' listings, sorted by path. */
export function compareListings(
  a: { node: string; files: ReadonlyMap<string, FileSum> },
  b: { node: string; files: ReadonlyMap<string, FileSum> },
): FileDifference[] {
  const paths = [...new Set([...a.files.keys(), ...b.files.keys()])].sort();
  const out: FileDifference[] = [];
  for (const path of paths) {
    const x = a.files.get(path) ?? null;
    const y = b.files.get(path) ?? null;
    const nodes = { [a.node]: x, [b.node]: y };
    if (!x || !y) out.push({ path, reason: 'only on one node', nodes });
    else if (x.sha256 !== y.sha256) out.push({ path, reason: 'content', nodes });
    else if (x.meta !== y.meta) out.push({ path, reason: 'owner or mode', nodes });
  }
  return out;
}
