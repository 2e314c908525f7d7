// What a stopped server tells through its files, and the one file the
// switchover edits. Pure parsing and editing; the driver reads and writes.
// - pg_controldata output: how the server last stopped and where its last
//   checkpoint is (for a clean shutdown: the shutdown checkpoint, the last
//   WAL record it wrote, which the standby must have received).
// - a timeline history file (NNNNNNNN.history): where the new primary's
//   timeline branched off; the old primary may rejoin without pg_rewind only
//   if it wrote nothing past that point.
// - postgresql.auto.conf: primary_conninfo of a server being turned into a
//   standby while it is stopped (ALTER SYSTEM needs a running server).
import { type Lsn, parseLsn } from './lsn.js';

export type ClusterState =
  | 'shut down'
  | 'shut down in recovery'
  | 'shutting down'
  | 'in crash recovery'
  | 'in archive recovery'
  | 'in production'
  | 'starting up'
  | 'unrecognized';

export interface ControlData {
  readonly state: ClusterState;
  readonly checkpointLsn: Lsn;
  readonly timeline: number;
}

export function parseControlData(text: string): ControlData {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const need = (k: string) => {
    const v = fields.get(k);
    if (v === undefined) throw new Error(`pg_controldata output has no "${k}"`);
    return v;
  };
  const known: ClusterState[] = [
    'shut down',
    'shut down in recovery',
    'shutting down',
    'in crash recovery',
    'in archive recovery',
    'in production',
    'starting up',
  ];
  const s = need('Database cluster state');
  return {
    state: (known as string[]).includes(s) ? (s as ClusterState) : 'unrecognized',
    checkpointLsn: parseLsn(need('Latest checkpoint location')),
    timeline: Number(need("Latest checkpoint's TimeLineID")),
  };
}

export interface TimelineBranch {
  /** The timeline branched from. */
  readonly parent: number;
  /** First LSN of the new timeline: the parent's WAL up to here is shared. */
  readonly switchpoint: Lsn;
}

/** The last entry of a history file: where the current timeline left its parent. */
export function parseTimelineHistory(text: string): TimelineBranch {
  const entries = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const last = entries.at(-1);
  if (!last) throw new Error('the timeline history file is empty');
  const [tli, lsn] = last.split(/\s+/);
  return { parent: Number(tli), switchpoint: parseLsn(lsn ?? '') };
}

/** A libpq conninfo value quoted for a configuration file. */
function confQuote(v: string): string {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function unquoteConf(v: string): string {
  const t = v.trim();
  if (t.startsWith("'") && t.endsWith("'"))
    return t.slice(1, -1).replace(/''/g, "'").replace(/\\\\/g, '\\');
  return t;
}

/** The value of a parameter in a postgresql(.auto).conf text, last one wins. */
export function confValue(conf: string, name: string): string | null {
  let found: string | null = null;
  for (const line of conf.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*(.*?)\s*(#.*)?$/.exec(line);
    if (m && m[1]!.toLowerCase() === name.toLowerCase() && !line.trim().startsWith('#'))
      found = unquoteConf(m[2]!);
  }
  return found;
}

/** The conf text with `name = 'value'` set once (existing lines replaced, else appended). */
export function setConfValue(conf: string, name: string, value: string): string {
  const line = `${name} = ${confQuote(value)}`;
  const lines = conf.split('\n');
  const isIt = (l: string) => new RegExp(`^\\s*${name}\\s*=`, 'i').test(l);
  const kept = lines.filter((l) => !isIt(l));
  const at = lines.findIndex(isIt);
  if (at >= 0) {
    kept.splice(Math.min(at, kept.length), 0, line);
    return kept.join('\n');
  }
  const base = conf === '' || conf.endsWith('\n') ? conf : `${conf}\n`;
  return `${base}${line}\n`;
}

/** libpq key=value conninfo parsed (values may be single-quoted). */
export function parseConninfo(s: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)/g;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    let v = m[2]!;
    if (v.startsWith("'")) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    out.set(m[1]!, v);
  }
  return out;
}

export function formatConninfo(m: ReadonlyMap<string, string>): string {
  return [...m]
    .map(([k, v]) =>
      /^[^\s'\\]+$/.test(v)
        ? `${k}=${v}`
        : `${k}='${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`,
    )
    .join(' ');
}

/**
 * The conninfo a node uses to follow `primaryHost`: the pair's existing
 * conninfo (user, passfile, port...) with host and application_name replaced.
 * Never a password: the template names a passfile.
 */
export function followConninfo(
  template: string,
  primaryHost: string,
  applicationName: string,
): string {
  const m = parseConninfo(template);
  m.set('host', primaryHost);
  m.delete('hostaddr');
  m.set('application_name', applicationName);
  return formatConninfo(m);
}
