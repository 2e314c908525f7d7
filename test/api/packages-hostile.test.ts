// The hostile package catalogue: each upload is refused with its status and
// stable code, nothing lands outside the upload folder, and the upload folder
// is gone afterwards. Uploads go over real HTTP to a small express app that
// calls receivePackage (the real API maps the same errors to problem+json).
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import express from 'express';
import { PackageRejected, receivePackage } from '../../src/api/upload.js';
import {
  MANIFEST_FORMAT,
  type ManifestFile,
  serializeManifest,
} from '../../src/packages/manifest.js';
import {
  keyIdOf,
  makeSignature,
  parseTrustedKey,
  type TrustedKey,
} from '../../src/packages/signing.js';
import { BLOCK } from '../../src/packages/tar.js';
import { END, padded, rawHeader } from '../support/raw-tar.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

let root: string;
let work: string;
let server: Server;
let base: string;
let signingKey: KeyObject;
let trusted: TrustedKey;
let trustedKeys: TrustedKey[];
let installed: Record<string, string | null>;
const MAX_BYTES = 8 * 1024 * 1024;
/** A name no test package may create anywhere (checked after every test). */
const EVIL = `pairshift-evil-${process.pid}`;

beforeAll(async () => {
  const pair = generateKeyPairSync('ed25519');
  signingKey = pair.privateKey;
  trusted = parseTrustedKey(pair.publicKey.export({ type: 'spki', format: 'pem' }), 'test.pub');
  const app = express();
  app.post('/upload', async (req, res) => {
    try {
      const got = await receivePackage(req, {
        workDir: work,
        trustedKeys,
        maxBytes: MAX_BYTES,
        installedVersion: async (p) => installed[p] ?? null,
        // pair-a keeps its root key under another name than root.key, and its
        // backups inside the config folder: both may never come in a package.
        protection: async (p) =>
          p === 'pair-a'
            ? {
                configDir: '/etc/app',
                paths: [
                  { path: '/etc/app/master.key', what: 'the root key (paths.rootKey)' },
                  { path: '/etc/app/backups', what: 'the backup folder (paths.backupDir)' },
                ],
              }
            : null,
      });
      const files = readdirSync(got.dir, { recursive: true }).map(String).sort();
      const inside =
        got.packagePath.startsWith(`${got.dir}/`) && got.sigPath.startsWith(`${got.dir}/`);
      const mode = statSync(got.dir).mode & 0o777;
      await got.cleanup();
      res.status(201).json({
        version: got.version,
        pair: got.pair,
        upgradesFrom: got.upgradesFrom,
        files,
        inside,
        mode,
      });
    } catch (err) {
      // An error before the body was read fully: close the connection so the
      // rest of the body is not read (the API does the same).
      res.set('Connection', 'close');
      if (err instanceof PackageRejected)
        res.status(err.status).json({ code: err.code, detail: err.detail, message: err.message });
      else res.status(500).json({ message: String(err) });
    }
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'k-upload-'));
  work = join(root, 'work');
  mkdirSync(work);
  trustedKeys = [trusted];
  installed = { 'pair-a': '1.0.0' };
});

afterEach(() => {
  // nothing left inside the upload area, nothing created beside it
  expect(readdirSync(work)).toEqual([]);
  expect(readdirSync(root)).toEqual(['work']);
  expect(existsSync(join(tmpdir(), EVIL))).toBe(false);
  expect(existsSync(join('/', EVIL))).toBe(false);
  rmSync(root, { recursive: true, force: true });
});

// ------------------------------------------------------------- archives

interface File {
  path: string;
  data: Buffer;
  mode?: number;
}

function entry(f: File, over: Parameters<typeof rawHeader>[0] | object = {}): Buffer {
  return Buffer.concat([
    rawHeader({ name: f.path, size: f.data.length, mode: f.mode ?? 0o644, ...over }),
    padded(f.data),
  ]);
}

function listed(f: File): ManifestFile {
  return { path: f.path, sha256: sha(f.data), size: f.data.length, mode: f.mode ?? 0o644 };
}

function manifestEntry(files: ManifestFile[], version = '2.0.0', upgradesFrom = ['1.0.0']): Buffer {
  const m = serializeManifest({
    format: MANIFEST_FORMAT,
    name: 'app',
    version,
    upgradesFrom,
    files,
    migrations: [],
    createdAt: '2026-11-29T13:00:00.000Z',
  });
  return entry({ path: 'manifest.json', data: m });
}

