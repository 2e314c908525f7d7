// Secrets never reach a log line. Three nets, because any one alone leaks:
// - by key: a field named like a secret (password, token, authorization, the
//   root key's content ...) is replaced whatever its value;
// - by shape: credentials in URLs, bearer tokens and PEM private keys inside
//   free text are masked;
// - by value: secrets known at run time (the root key's bytes read for a
//   checksum, a configured API token) are registered once and masked wherever
//   they appear, in any field or message.
export const REDACTED = '[REDACTED]';

const SECRET_KEY =
  /pass(word|wd|phrase)?$|secret|token|authorization|cookie|api[-_]?key|private[-_]?key|root[-_]?key[-_]?(content|data|bytes)?$|credential/i;

const SHAPES: [RegExp, string][] = [
  // scheme://user:password@host  -> scheme://user:[REDACTED]@host
  [/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]*@/gi, `$1${REDACTED}@`],
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, `$1 ${REDACTED}`],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
  [/\b(password|passwd|pwd|token|secret)=([^\s&;]+)/gi, `$1=${REDACTED}`],
];

export class SecretRegistry {
  readonly #values = new Set<string>();

  /** Registers a secret (and its common encodings) to be masked wherever it appears. */
  add(secret: string | Buffer): void {
    const buf = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    // Too short a value would mask innocent text; such secrets are protected by key and shape.
    if (buf.length < 6) return;
    for (const form of [buf.toString('utf8'), buf.toString('base64'), buf.toString('hex')]) {
      const trimmed = form.trim();
      if (trimmed.length >= 6) this.#values.add(trimmed);
    }
  }

  maskText(text: string): string {
    let out = text;
    for (const v of this.#values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    for (const [re, to] of SHAPES) out = out.replace(re, to);
    return out;
  }
}

/** The process-wide registry the logger consults. */
export const secrets = new SecretRegistry();

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A deep copy of value with every secret masked; cycles and depth are bounded. */
export function redact(value: unknown, registry: SecretRegistry = secrets, depth = 0): unknown {
  if (typeof value === 'string') return registry.maskText(value);
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[nested too deep]';
  if (value instanceof Error) {
    return {
      name: value.name,
      message: registry.maskText(value.message),
      stack: value.stack && registry.maskText(value.stack),
    };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, registry, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      isSecretKey(k) && v !== undefined && v !== null && v !== ''
        ? REDACTED
        : redact(v, registry, depth + 1);
  }
  return out;
}
