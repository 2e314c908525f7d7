// stagePackage: a verified package extracted into a private folder, only the
// listed files, each re-hashed; and every way it must refuse, leaving nothing
// behind in the work folder.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateSigningKeyPair,
  loadTrustedKey,
  type TrustedKey,
  verifyPackage,
} from '../../src/packages/index.js';
import { payloadKind, placeInside, stagePackage } from '../../src/packages/stage.js';
import { buildSignedPackage, manifestFor, signedHandArchive } from '../support/signed-package.js';

let dir: string;
let work: string;
let trusted: TrustedKey;
let privateKeyPath: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k-stage-'));
  work = join(dir, 'work');
  mkdirSync(work);
  mkdirSync(join(dir, 'keys'));
  const keys = await generateSigningKeyPair(join(dir, 'keys'));
  privateKeyPath = keys.privateKeyPath;
  trusted = await loadTrustedKey(keys.publicKeyPath);
  writeFileSync(join(dir, 'app.jar'), Buffer.alloc(200_000, 7));
  writeFileSync(join(dir, 'worker.py'), 'print("v2")\n');
  mkdirSync(join(dir, 'config', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'config', 'release.properties'), 'release.version=2.0.0\n');
  writeFileSync(join(dir, 'config', 'sub', 'x.properties'), 'x=1\n', { mode: 0o600 });
  mkdirSync(join(dir, 'migrations'));
  writeFileSync(join(dir, 'migrations', '002_idx.sql'), 'CREATE INDEX IF NOT EXISTS i ON t (a);\n');
  writeFileSync(join(dir, 'migrations', '001_t.sql'), 'CREATE TABLE IF NOT EXISTS t (a int);\n');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function buildSigned(name = 'app-2.0.0.tar.gz', jarByte = 7): Promise<string> {
  writeFileSync(join(dir, 'app.jar'), Buffer.alloc(200_000, jarByte));
  return buildSignedPackage(dir, privateKeyPath, join(dir, name));
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Nothing left in the work folder: every error path cleaned up. */
const workIsEmpty = () => expect(readdirSync(work)).toEqual([]);

describe('stagePackage', () => {
  it('extracts exactly the listed files into a private folder and re-hashes them', async () => {
    const path = await buildSigned();
    const staged = await stagePackage({ path, trustedKeys: [trusted], workDir: work });
    expect(staged.dir.startsWith(`${work}/`)).toBe(true);
    expect(statSync(staged.dir).mode & 0o777).toBe(0o700);
    expect(staged.version).toBe('2.0.0');
    expect(staged.upgradesFrom).toEqual(['1.0.0']);
    const byKind = Object.fromEntries(staged.payload.map((p) => [p.target ?? p.kind, p]));
    expect(Object.keys(byKind).sort()).toEqual(
      ['jar', 'python', 'release.properties', 'sub/x.properties'].sort(),
    );
    expect(readFileSync(byKind.jar!.path)).toEqual(Buffer.alloc(200_000, 7));
    expect(byKind.jar!.sha256).toBe(sha(Buffer.alloc(200_000, 7)));
    expect(statSync(byKind.jar!.path).mode & 0o777).toBe(0o600);
    expect(byKind['sub/x.properties']!.kind).toBe('config');
    expect(staged.migrations.map((m) => m.name)).toEqual(['001_t.sql', '002_idx.sql']);
    expect(staged.migrations[0]!.checksum).toBe(sha('CREATE TABLE IF NOT EXISTS t (a int);\n'));
    // nothing but the manifest's files (no manifest.json copy, no strays)
    const files: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
        else files.push(`${rel}${e.name}`);
      }
    };
    walk(staged.dir, '');
    expect(files.sort()).toEqual(staged.manifest.files.map((f) => f.path).sort());

    await staged.cleanup();
    expect(existsSync(staged.dir)).toBe(false);
    await staged.cleanup(); // twice is fine
    workIsEmpty();
  });

  it('refuses a tampered package and leaves nothing behind', async () => {
    const path = await buildSigned();
    const bytes = readFileSync(path);
    bytes[bytes.length - 20] = (bytes[bytes.length - 20]! + 1) % 256;
    writeFileSync(path, bytes);
    await expect(stagePackage({ path, trustedKeys: [trusted], workDir: work })).rejects.toThrow(
      /signature is for another file/,
    );
    workIsEmpty();
  });

  it('refuses a package signed by an untrusted key', async () => {
    const path = await buildSigned();
    mkdirSync(join(dir, 'other'));
    const other = await generateSigningKeyPair(join(dir, 'other'));
    await expect(
      stagePackage({
        path,
        trustedKeys: [await loadTrustedKey(other.publicKeyPath)],
        workDir: work,
      }),
    ).rejects.toThrow(/not among the trusted keys/);
    workIsEmpty();
  });

  it('refuses a package swapped on disk after verification, removing what it extracted', async () => {
    const path = await buildSigned();
    const swapped = await buildSigned('other.tar.gz', 9);
    const verifiedFirst = await verifyPackage({ archivePath: path, trustedKeys: [trusted] });
    await expect(
      stagePackage({
        path: swapped,
        trustedKeys: [trusted],
        workDir: work,
        // the verifier saw the good file; the extraction reads the swapped one
        verify: async () => verifiedFirst,
      }),
    ).rejects.toThrow(/payload\/app.jar has sha256|changed after it was verified/);
    workIsEmpty();
  });

  it('refuses a payload file pairshift cannot place, before extracting anything', async () => {
    const jar = Buffer.from('jar');
    const extra = Buffer.from('surprise');
    const files = [
      { path: 'payload/app.jar', data: jar },
      { path: 'payload/extra.bin', data: extra },
    ];
    const path = await signedHandArchive(dir, privateKeyPath, [
      { path: 'manifest.json', data: manifestFor(files) },
      ...files,
    ]);
    await expect(stagePackage({ path, trustedKeys: [trusted], workDir: work })).rejects.toThrow(
      /payload\/extra.bin: pairshift does not know where/,
    );
    workIsEmpty();
  });

  it('bounds sizes: an entry over the limit is refused and nothing is left', async () => {
    const path = await buildSigned();
    await expect(
      stagePackage({ path, trustedKeys: [trusted], workDir: work, limits: { maxEntrySize: 1000 } }),
    ).rejects.toThrow(/limit|larger|exceed/i);
    workIsEmpty();
  });

  it('says so when the work folder cannot hold a staging folder', async () => {
    const path = await buildSigned();
    await expect(
      stagePackage({ path, trustedKeys: [trusted], workDir: join(dir, 'missing') }),
    ).rejects.toThrow(/cannot create a staging folder in .*missing: ENOENT/);
  });

  it('places archive paths only inside the folder; a root key in the payload is refused', () => {
    expect(placeInside('/tmp/s', 'payload/app.jar')).toBe('/tmp/s/payload/app.jar');
    expect(() => placeInside('/tmp/s', '../x')).toThrow(/outside/);
    expect(() => placeInside('/tmp/s', 'payload/../../x')).toThrow(/outside/);
    expect(payloadKind('payload/config/root.key')).toMatch(/root key/);
    expect(payloadKind('payload/config/a/b.conf')).toEqual({ kind: 'config', target: 'a/b.conf' });
  });
});

