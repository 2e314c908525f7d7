// ed25519 signing of package archives.
//
// The detached signature binds the exact archive bytes through their SHA-256
// and length: the key signs the statement
//   "pairshift-package-signature-v1\nsha256 <hex>\nsize <bytes>\n".
// Pure ed25519 needs the whole message in memory (and hashes it twice when
// signing), which for a several-hundred-MB package means holding it all in RAM;
// pre-hashing (as minisign does) lets sign and verify stream the file once,
// and the same pass checks the signature and feeds the manifest check.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type FileDigest, hashFile } from './hash.js';

export const SIGNATURE_FORMAT = 'pairshift-signature/v1';
export const SIGNATURE_FORMAT_V2 = 'pairshift-signature/v2';
export const PRIVATE_KEY_FILE = 'package-signing.key';
export const PUBLIC_KEY_FILE = 'package-signing.pub';
/** A signature file is a few hundred bytes; larger input is refused unread. */
export const MAX_SIGNATURE_BYTES = 64 * 1024;

/** A refused signature; `code` is stable (malformed, untrusted, mismatch, invalid). */
export class SignatureError extends Error {
  constructor(
    readonly code: 'malformed' | 'untrusted' | 'mismatch' | 'invalid',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'SignatureError';
  }
}

export function signatureStatement(digest: FileDigest): Buffer {
  return Buffer.from(
    `pairshift-package-signature-v1\nsha256 ${digest.sha256}\nsize ${digest.size}\n`,
    'utf8',
  );
}