const JAR: File = { path: 'payload/app.jar', data: Buffer.alloc(5000, 7) };
const PY: File = { path: 'payload/worker.py', data: Buffer.from('print("v2")\n') };

/** A well-formed package, optionally with extra entries (listed) and raw blocks. */
function goodTar(
  opts: { version?: string; upgradesFrom?: string[]; extra?: Buffer[]; extraListed?: File[] } = {},
): Buffer {
  const files = [JAR, PY, ...(opts.extraListed ?? [])];
  return Buffer.concat([
    manifestEntry(files.map(listed), opts.version, opts.upgradesFrom),
    ...files.map((f) => entry(f)),
    ...(opts.extra ?? []),
    END,
  ]);
}

function signWith(archive: Buffer, key: KeyObject = signingKey): Buffer {
  return Buffer.from(
    JSON.stringify(makeSignature({ sha256: sha(archive), size: archive.length }, key)),
  );
}

/** A v2 signature (archive + manifest attestation) over the archive's first entry. */
function signV2(archive: Buffer, key: KeyObject = signingKey): Buffer {
  const tar = gunzipSync(archive);
  const size = Number.parseInt(tar.subarray(124, 135).toString('latin1'), 8);
  const manifest = tar.subarray(BLOCK, BLOCK + size);
  const sig = makeSignature({ sha256: sha(archive), size: archive.length }, key, {
    sha256: sha(manifest),
    size: manifest.length,
  });
  expect(sig.format).toBe('pairshift-signature/v2');
  return Buffer.from(JSON.stringify(sig));
}

// ------------------------------------------------------------- HTTP

interface Part {
  name: string;
  data: Buffer | string;
  filename?: string;
}

const BOUNDARY = 'pairshift-test-boundary-7f3a';

