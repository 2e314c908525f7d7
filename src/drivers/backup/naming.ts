// Names of backup sets and of the files inside them. A set is one folder per
// backup under spec.paths.backupDir, named by its UTC timestamp so that names
// sort in time order (retention relies on that); each file carries the same
// timestamp: app.jar.20261129T131500Z, config.tar.20261129T131500Z,
// app.dump.20261129T131500Z. A set is written under a hidden ".partial-"
// name and renamed when complete, so a crash never leaves a set that looks
// finished.
import type { BackupKind } from '../records.js';

const STAMP = /^\d{8}T\d{6}Z$/;

/** 2026-11-29T13:15:00.123Z -> 20261129T131500Z */
export function setStamp(at: Date): string {
  return at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

export function isSetName(name: string): boolean {
  return STAMP.test(name);
}

/** The set's time, or undefined for a name that is not a set's. */
export function setTime(name: string): Date | undefined {
  if (!isSetName(name)) return undefined;
  const iso = `${name.slice(0, 4)}-${name.slice(4, 6)}-${name.slice(6, 8)}T${name.slice(9, 11)}:${name.slice(11, 13)}:${name.slice(13, 15)}Z`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export const PARTIAL_PREFIX = '.partial-';
export const MANIFEST_NAME = 'MANIFEST.json';

export function partialName(set: string): string {
  return `${PARTIAL_PREFIX}${set}`;
}

const BASE: Record<BackupKind, string> = {
  jar: 'app.jar',
  config: 'config.tar',
  database: 'app.dump',
};

export function backupFileName(kind: BackupKind, set: string): string {
  return `${BASE[kind]}.${set}`;
}

/** A set name that is not yet taken: the stamp, bumped a second at a time. */
export function freshSetName(at: Date, taken: ReadonlySet<string>): string {
  let t = at.getTime();
  for (;;) {
    const name = setStamp(new Date(t));
    if (!taken.has(name)) return name;
    t += 1000;
  }
}

export function joinPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '')}/${name}`;
}