/** Short, stable name of a public key: the first 16 hex digits of SHA-256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export interface TrustedKey {
  keyId: string;
  key: KeyObject;
  source: string;
}

export interface SigningKeyPaths {
  privateKeyPath: string;
  publicKeyPath: string;
  keyId: string;
}

/** Writes a fresh ed25519 key pair (PEM; private key mode 0600) into dir; never overwrites. */
export async function generateSigningKeyPair(dir: string): Promise<SigningKeyPaths> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyPath = join(dir, PRIVATE_KEY_FILE);
  const publicKeyPath = join(dir, PUBLIC_KEY_FILE);
  const privPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // O_EXCL: refuse to replace a key someone may already trust or sign with.
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
  for (const p of [privateKeyPath, publicKeyPath]) {
    if (await exists(p))
      throw new Error(`${p} already exists; refusing to overwrite a signing key`);
  }
  const fh = await open(privateKeyPath, flags, 0o600);
  try {
    await fh.writeFile(privPem);
    await fh.chmod(0o600); // the umask may have narrowed it, never widened; be explicit
  } finally {
    await fh.close();
  }
  await writeFile(publicKeyPath, pubPem, { mode: 0o644, flag: 'wx' });
  return { privateKeyPath, publicKeyPath, keyId: keyIdOf(publicKey) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

function describeKeyType(key: KeyObject): string {
  return key.asymmetricKeyType ?? key.type;
}

/** Loads an ed25519 private key; refuses other key types and files others can read. */
export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const st = await stat(path).catch((err: unknown) => {
    throw new Error(`cannot read signing key ${path}`, { cause: err });
  });
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `signing key ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(await readFile(path));
  } catch (err) {
    throw new Error(`${path} is not a PEM private key`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(
      `signing key ${path} is an ${describeKeyType(key)} key; package signatures use ed25519 only`,
    );
  }
  return key;
}

/** Parses a trusted public key (PEM text); refuses private keys and non-ed25519 keys. */
export function parseTrustedKey(pem: string | Buffer, source: string): TrustedKey {
  const text = pem.toString();
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new Error(`trusted key ${source} is a private key; give the public key (.pub) instead`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch (err) {
    throw new Error(`trusted key ${source} is not a PEM public key`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(
      `trusted key ${source} is an ${describeKeyType(key)} key; package signatures are ed25519 only`,
    );
  }
  return { key, keyId: keyIdOf(key), source };
}

export async function loadTrustedKey(path: string): Promise<TrustedKey> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (err) {
    throw new Error(`cannot read trusted key ${path}`, { cause: err });
  }
  return parseTrustedKey(pem, path);
}

const sigField = z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 ed25519 signature');
const v1Fields = {
  algorithm: z.literal('ed25519'),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().min(0),
  signature: sigField,
};
const signatureV1Schema = z.object({ format: z.literal(SIGNATURE_FORMAT), ...v1Fields }).strict();
/**
 * v2 = v1 (same statement over the archive, so openssl checks still work)
 * plus a second signature over a statement that names the archive AND its
 * manifest and says the signer checked every entry against that manifest
 * before signing. A verifier still hashes the archive and reads every entry
 * with the strict reader, but need not re-hash each entry (docs/packages.md).
 */
const signatureV2Schema = z
  .object({
    format: z.literal(SIGNATURE_FORMAT_V2),
    ...v1Fields,
    manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
    manifestSize: z.number().int().min(0),
    manifestSignature: sigField,
  })
  .strict();
const signatureFileSchema = z.discriminatedUnion('format', [signatureV1Schema, signatureV2Schema]);

export type SignatureFile = z.infer<typeof signatureFileSchema>;
export type SignatureFileV2 = z.infer<typeof signatureV2Schema>;

/** The v2 statement: what the manifest signature signs. */
export function manifestStatement(archive: FileDigest, manifest: FileDigest): Buffer {
  return Buffer.from(
    'pairshift-package-signature-v2\n' +
      `sha256 ${archive.sha256}\nsize ${archive.size}\n` +
      `manifest-sha256 ${manifest.sha256}\nmanifest-size ${manifest.size}\n` +
      'every entry checked against the manifest\n',
    'utf8',
  );
}

/** A v1 signature, or v2 when the manifest's digest is given. */
export function makeSignature(
  digest: FileDigest,
  privateKey: KeyObject,
  manifest?: FileDigest,
): SignatureFile {
  const publicKey = createPublicKey(privateKey);
  const v1 = {
    algorithm: 'ed25519' as const,
    keyId: keyIdOf(publicKey),
    sha256: digest.sha256,
    size: digest.size,
    signature: sign(null, signatureStatement(digest), privateKey).toString('base64'),
  };
  if (!manifest) return { format: SIGNATURE_FORMAT, ...v1 };
  return {
    format: SIGNATURE_FORMAT_V2,
    ...v1,
    manifestSha256: manifest.sha256,
    manifestSize: manifest.size,
    manifestSignature: sign(null, manifestStatement(digest, manifest), privateKey).toString(
      'base64',
    ),
  };
}

/** Signs an archive file: writes `<archive>.sig` (or sigPath) and returns it. */
export async function signArchive(
  archivePath: string,
  privateKey: KeyObject,
  sigPath = `${archivePath}.sig`,
): Promise<{ sigPath: string; signature: SignatureFile }> {
  const digest = await hashFile(archivePath).catch((err: unknown) => {
    throw new Error(`cannot read package ${archivePath}`, { cause: err });
  });
  // v2 (the attestation that every entry matches the manifest) only after
  // checking exactly that; an archive that fails the check gets a v1
  // signature, so verifiers still check (and refuse) its entries one by one.
  // (imported lazily: verify.ts imports this module)
  const { checkPackageContents } = await import('./verify.js');
  const contents = await checkPackageContents(archivePath).catch(() => undefined);
  const sameBytes =
    contents?.digest.sha256 === digest.sha256 && contents.digest.size === digest.size;
  const signature = makeSignature(
    digest,
    privateKey,
    sameBytes ? contents.manifestDigest : undefined,
  );
  await writeFile(sigPath, `${JSON.stringify(signature, null, 2)}\n`, { mode: 0o644 });
  return { sigPath, signature };
}

export function parseSignatureFile(bytes: Buffer, source: string): SignatureFile {
  if (bytes.length > MAX_SIGNATURE_BYTES)
    throw new SignatureError('malformed', `signature ${source} is too large to be a signature`);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new SignatureError(
      'malformed',
      `signature ${source} is not a pairshift signature file (not JSON)`,
      {
        cause: err,
      },
    );
  }
  const parsed = signatureFileSchema.safeParse(raw);
  if (!parsed.success) {
    const what = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
      .join('; ');
    throw new SignatureError('malformed', `signature ${source} is malformed: ${what}`);
  }
  return parsed.data;
}

/** The trusted ed25519 key that made the signature, or a SignatureError. */
export function findSigner(sig: SignatureFile, trusted: readonly TrustedKey[]): TrustedKey {
  if (trusted.length === 0) throw new Error('no trusted keys given; cannot verify the signature');
  const signer = trusted.find((t) => t.keyId === sig.keyId);
  if (!signer) {
    throw new SignatureError(
      'untrusted',
      `the package is signed by key ${sig.keyId}, which is not among the trusted keys (${trusted
        .map((t) => t.keyId)
        .join(', ')})`,
    );
  }
  // A TrustedKey built by hand (not via parseTrustedKey) could hold any key type.
  if (signer.key.asymmetricKeyType !== 'ed25519')
    throw new SignatureError(
      'untrusted',
      `trusted key ${signer.keyId} is an ${describeKeyType(signer.key)} key; package signatures are ed25519 only`,
    );
  return signer;
}

/**
 * Checks every ed25519 signature in the file over the digests it claims
 * (the archive's, and for v2 the manifest's). Does not look at the archive:
 * the caller still compares the claims with what it reads.
 */
export function checkSignatureClaims(
  sig: SignatureFile,
  trusted: readonly TrustedKey[],
): TrustedKey {
  const signer = findSigner(sig, trusted);
  const claims: [Buffer, string][] = [
    [signatureStatement({ sha256: sig.sha256, size: sig.size }), sig.signature],
  ];
  if (sig.format === SIGNATURE_FORMAT_V2)
    claims.push([
      manifestStatement(
        { sha256: sig.sha256, size: sig.size },
        { sha256: sig.manifestSha256, size: sig.manifestSize },
      ),
      sig.manifestSignature,
    ]);
  for (const [statement, signature] of claims)
    if (!verify(null, statement, signer.key, Buffer.from(signature, 'base64')))
      throw new SignatureError(
        'invalid',
        `the signature does not verify with trusted key ${signer.keyId}`,
      );
  return signer;
}

/**
 * Checks a signature against the archive's actual digest and the trusted
 * keys. Returns the key that signed; throws saying precisely what failed.
 */
export function checkSignature(
  sig: SignatureFile,
  actual: FileDigest,
  trusted: readonly TrustedKey[],
): TrustedKey {
  if (trusted.length === 0) throw new Error('no trusted keys given; cannot verify the signature');
  if (sig.sha256 !== actual.sha256 || sig.size !== actual.size) {
    throw new SignatureError(
      'mismatch',
      `the signature is for another file (sha256 ${sig.sha256.slice(0, 16)}…, ${sig.size} bytes), ` +
        `not this archive (sha256 ${actual.sha256.slice(0, 16)}…, ${actual.size} bytes)`,
    );
  }
  return checkSignatureClaims(sig, trusted);
}
