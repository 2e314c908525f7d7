// What a string from outside must be before it is kept: the store is
// PostgreSQL, whose text type cannot hold NUL and whose UTF-8 encoding has
// no form for a lone UTF-16 surrogate (either fails the write with PS-1901
// after the request was accepted). One rule here, used by the resource's
// schema (so the REST API, kubectl and the manifests folder all refuse such
// text up front) and by the multipart upload form.

/** A lone surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** C0 controls (NUL included) and DEL; tab, line feed and carriage return are allowed in free text. */
function hasControl(s: string, multiline: boolean): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 || c === 0x7f) && !(multiline && (c === 9 || c === 10 || c === 13))) return true;
  }
  return false;
}

/** Why the store cannot keep s (free text when multiline), or null when it can. */
export function unstorable(s: string, multiline: boolean): string | null {
  if (s.includes('\0')) return 'contains a NUL character';
  if (LONE_SURROGATE.test(s)) return 'contains an unpaired UTF-16 surrogate';
  if (hasControl(s, multiline)) return 'contains a control character';
  return null;
}
