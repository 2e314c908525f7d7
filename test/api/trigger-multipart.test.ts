// Trigger with the package itself (multipart/form-data), through the real
// receivePackage: a signed package becomes an UpgradeRequest pointing into
// its upload folder; a refused one is a 422 problem and leaves no folder;
// an upload that loses the race for the pair (409) is removed too.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import {
  generateSigningKeyPair,
  loadPrivateKey,
  loadTrustedKey,
  signArchive,
  type TrustedKey,
} from '../../src/packages/signing.js';
import { signedTestPackage } from '../support/signed-package.js';
import { client, type Harness, OpenApiChecker, startHarness, VIEWER_TOKEN } from './support.js';

jest.setTimeout(60_000);

const checker = new OpenApiChecker();
let dir: string;
let work: string;
let trusted: TrustedKey;
let pkg: string;
let untrustedSig: string;
let h: Harness;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pairshift-api-upload-'));
  work = join(dir, 'work');
  mkdirSync(work);
  mkdirSync(join(dir, 'other'));
  const keys = await signedTestPackage(dir);
  const other = await generateSigningKeyPair(join(dir, 'other'));
  trusted = await loadTrustedKey(keys.publicKeyPath);
  pkg = keys.path;
  untrustedSig = join(dir, 'untrusted.sig');
  await signArchive(pkg, await loadPrivateKey(other.privateKeyPath), untrustedSig);
  h = await startHarness({
    upload: { workDir: work, trustedKeys: [trusted], maxBytes: 4 * 1024 * 1024 },
  });
});
afterAll(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

async function upload(pair: string, sigPath = `${pkg}.sig`, token?: string, options?: string) {
  const form = new FormData();
  form.append('pair', pair);
  form.append('reason', 'release 2.0.0');
  if (options !== undefined) form.append('options', options);
  form.append('package', new Blob([readFileSync(pkg)]), 'app-2.0.0.tar.gz');
  form.append('signature', new Blob([readFileSync(sigPath)]), 'app-2.0.0.tar.gz.sig');
  const headers: Record<string, string> = {
    authorization: `Bearer ${token ?? 'op-secret-token-0123456789abcdef'}`,
  };
  const res = await fetch(`${h.api.url}/api/v1/upgrade/trigger`, {
    method: 'POST',
    body: form,
    headers,
  });
  const body = JSON.parse(await res.text());
  checker.check(
    'POST',
    '/api/v1/upgrade/trigger',
    res.status,
    res.headers.get('content-type'),
    body,
  );
  return { status: res.status, body };
}

test('a signed upload creates the UpgradeRequest; the package stays for the upgrade', async () => {
  const r = await upload('lab');
  expect(r.status).toBe(201);
  const req = await h.source.getUpgradeRequest(r.body.upgrade_id);
  expect(req?.spec.package.version).toBe('2.0.0');
  expect(req?.spec.package.path.startsWith(`${work}/`)).toBe(true);
  expect(readFileSync(req!.spec.package.path)).toEqual(readFileSync(pkg));
  expect(req?.metadata.annotations?.['pairshift.io/reason']).toBe('release 2.0.0');
  expect(readdirSync(work)).toHaveLength(1);
});

test('409 for a pair with an active upgrade: the upload folder is removed', async () => {
  const r = await upload('lab');
  expect(r.status).toBe(409);
  expect(readdirSync(work)).toHaveLength(1);
});

test('a signature by an untrusted key is 422 with a stable reason, and leaves nothing', async () => {
  const r = await upload('lab2', untrustedSig);
  expect(r.status).toBe(422);
  expect(r.body.code).toBe('PS-1801');
  expect(r.body.reason).toBe('package-signature-untrusted');
  expect(r.body.suggestion).toBe('fix-package');
  expect(readdirSync(work)).toHaveLength(1);
});

test('an options part carries the trigger options (dry run); bad options are 400 and leave nothing', async () => {
  const bad = await upload('lab2', `${pkg}.sig`, undefined, '{"dry_run": tru');
  expect(bad.status).toBe(400);
  expect(bad.body.reason).toBe('upload-bad-field');
  const unknown = await upload('lab2', `${pkg}.sig`, undefined, '{"dry_rum": true}');
  expect(unknown.status).toBe(400);
  expect(unknown.body.detail).toContain('dry_rum');
  expect(readdirSync(work)).toHaveLength(1);
  const r = await upload('lab2', `${pkg}.sig`, undefined, '{"dry_run": true}');
  expect(r.status).toBe(201);
  const req = await h.source.getUpgradeRequest(r.body.upgrade_id);
  expect(req?.spec.options).toEqual({ dryRun: true });
  expect(readdirSync(work)).toHaveLength(2);
});

test('a viewer cannot upload (403) and nothing is written', async () => {
  const r = await upload('lab3', `${pkg}.sig`, VIEWER_TOKEN);
  expect(r.status).toBe(403);
  expect(readdirSync(work)).toHaveLength(2);
});

test('without upload settings multipart is 415 (JSON references still work)', async () => {
  const plain = await startHarness({ pairs: ['lab'] });
  try {
    const c = client(plain.api.url, checker);
    const r = await c('POST', '/api/v1/upgrade/trigger', {
      raw: '--x\r\nContent-Disposition: form-data; name="pair"\r\n\r\nlab\r\n--x--\r\n',
      headers: { 'content-type': 'multipart/form-data; boundary=x' },
    });
    expect(r.status).toBe(415);
    expect(r.body.detail).toContain('package.path');
  } finally {
    await plain.close();
  }
});
