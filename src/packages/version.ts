// Package versions are MAJOR.MINOR.PATCH, nothing more: no pre-release or
// build suffixes, no leading zeros, so that comparing and ordering them is
// unambiguous for the operator ("is this package newer than what runs?").

import { VERSION_PATTERN as VERSION_RE } from '../core/text.js';

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

export function isVersion(text: string): boolean {
  return VERSION_RE.test(text);
}

export function parseVersion(text: string): Version {
  const m = VERSION_RE.exec(text);
  if (!m) {
    throw new Error(
      `${JSON.stringify(text)} is not a version: expected MAJOR.MINOR.PATCH, e.g. 2.0.0`,
    );
  }
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** Negative when a < b, zero when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}
