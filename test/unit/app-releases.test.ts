// The lab's signed release packages and its signing key.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import {
  buildLabPackage,
  buildLabPackages,
  ensureLabSigningKey,
  LAB_BROKEN_VERSION,
  labUpgradesFrom,
} from '../../src/lab/app/releases.js';
import { loadTrustedKey, verifyPackage } from '../../src/packages/index.js';

jest.setTimeout(120_000);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'k-rel-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('ensureLabSigningKey', () => {
  it('creates a key pair once and reuses it', async () => {
    const a = await ensureLabSigningKey(join(dir, 'keys'));
    const b = await ensureLabSigningKey(join(dir, 'keys'));
    expect(b).toEqual(a);
  });

  it('refuses half a pair and a mismatched pair', async () => {
    const a = await ensureLabSigningKey(join(dir, 'a'));
    await ensureLabSigningKey(join(dir, 'b'));
    copyFileSync(a.publicKeyPath, join(dir, 'b', 'package-signing.pub'));
    await expect(ensureLabSigningKey(join(dir, 'b'))).rejects.toThrow('are not a pair');
    rmSync(a.publicKeyPath);
    await expect(ensureLabSigningKey(join(dir, 'a'))).rejects.toThrow(
      'holds only half of a signing key pair',
    );
  });
});

describe('buildLabPackage', () => {
  it('builds signed v2, v3 and broken packages the lab key verifies, with cumulative migrations', async () => {
    const keys = await ensureLabSigningKey(join(dir, 'keys'));
    const trusted = await loadTrustedKey(keys.publicKeyPath);
    const out = join(dir, 'packages');
    const v2 = await buildLabPackage({
      version: '2.0.0',
      outDir: out,
      signingKey: keys.privateKeyPath,
    });
    const v3 = await buildLabPackage({
      version: '3.0.0',
      outDir: out,
      signingKey: keys.privateKeyPath,
    });
    const bad = await buildLabPackage({
      version: LAB_BROKEN_VERSION,
      broken: true,
      outDir: out,
      signingKey: keys.privateKeyPath,
    });
    expect(bad.packagePath).toBe(join(out, 'app-4.0.0-broken.tar.gz'));

    const checked = [];
    for (const p of [v2, v3, bad]) {
      checked.push(
        (await verifyPackage({ archivePath: p.packagePath, trustedKeys: [trusted] })).manifest,
      );
    }
    expect(checked.map((m) => [m.version, m.upgradesFrom, m.migrations])).toEqual([
      ['2.0.0', ['1.0.0'], ['001_app_events.sql']],
      ['3.0.0', ['1.0.0', '2.0.0'], ['001_app_events.sql', '002_app_events_at_idx.sql']],
      [
        '4.0.0',
        ['1.0.0', '2.0.0', '3.0.0'],
        ['001_app_events.sql', '002_app_events_at_idx.sql', '003_app_events_note.sql'],
      ],
    ]);

    // the jar inside the package really is the release (extracted with GNU tar here only)
    const x = join(dir, 'x');
    mkdirSync(x);
    execFileSync('tar', ['-xzf', v3.packagePath, '-C', x]);
    expect(
      execFileSync('java', ['-jar', join(x, 'payload', 'app.jar'), '--version'], {
        encoding: 'utf8',
      }),
    ).toBe('3.0.0\n');
    // no build leftovers beside the packages
    expect(
      execFileSync('ls', ['-A', out], { encoding: 'utf8' }).split('\n').filter(Boolean).sort(),
    ).toEqual([
      'app-2.0.0.tar.gz',
      'app-2.0.0.tar.gz.sig',
      'app-3.0.0.tar.gz',
      'app-3.0.0.tar.gz.sig',
      'app-4.0.0-broken.tar.gz',
      'app-4.0.0-broken.tar.gz.sig',
    ]);
  });

  it('buildLabPackages makes the key and all three packages in one call', async () => {
    const set = await buildLabPackages({ keyDir: join(dir, 'keys'), outDir: join(dir, 'p') });
    const trusted = await loadTrustedKey(set.keys.publicKeyPath);
    for (const p of [set.v2, set.v3, set.broken]) {
      const v = await verifyPackage({ archivePath: p.packagePath, trustedKeys: [trusted] });
      expect(v.manifest.version).toBe(p.version);
    }
    expect([set.v2.broken, set.v3.broken, set.broken.broken]).toEqual([false, false, true]);
  });

  it('refuses a version that upgrades from nothing', async () => {
    const keys = await ensureLabSigningKey(join(dir, 'keys'));
    expect(labUpgradesFrom('1.0.0')).toEqual([]);
    await expect(
      buildLabPackage({ version: '1.0.0', outDir: dir, signingKey: keys.privateKeyPath }),
    ).rejects.toThrow('would upgrade from nothing');
  });
});