function form(parts: Part[], boundary = BOUNDARY): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const fn = p.filename !== undefined ? `; filename="${p.filename}"` : '';
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${fn}\r\n`),
      Buffer.from(
        p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n\r\n' : '\r\n',
      ),
      Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function packageForm(archive: Buffer, sig: Buffer = signWith(archive), pair = 'pair-a'): Buffer {
  return form([
    { name: 'pair', data: pair },
    { name: 'reason', data: 'test' },
    { name: 'package', data: archive, filename: 'app-2.0.0.tar.gz' },
    { name: 'signature', data: sig, filename: 'app-2.0.0.tar.gz.sig' },
  ]);
}

interface Reply {
  status: number;
  body: {
    code?: string;
    detail?: string;
    message?: string;
    version?: string;
    files?: string[];
    inside?: boolean;
    mode?: number;
  };
}

/** POSTs a body; `chunked` sends it without Content-Length. Write errors after a reply are expected. */
function post(
  body: Buffer,
  opts: { contentType?: string; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {
      'content-type': opts.contentType ?? `multipart/form-data; boundary=${BOUNDARY}`,
    };
    if (!opts.chunked) headers['content-length'] = body.length;
    const req = httpRequest(`${base}/upload`, { method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString()) }),
      );
      res.on('error', reject);
    });
    let replied = false;
    req.on('response', () => {
      replied = true;
    });
    req.on('error', (err) => {
      if (!replied) reject(err);
    });
    // 256 KiB pieces so a streaming refusal can happen before the end
    for (let off = 0; off < body.length; off += 256 * 1024)
      req.write(body.subarray(off, off + 256 * 1024));
    req.end();
  });
}

async function refused(
  body: Buffer,
  status: number,
  code: string,
  detail?: string,
  opts = {},
): Promise<Reply> {
  const r = await post(body, opts);
  expect({ status: r.status, code: r.body.code }).toEqual({ status, code });
  // the server's folders are not the client's business
  expect(r.body.message).not.toContain(root);
  if (detail !== undefined) expect(r.body.detail).toBe(detail);
  return r;
}

// ------------------------------------------------------------- cases

describe('package upload: accepted', () => {
  it('verifies a valid package in a private upload folder, extracts nothing, cleans up', async () => {
    const r = await post(packageForm(gzipSync(goodTar())));
    expect(r.body.message).toBeUndefined();
    expect(r.status).toBe(201);
    expect(r.body.version).toBe('2.0.0');
    // Staging is the runtime's, once: the upload keeps only what was sent.
    expect(r.body.files).toEqual(['package.sig', 'package.tar.gz']);
    expect(r.body.inside).toBe(true);
    expect(r.body.mode).toBe(0o700);
  });

  it('accepts an upload sent chunked (no Content-Length) and a pair with no known version', async () => {
    installed = {};
    const r = await post(packageForm(gzipSync(goodTar())), { chunked: true });
    expect(r.status).toBe(201);
  });
});

describe('package upload: hostile archives (signed by a trusted key)', () => {
  const hostile: [string, () => Buffer, string, string | undefined][] = [
    [
      '../ traversal',
      () => goodTar({ extra: [entry({ path: `../${EVIL}`, data: Buffer.from('x') })] }),
      'package-unsafe-entry',
      'unsafe-path',
    ],
    [
      'deep ../ traversal',
      () => goodTar({ extra: [entry({ path: `payload/../../${EVIL}`, data: Buffer.from('x') })] }),
      'package-unsafe-entry',
      'unsafe-path',
    ],
    [
      'prefix-field traversal',
      () =>
        goodTar({ extra: [entry({ path: EVIL, data: Buffer.from('x') }, { prefix: '../..' })] }),
      'package-unsafe-entry',
      'unsafe-path',
    ],
    [
      'absolute path',
      () => goodTar({ extra: [entry({ path: `/tmp/${EVIL}`, data: Buffer.from('x') })] }),
      'package-unsafe-entry',
      'unsafe-path',
    ],
    [
      'symlink',
      () =>
        goodTar({
          extra: [rawHeader({ name: 'payload/link', type: '2', linkname: '/etc/passwd' })],
        }),
      'package-unsafe-entry',
      'symlink',
    ],
    [
      'hardlink',
      () =>
        goodTar({
          extra: [rawHeader({ name: 'payload/link', type: '1', linkname: '/etc/shadow' })],
        }),
      'package-unsafe-entry',
      'hardlink',
    ],
    [
      'character device',
      () => goodTar({ extra: [rawHeader({ name: 'payload/null', type: '3' })] }),
      'package-unsafe-entry',
      'device',
    ],
    [
      'block device',
      () => goodTar({ extra: [rawHeader({ name: 'payload/sda', type: '4' })] }),
      'package-unsafe-entry',
      'device',
    ],
    [
      'FIFO',
      () => goodTar({ extra: [rawHeader({ name: 'payload/fifo', type: '6' })] }),
      'package-unsafe-entry',
      'unsupported-type',
    ],
    [
      'directory entry',
      () => goodTar({ extra: [rawHeader({ name: 'payload/dir/', type: '5' })] }),
      'package-unsafe-entry',
      'unsupported-type',
    ],
    [
      'pax header',
      () => goodTar({ extra: [rawHeader({ name: 'PaxHeader', type: 'x' })] }),
      'package-unsafe-entry',
      'unsupported-type',
    ],
    [
      'setuid bit',
      () =>
        goodTar({ extra: [entry({ path: 'payload/suid', data: Buffer.from('x'), mode: 0o4755 })] }),
      'package-unsafe-entry',
      'bad-mode',
    ],
    [
      'duplicate path',
      () => goodTar({ extra: [entry(PY)] }),
      'package-unsafe-entry',
      'duplicate-path',
    ],
    [
      'declared size bomb (8 GiB header, no data)',
      () => goodTar({ extra: [rawHeader({ name: 'payload/big', sizeField: '77777777777\0' })] }),
      'package-too-large',
      'entry-too-large',
    ],
    [
      'truncated tar inside valid gzip',
      () => goodTar().subarray(0, 3 * BLOCK + 100),
      'package-corrupt',
      'truncated',
    ],
    [
      'trailing garbage after the end marker',
      () => Buffer.concat([goodTar(), Buffer.from('garbage')]),
      'package-corrupt',
      'trailing-data',
    ],
    [
      'bad header checksum',
      () => {
        const t = goodTar();
        t[BLOCK * 3 + 5] = t[BLOCK * 3 + 5]! ^ 1;
        return t;
      },
      'package-corrupt',
      undefined,
    ],
    [
      'manifest not first',
      () => Buffer.concat([entry(JAR), manifestEntry([listed(JAR), listed(PY)]), entry(PY), END]),
      'package-contents-mismatch',
      undefined,
    ],
    [
      'undeclared file',
      () =>
        goodTar({
          extra: [entry({ path: 'payload/config/extra.conf', data: Buffer.from('x=1\n') })],
        }),
      'package-contents-mismatch',
      undefined,
    ],
    [
      'hash mismatch',
      () =>
        Buffer.concat([
          manifestEntry([listed(JAR), listed(PY)]),
          entry({ ...JAR, data: Buffer.alloc(5000, 8) }),
          entry(PY),
          END,
        ]),
      'package-contents-mismatch',
      undefined,
    ],
    [
      'listed file missing',
      () => Buffer.concat([manifestEntry([listed(JAR), listed(PY)]), entry(JAR), END]),
      'package-contents-mismatch',
      undefined,
    ],
    ['no manifest at all (empty archive)', () => END, 'package-contents-mismatch', undefined],
    [
      'a root key in the payload',
      () =>
        goodTar({
          extraListed: [{ path: 'payload/config/root.key', data: Buffer.from('secret') }],
        }),
      'package-not-installable',
      undefined,
    ],
    [
      "the pair's root key under its own name (paths.rootKey: /etc/app/master.key)",
      () =>
        goodTar({
          extraListed: [{ path: 'payload/config/master.key', data: Buffer.from('secret') }],
        }),
      'package-not-installable',
      undefined,
    ],
    [
      'a file inside a folder the pair declares (paths.backupDir under the config folder)',
      () =>
        goodTar({
          extraListed: [{ path: 'payload/config/backups/set-1/jar', data: Buffer.from('x') }],
        }),
      'package-not-installable',
      undefined,
    ],
    [
      'a file pairshift cannot place',
      () => goodTar({ extraListed: [{ path: 'payload/bin/tool', data: Buffer.from('x') }] }),
      'package-not-installable',
      undefined,
    ],
  ];
  it.each(hostile)('%s', async (_name, make, code, detail) => {
    const archive = gzipSync(make());
    await refused(packageForm(archive), 422, code, detail);
  });

  // v2 verification inflates only the manifest and trusts the signer's
  // attestation for the entries; a signer who attested without checking
  // (signArchive never does) is still caught by staging, with the same codes.
  it.each(hostile)(
    '%s, under a v2 signature that attests it',
    async (_name, make, code, detail) => {
      const archive = gzipSync(make());
      await refused(packageForm(archive, signV2(archive)), 422, code, detail);
    },
  );

  it('100 000 entries: refused at the entry limit', async () => {
    const empty: File[] = [];
    for (let i = 0; i < 1100; i++)
      empty.push({ path: `payload/config/f${i}`, data: Buffer.alloc(0) });
    const headers: Buffer[] = [
      manifestEntry([JAR, PY, ...empty].map(listed)),
      entry(JAR),
      entry(PY),
    ];
    for (let i = 0; i < 100_000; i++) headers.push(rawHeader({ name: `payload/config/f${i}` }));
    headers.push(END);
    const archive = gzipSync(Buffer.concat(headers), { level: 1 });
    await refused(packageForm(archive), 422, 'package-too-large', 'too-many-entries');
  });

  it('gzip bomb: 256 MiB of zeros in a 250 KiB upload is refused at the header', async () => {
    const zeros = Buffer.alloc(256 * 1024 * 1024);
    const tar = Buffer.concat([
      manifestEntry([
        listed(JAR),
        listed(PY),
        { path: 'payload/config/zeros', sha256: sha(zeros), size: zeros.length, mode: 0o644 },
      ]),
      entry(JAR),
      entry(PY),
      rawHeader({ name: 'payload/config/zeros', size: zeros.length }),
      zeros,
      END,
    ]);
    const archive = gzipSync(tar, { level: 1 });
    expect(archive.length).toBeLessThan(2 * 1024 * 1024);
    // the unpacked cap is 64 MiB for an 8 MiB upload limit
    await refused(packageForm(archive), 422, 'package-too-large', 'entry-too-large');
  }, 30_000);

  it('gzip bomb: megabytes of zeros after the end marker', async () => {
    const archive = gzipSync(Buffer.concat([goodTar(), Buffer.alloc(32 * 1024 * 1024)]), {
      level: 1,
    });
    await refused(packageForm(archive), 422, 'package-corrupt', 'trailing-data');
    // under a v2 signature verification skips them; staging reads them and refuses
    await refused(packageForm(archive, signV2(archive)), 422, 'package-corrupt', 'trailing-data');
  });

  it('truncated gzip stream', async () => {
    const archive = gzipSync(goodTar());
    await refused(packageForm(archive.subarray(0, archive.length - 30)), 422, 'package-not-gzip');
  });

  it('not gzip at all', async () => {
    await refused(packageForm(goodTar()), 422, 'package-not-gzip');
  });
});

describe('package upload: v2 signatures (manifest attestation)', () => {
  it('accepts a valid v2-signed package', async () => {
    const archive = gzipSync(goodTar());
    const r = await post(packageForm(archive, signV2(archive)));
    expect(r.status).toBe(201);
    expect(r.body.version).toBe('2.0.0');
  });

  it('a v2 signature whose attestation lies about a hash is still refused at extraction', async () => {
    // Verification trusts the signer's per-entry check; staging re-hashes every file.
    const archive = gzipSync(
      Buffer.concat([
        manifestEntry([listed(JAR), listed(PY)]),
        entry({ ...JAR, data: Buffer.alloc(5000, 8) }),
        entry(PY),
        END,
      ]),
    );
    await refused(packageForm(archive, signV2(archive)), 422, 'package-contents-mismatch');
  });

  it('a v2 signature with the manifest signature of another package', async () => {
    const archive = gzipSync(goodTar());
    const other = gzipSync(goodTar({ version: '2.0.1' }));
    const sig = JSON.parse(signV2(archive).toString());
    sig.manifestSignature = JSON.parse(signV2(other).toString()).manifestSignature;
    await refused(
      packageForm(archive, Buffer.from(JSON.stringify(sig))),
      422,
      'package-signature-invalid',
    );
  });

  it('a v2 signature of another file', async () => {
    const archive = gzipSync(goodTar());
    const other = gzipSync(goodTar({ version: '2.0.1' }));
    await refused(packageForm(archive, signV2(other)), 422, 'package-signature-mismatch');
  });

  it('a v2 signature by an untrusted key: refused before the archive is read', async () => {
    const archive = gzipSync(goodTar());
    const other = generateKeyPairSync('ed25519').privateKey;
    await refused(packageForm(archive, signV2(archive, other)), 422, 'package-signature-untrusted');
  });
});

describe('package upload: signatures and versions', () => {
  it('signature by an untrusted key', async () => {
    const archive = gzipSync(goodTar());
    const other = generateKeyPairSync('ed25519').privateKey;
    await refused(
      packageForm(archive, signWith(archive, other)),
      422,
      'package-signature-untrusted',
    );
  });

  it('an RSA key given as trusted is refused when loaded, and ignored when forced in', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    expect(() => parseTrustedKey(pem, 'rsa.pub')).toThrow(
      /is an rsa key; package signatures are ed25519 only/,
    );
    // a hand-built TrustedKey that claims the signer's key id but holds an RSA key
    trustedKeys = [{ keyId: keyIdOf(trusted.key), key: rsa.publicKey, source: 'rsa.pub' }];
    const archive = gzipSync(goodTar());
    const r = await refused(packageForm(archive), 422, 'package-signature-untrusted');
    expect(r.body.message).toMatch(/rsa key/);
  });

  it('signature of another file', async () => {
    const archive = gzipSync(goodTar());
    const otherArchive = gzipSync(goodTar({ version: '2.0.1' }));
    await refused(packageForm(archive, signWith(otherArchive)), 422, 'package-signature-mismatch');
  });

  it('a tampered signature', async () => {
    const archive = gzipSync(goodTar());
    const sig = JSON.parse(signWith(archive).toString());
    sig.signature = `${sig.signature.slice(0, 10)}${sig.signature[10] === 'A' ? 'B' : 'A'}${sig.signature.slice(11)}`;
    await refused(
      packageForm(archive, Buffer.from(JSON.stringify(sig))),
      422,
      'package-signature-invalid',
    );
  });

  it('a malformed signature file', async () => {
    await refused(
      packageForm(gzipSync(goodTar()), Buffer.from('not json')),
      422,
      'package-signature-malformed',
    );
  });

  it('hostile contents under an untrusted signature: the signature is the verdict', async () => {
    const archive = gzipSync(
      goodTar({ extra: [rawHeader({ name: 'payload/link', type: '2', linkname: '/' })] }),
    );
    const other = generateKeyPairSync('ed25519').privateKey;
    await refused(
      packageForm(archive, signWith(archive, other)),
      422,
      'package-signature-untrusted',
    );
  });

  it('a valid package older than the installed version', async () => {
    installed = { 'pair-a': '3.0.0' };
    await refused(packageForm(gzipSync(goodTar())), 422, 'package-not-newer');
  });

  it('a valid package equal to the installed version', async () => {
    installed = { 'pair-a': '2.0.0' };
    await refused(packageForm(gzipSync(goodTar())), 422, 'package-not-newer');
  });

  it('a valid package for another version line', async () => {
    installed = { 'pair-a': '1.5.0' };
    await refused(packageForm(gzipSync(goodTar())), 422, 'package-wrong-version-line');
  });
});

describe('package upload: malformed requests', () => {
  const archive = () => gzipSync(goodTar());

  it('oversized upload with Content-Length: refused before reading', async () => {
    const big = Buffer.alloc(MAX_BYTES + 1024);
    await refused(packageForm(big), 413, 'upload-too-large');
  });

  it('oversized upload sent chunked: refused while streaming', async () => {
    const big = Buffer.alloc(MAX_BYTES + 1024 * 1024, 1);
    await refused(packageForm(big), 413, 'upload-too-large', undefined, { chunked: true });
  });

  it('wrong content type', async () => {
    await refused(Buffer.from('{}'), 415, 'upload-wrong-media-type', undefined, {
      contentType: 'application/json',
    });
    await refused(Buffer.from('{}'), 415, 'upload-wrong-media-type', undefined, {
      contentType: 'multipart/form-data',
    });
  });

  it.each(['package', 'signature', 'pair'])('missing %s part', async (missing) => {
    const a = archive();
    const parts: Part[] = [
      { name: 'pair', data: 'pair-a' },
      { name: 'package', data: a, filename: 'p.tar.gz' },
      { name: 'signature', data: signWith(a), filename: 'p.sig' },
    ].filter((p) => p.name !== missing);
    await refused(form(parts), 400, 'upload-missing-part');
  });

  it.each(['package', 'signature', 'pair'])('duplicated %s part', async (dup) => {
    const a = archive();
    const parts: Part[] = [
      { name: 'pair', data: 'pair-a' },
      { name: 'package', data: a, filename: 'p.tar.gz' },
      { name: 'signature', data: signWith(a), filename: 'p.sig' },
    ];
    parts.push(parts.find((p) => p.name === dup)!);
    await refused(form(parts), 400, 'upload-duplicate-part');
  });

  it.each([`../../${EVIL}`, `/tmp/${EVIL}`, `..\\${EVIL}`, '..'])(
    'a file part whose filename is %s',
    async (filename) => {
      const a = archive();
      await refused(
        form([
          { name: 'pair', data: 'pair-a' },
          { name: 'package', data: a, filename },
          { name: 'signature', data: signWith(a), filename: 'p.sig' },
        ]),
        400,
        'upload-bad-filename',
      );
    },
  );

  it('an unknown part', async () => {
    await refused(
      form([
        { name: 'pair', data: 'pair-a' },
        { name: 'script', data: 'rm -rf /' },
      ]),
      400,
      'upload-unknown-part',
    );
  });

  it('a bad pair name', async () => {
    const a = archive();
    await refused(packageForm(a, signWith(a), '../etc'), 400, 'upload-bad-field');
  });

  it('a body cut before its closing boundary', async () => {
    const body = packageForm(archive());
    await refused(body.subarray(0, body.length - 40), 400, 'upload-malformed');
  });

  it('a body that does not start with the boundary', async () => {
    await refused(
      Buffer.concat([Buffer.from('preamble\r\n'), packageForm(archive())]),
      400,
      'upload-malformed',
    );
  });
});
