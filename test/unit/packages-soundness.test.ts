// The signature binds every byte of the archive, under both signature
// formats: a flipped bit anywhere (including bytes gunzip ignores, the
// read-buffer boundaries and the gzip trailer), a truncation, appended data,
// a swapped manifest, a wrong or wrong-type key, a signature of another file
// or a statement moved between fields is refused. v2 verification reads only
// the manifest besides hashing; what it does not inflate, staging checks.
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { READ_CHUNK } from '../../src/packages/hash.js';
import {
  buildPackage,
  generateSigningKeyPair,
  keyIdOf,
  loadPrivateKey,
  loadTrustedKey,
  signArchive,
  type TrustedKey,
  verifyPackage,
} from '../../src/packages/index.js';
import {
  makeSignature,
  SIGNATURE_FORMAT,
  SIGNATURE_FORMAT_V2,
  SignatureError,
  type SignatureFile,
  type SignatureFileV2,
} from '../../src/packages/signing.js';
import { stagePackage } from '../../src/packages/stage.js';

let dir: string;
let trusted: TrustedKey;
let privateKey: KeyObject;
/** A real package spanning three read buffers (9 MiB of incompressible jar). */
let archive: Buffer;
let v2: SignatureFileV2;
let v1: SignatureFile;
/** The same package built as version 2.0.1: same payload, another manifest. */
let other: Buffer;
let otherV2: SignatureFileV2;

