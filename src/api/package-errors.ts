// Why an uploaded package was refused, as an HTTP status and a stable code.
// The API maps a PackageRejected to problem+json (status, code, message,
// suggestion); nothing here knows about express responses.
//
// Statuses: 400 the request is malformed (multipart syntax, missing,
// duplicated or unknown parts, a bad pair name); 413 the upload is larger
// than allowed; 415 it is not multipart/form-data; 422 the request is well
// formed but the package is refused (signature, format, contents, version).
import { PackageContentError } from '../packages/contents.js';
import { SignatureError } from '../packages/signing.js';
import { TarFormatError } from '../packages/tar.js';

export type PackageRejectedCode =
  | 'upload-wrong-media-type'
  | 'upload-too-large'
  | 'upload-malformed'
  | 'upload-missing-part'
  | 'upload-duplicate-part'
  | 'upload-unknown-part'
  | 'upload-bad-filename'
  | 'upload-bad-field'
  | 'package-signature-malformed'
  | 'package-signature-untrusted'
  | 'package-signature-mismatch'
  | 'package-signature-invalid'
  | 'package-not-gzip'
  | 'package-corrupt'
  | 'package-unsafe-entry'
  | 'package-too-large'
  | 'package-contents-mismatch'
  | 'package-not-installable'
  | 'package-not-newer'
  | 'package-wrong-version-line';

export class PackageRejected extends Error {
  constructor(
    readonly status: 400 | 413 | 415 | 422,
    readonly code: PackageRejectedCode,
    message: string,
    /** What the client can do about it (shown as the problem's suggestion). */
    readonly suggestion: string,
    options?: ErrorOptions & { detail?: string },
  ) {
    super(message, options);
    this.name = 'PackageRejected';
    this.detail = options?.detail;
  }
  /** A finer reason where one exists, e.g. the tar reader's code (`symlink`). */
  readonly detail: string | undefined;
}

export function badRequest(code: PackageRejectedCode, message: string): PackageRejected {
  return new PackageRejected(400, code, message, 'fix the request and send it again');
}

const FIX_PACKAGE =
  'fix the package (rebuild and re-sign it with pairshift package) and upload it again';

function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e && out.length < 10; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

const UNSAFE = new Set([
  'unsafe-path',
  'duplicate-path',
  'symlink',
  'hardlink',
  'device',
  'unsupported-type',
  'bad-mode',
]);
const TOO_LARGE = new Set(['too-many-entries', 'entry-too-large', 'archive-too-large']);

/**
 * Classifies a verification or staging failure. Anything not recognised is
 * returned as is (an internal error for the API: a 500, not a refusal).
 */
export function classifyPackageError(err: unknown): unknown {
  if (err instanceof PackageRejected) return err;
  const top = err instanceof Error ? err.message : String(err);
  for (const e of chain(err)) {
    if (e instanceof PackageRejected) return e;
    if (e instanceof SignatureError) {
      const code = `package-signature-${e.code}` as PackageRejectedCode;
      const suggestion =
        e.code === 'untrusted'
          ? 'sign the package with a key the operator trusts, or add its public key to the trusted keys'
          : e.code === 'mismatch'
            ? 'upload the signature file that belongs to this package'
            : FIX_PACKAGE;
      return new PackageRejected(422, code, e.message, suggestion, { cause: err });
    }
    if (e instanceof TarFormatError) {
      const code: PackageRejectedCode = UNSAFE.has(e.code)
        ? 'package-unsafe-entry'
        : TOO_LARGE.has(e.code)
          ? 'package-too-large'
          : 'package-corrupt';
      return new PackageRejected(422, code, top, FIX_PACKAGE, { cause: err, detail: e.code });
    }
    if (e instanceof PackageContentError)
      return new PackageRejected(422, 'package-contents-mismatch', top, FIX_PACKAGE, {
        cause: err,
      });
    const zcode = (e as NodeJS.ErrnoException | undefined)?.code;
    if (typeof zcode === 'string' && zcode.startsWith('Z_'))
      return new PackageRejected(422, 'package-not-gzip', top, FIX_PACKAGE, { cause: err });
    if (e instanceof Error && /is not a valid gzip file/.test(e.message))
      return new PackageRejected(422, 'package-not-gzip', top, FIX_PACKAGE, { cause: err });
    if (e instanceof Error && /^cannot stage: /.test(e.message))
      return new PackageRejected(422, 'package-not-installable', top, FIX_PACKAGE, {
        cause: err,
      });
  }
  return err;
}