describe("the pair's own paths (issue 11.1)", () => {
  const protect = (rootKey: string) => ({
    configDir: '/etc/app',
    paths: [
      { path: rootKey, what: 'the root key (paths.rootKey)' },
      { path: '/etc/app/backups', what: 'the backup folder (paths.backupDir)' },
    ],
  });
  it.each([
    ['master.key', '/etc/app/master.key'],
    ['keys/k.bin', '/etc/app/keys/k.bin'],
    ['keys/k.bin', '/etc/app/keys'],
    ['backups/x', '/etc/app/root.key'],
  ])('refuses payload/config/%s when the pair protects %s', async (file, rootKey) => {
    const target = join(dir, 'config', file);
    mkdirSync(join(target, '..'), { recursive: true });
    writeFileSync(target, 'not a key\n');
    const path = await buildSigned();
    await expect(
      stagePackage({ path, trustedKeys: [trusted], workDir: work, protect: protect(rootKey) }),
    ).rejects.toThrow(`payload/config/${file}: would overwrite the`);
    workIsEmpty();
  });

  it('stages the same package for a pair whose root key has another name', async () => {
    writeFileSync(join(dir, 'config', 'master.key'), 'not a key\n');
    const path = await buildSigned();
    const staged = await stagePackage({
      path,
      trustedKeys: [trusted],
      workDir: work,
      protect: protect('/etc/app/root.key'),
    });
    expect(staged.payload.some((p) => p.target === 'master.key')).toBe(true);
    await staged.cleanup();
  });
});