async function build(version: string, out: string): Promise<void> {
  await buildPackage({
    version,
    upgradesFrom: ['1.0.0'],
    jarPath: join(dir, 'app.jar'),
    pythonPath: join(dir, 'worker.py'),
    outPath: out,
    createdAt: new Date(0),
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'k-sound-'));
  mkdirSync(join(dir, 'keys'));
  const keys = await generateSigningKeyPair(join(dir, 'keys'));
  privateKey = await loadPrivateKey(keys.privateKeyPath);
  trusted = await loadTrustedKey(keys.publicKeyPath);
  writeFileSync(join(dir, 'app.jar'), randomBytes(9 * 1024 * 1024));
  writeFileSync(join(dir, 'worker.py'), 'print("v2")\n');
  await build('2.0.0', join(dir, 'app.tar.gz'));
  v2 = (await signArchive(join(dir, 'app.tar.gz'), privateKey)).signature as SignatureFileV2;
  archive = readFileSync(join(dir, 'app.tar.gz'));
  v1 = makeSignature({ sha256: v2.sha256, size: v2.size }, privateKey);
  await build('2.0.1', join(dir, 'other.tar.gz'));
  otherV2 = (await signArchive(join(dir, 'other.tar.gz'), privateKey)).signature as SignatureFileV2;
  expect([v2.format, otherV2.format]).toEqual([SIGNATURE_FORMAT_V2, SIGNATURE_FORMAT_V2]);
  other = readFileSync(join(dir, 'other.tar.gz'));
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
/** Writes an archive and a signature file beside it; returns the archive's path. */
function write(bytes: Buffer, sig: object): string {
  const path = join(dir, `case-${++counter}.tar.gz`);
  writeFileSync(path, bytes);
  writeFileSync(`${path}.sig`, JSON.stringify(sig));
  return path;
}

async function refusal(path: string, keys: TrustedKey[] = [trusted]): Promise<Error> {
  try {
    await verifyPackage({ archivePath: path, trustedKeys: keys });
  } catch (err) {
    return err as Error;
  }
  throw new Error(`${path} was accepted`);
}

/** The SignatureError somewhere in the error's cause chain. */
function signatureCode(err: unknown): string | undefined {
  for (let e = err; e; e = (e as { cause?: unknown }).cause)
    if (e instanceof SignatureError) return e.code;
  return undefined;
}

const flip =
  (at: number, bit = 0x01) =>
  (b: Buffer) => {
    const c = Buffer.from(b);
    c[at] = c[at]! ^ bit;
    return c;
  };

describe.each([
  ['v2', (): SignatureFile => v2],
  ['v1', (): SignatureFile => v1],
])('with a %s signature', (_format, sig) => {
  it('verifies the untouched archive', async () => {
    const v = await verifyPackage({ archivePath: write(archive, sig()), trustedKeys: [trusted] });
    expect(v.digest).toEqual({ sha256: v2.sha256, size: archive.length });
    expect(v.manifest.version).toBe('2.0.0');
  });

  const len = () => archive.length;
  const changes: [string, (b: Buffer) => Buffer][] = [
    ['first byte (gzip magic)', flip(0)],
    ['gzip flags', flip(3, 0x80)],
    ['gzip mtime (gunzip ignores it)', flip(5)],
    ['gzip OS byte (gunzip ignores it)', flip(9)],
    ['inside the compressed manifest', flip(40)],
    ['last byte of the first read buffer', (b) => flip(READ_CHUNK - 1)(b)],
    ['first byte of the second read buffer', (b) => flip(READ_CHUNK)(b)],
    ['middle of the third read buffer', (b) => flip(2 * READ_CHUNK + 12345, 0x40)(b)],
    ['gzip CRC32', (b) => flip(len() - 8)(b)],
    ['gzip ISIZE (last byte)', (b) => flip(len() - 1, 0x80)(b)],
    ['truncated to nothing', () => Buffer.alloc(0)],
    ['truncated to 10 bytes', (b) => b.subarray(0, 10)],
    ['truncated at a read-buffer boundary', (b) => b.subarray(0, READ_CHUNK)],
    ['truncated by one byte', (b) => b.subarray(0, len() - 1)],
    ['without its gzip trailer', (b) => b.subarray(0, len() - 8)],
    ['one zero byte appended', (b) => Buffer.concat([b, Buffer.alloc(1)])],
    ['garbage appended (gunzip ignores it)', (b) => Buffer.concat([b, Buffer.from('garbage')])],
    ['a second gzip member appended', (b) => Buffer.concat([b, gzipSync(Buffer.alloc(1024))])],
    ['a whole read buffer of zeros appended', (b) => Buffer.concat([b, Buffer.alloc(READ_CHUNK)])],
    [
      'the same entries with one more zero block of tar padding',
      (b) => gzipSync(Buffer.concat([gunzipSync(b), Buffer.alloc(512)])),
    ],
    ['the other package (same payload, another manifest)', () => other],
  ];
  it.each(changes)('refuses the archive changed: %s', async (_name, change) => {
    const err = await refusal(write(change(archive), sig()));
    expect(err).toBeInstanceOf(SignatureError);
    expect((err as SignatureError).code).toBe('mismatch');
    expect(err.message).toMatch(/^the signature is for another file/);
  });

  it('refuses a key that is not trusted, and a trusted key of another type', async () => {
    const path = write(archive, sig());
    const stranger = generateKeyPairSync('ed25519').publicKey;
    const strangerKey = { keyId: keyIdOf(stranger), key: stranger, source: 'stranger.pub' };
    expect(signatureCode(await refusal(path, [strangerKey]))).toBe('untrusted');
    // hand-built TrustedKeys with the signer's id but another key inside
    for (const type of ['rsa', 'x25519', 'ec'] as const) {
      const pair =
        type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : type === 'ec'
            ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
            : generateKeyPairSync('x25519');
      const err = await refusal(path, [
        { keyId: trusted.keyId, key: pair.publicKey, source: `${type}.pub` },
      ]);
      expect(signatureCode(err)).toBe('untrusted');
      expect(err.message).toContain(`is an ${type} key`);
    }
    // another ed25519 key claiming the signer's id: the signature does not verify
    const impostor = generateKeyPairSync('ed25519').publicKey;
    expect(
      signatureCode(
        await refusal(path, [{ keyId: trusted.keyId, key: impostor, source: 'impostor.pub' }]),
      ),
    ).toBe('invalid');
  });

  it('refuses a signature whose claims were edited (digest, size, signature)', async () => {
    const s = sig();
    // the other package's digest claimed, checked against the other package
    const claimsOther = write(other, { ...s, sha256: otherV2.sha256, size: otherV2.size });
    expect(signatureCode(await refusal(claimsOther))).toBe('invalid');
    const signatureOfOther = write(archive, { ...s, signature: otherV2.signature });
    expect(signatureCode(await refusal(signatureOfOther))).toBe('invalid');
    // v2 checks the statement before reading (invalid); v1 compares the digest first (mismatch)
    const sizeEdited = write(archive, { ...s, size: s.size + 1 });
    expect(['invalid', 'mismatch']).toContain(signatureCode(await refusal(sizeEdited)));
  });
});

describe('v2: the manifest statement', () => {
  it('refuses a swapped manifest digest or manifest signature', async () => {
    const edits: object[] = [
      { ...v2, manifestSha256: otherV2.manifestSha256, manifestSize: otherV2.manifestSize },
      { ...v2, manifestSignature: otherV2.manifestSignature },
      // the statements are domain-separated: neither signature stands for the other
      { ...v2, manifestSignature: v2.signature },
      { ...v2, signature: v2.manifestSignature },
    ];
    for (const edited of edits)
      expect(signatureCode(await refusal(write(archive, edited)))).toBe('invalid');
  });

  it('refuses a signer that signed the wrong manifest digest or size', async () => {
    const archiveDigest = { sha256: v2.sha256, size: v2.size };
    for (const manifest of [
      { sha256: otherV2.manifestSha256, size: v2.manifestSize },
      { sha256: v2.manifestSha256, size: v2.manifestSize + 1 },
    ]) {
      const err = await refusal(write(archive, makeSignature(archiveDigest, privateKey, manifest)));
      expect(signatureCode(err)).toBe('mismatch');
      expect(err.message).toMatch(/contents are refused: the signature is for another package/);
    }
  });

  it('refuses unknown formats and fields instead of ignoring them', async () => {
    for (const edited of [
      { ...v2, format: 'pairshift-signature/v3' },
      { ...v2, note: 'extra' },
      { ...v1, manifestSha256: v2.manifestSha256 },
    ])
      expect(signatureCode(await refusal(write(archive, edited)))).toBe('malformed');
  });

  it('a v2 signature cut down to v1 still verifies, with every entry checked', async () => {
    // The v1 fields of a v2 file are a valid v1 signature of the same bytes;
    // using them only loses the attestation, so the verifier does more work.
    const { manifestSha256, manifestSize, manifestSignature, ...rest } = v2;
    expect([manifestSha256, manifestSize, manifestSignature].every(Boolean)).toBe(true);
    const v = await verifyPackage({
      archivePath: write(archive, { ...rest, format: SIGNATURE_FORMAT }),
      trustedKeys: [trusted],
    });
    expect(v.digest.sha256).toBe(v2.sha256);
  });

  it('inflates only the manifest: a lying signer is caught by staging, and by v1 checks', async () => {
    // A trusted signer attests (v2) an archive whose jar does not match the
    // manifest. Verification hashes every byte but trusts the attestation for
    // the entries; staging re-reads and re-hashes them and refuses.
    const tar = gunzipSync(archive);
    const at = tar.length - 4096; // inside the jar's data
    tar[at] = tar[at]! ^ 1;
    const bad = gzipSync(tar);
    const signed = await signArchive(write(bad, {}), privateKey);
    expect(signed.signature.format).toBe(SIGNATURE_FORMAT); // signArchive checked, so v1
    const v1Path = signed.sigPath.replace(/\.sig$/, '');
    expect((await refusal(v1Path)).message).toMatch(
      /contents are refused: payload\/app\.jar has sha256/,
    );
    // v2 by a signer who did not check (only makeSignature by hand does that)
    const lying = makeSignature(
      { sha256: signed.signature.sha256, size: signed.signature.size },
      privateKey,
      { sha256: v2.manifestSha256, size: v2.manifestSize },
    );
    const path = write(bad, lying);
    await expect(
      verifyPackage({ archivePath: path, trustedKeys: [trusted] }),
    ).resolves.toMatchObject({ manifest: { version: '2.0.0' } });
    const work = join(dir, `work-${counter}`);
    mkdirSync(work);
    await expect(stagePackage({ path, trustedKeys: [trusted], workDir: work })).rejects.toThrow(
      /payload\/app\.jar has sha256/,
    );
    expect(readdirSync(work)).toEqual([]);
  });
});
