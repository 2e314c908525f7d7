// The version rule, in one place. Package versions are MAJOR.MINOR.PATCH,
// nothing more: no pre-release or build suffixes, no leading zeros, so that
// comparing and ordering them is unambiguous for the operator ("is this
// package newer than what runs?"). The UpgradeRequest schema, the package
// manifest, the upload and the upgrade runtime all judge versions here.

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

/** Also the CRD's `pattern` for versions (src/core/upgrade-request.ts). */
export const VERSION_RE = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$/;

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

/** Why a package may not be installed over a pair's version. */
export type UpgradePathProblem =
  | { readonly code: 'not-newer'; readonly message: string }
  | { readonly code: 'wrong-version-line'; readonly message: string };

/**
 * The upgrade rule: a package may be installed over `installed` only if it is
 * newer (a downgrade is a rollback, not an upgrade) and lists `installed`
 * among the versions it upgrades from. Null when it may.
 */
export function upgradePathProblem(
  pkg: { readonly version: string; readonly upgradesFrom: readonly string[] },
  installed: string,
): UpgradePathProblem | null {
  if (compareVersions(pkg.version, installed) <= 0)
    return {
      code: 'not-newer',
      message: `package ${pkg.version} is not newer than ${installed}`,
    };
  if (!pkg.upgradesFrom.includes(installed))
    return {
      code: 'wrong-version-line',
      message: `package ${pkg.version} upgrades from ${pkg.upgradesFrom.join(', ')}, not from ${installed}`,
    };
  return null;
}
