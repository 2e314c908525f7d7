// The version rule has one authority (src/core/version.ts); the upload, the
// upgrade runtime, the package manifest and the UpgradeRequest schema all
// judge versions with it.
import { parseUpgradeRequest } from '../../src/core/upgrade-request.js';
import { upgradePathProblem } from '../../src/core/version.js';

describe('upgradePathProblem', () => {
  const pkg = { version: '2.0.0', upgradesFrom: ['1.0.0', '1.1.0'] };

  test('a newer package built for the installed version may be installed', () => {
    expect(upgradePathProblem(pkg, '1.1.0')).toBeNull();
  });

  test('the same or an older version is not an upgrade (a downgrade is a rollback)', () => {
    expect(upgradePathProblem(pkg, '2.0.0')?.code).toBe('not-newer');
    expect(upgradePathProblem({ ...pkg, upgradesFrom: ['10.0.0'] }, '10.0.0')?.code).toBe(
      'not-newer',
    );
    // Numeric, not text order: 10.0.0 is newer than 9.9.9.
    expect(upgradePathProblem({ version: '10.0.0', upgradesFrom: ['9.9.9'] }, '9.9.9')).toBeNull();
  });

  test('a newer package for another version line is refused, naming both', () => {
    const p = upgradePathProblem(pkg, '1.2.0');
    expect(p?.code).toBe('wrong-version-line');
    expect(p?.message).toBe('package 2.0.0 upgrades from 1.0.0, 1.1.0, not from 1.2.0');
  });
});

describe('the UpgradeRequest schema uses the same format rule', () => {
  const request = (version: string, fromVersion?: string) => ({
    apiVersion: 'pairshift.io/v1alpha1',
    kind: 'UpgradeRequest',
    metadata: { name: 'u1' },
    spec: {
      pairRef: { name: 'lab' },
      package: { path: '/srv/app-2.0.0.tar.gz', version },
      ...(fromVersion ? { fromVersion } : {}),
    },
  });

  test('MAJOR.MINOR.PATCH is accepted', () => {
    expect(() => parseUpgradeRequest(request('2.0.0', '1.0.0'), 'test')).not.toThrow();
  });

  test('a version no package can carry (leading zeros, too long) is refused', () => {
    expect(() => parseUpgradeRequest(request('02.0.0'), 'test')).toThrow(/MAJOR\.MINOR\.PATCH/);
    expect(() => parseUpgradeRequest(request('2.0.0', '1.00.0'), 'test')).toThrow(
      /MAJOR\.MINOR\.PATCH/,
    );
    expect(() => parseUpgradeRequest(request('2.0.1234567890'), 'test')).toThrow(
      /MAJOR\.MINOR\.PATCH/,
    );
  });
});
