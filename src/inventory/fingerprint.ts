// A pinned host key's fingerprint as the HAPair writes it, in one form
// (OpenSSH's "SHA256:" + unpadded base64), so comparisons are exact.
export function normaliseFingerprint(fp: string): string {
  const t = fp.trim();
  return t.startsWith('SHA256:') ? t.replace(/=+$/, '') : `SHA256:${t.replace(/=+$/, '')}`;
}
