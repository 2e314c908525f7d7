// WAL positions (LSNs). PostgreSQL prints them as two hex halves "X/Y"; as
// numbers they exceed 2^53, so they are bigints here. Pure.

export type Lsn = bigint;

export class LsnError extends Error {
  override readonly name = 'LsnError';
}

export function parseLsn(text: string): Lsn {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new LsnError(`not a WAL position (expected X/Y in hex): "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** parseLsn, with null for SQL NULL / empty. */
export function parseLsnOrNull(text: string | null | undefined): Lsn | null {
  if (text === null || text === undefined || text === '') return null;
  return parseLsn(text);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Bytes from `behind` to `ahead` (0 when behind is not behind). */
export function lagBytes(ahead: Lsn, behind: Lsn): bigint {
  return ahead > behind ? ahead - behind : 0n;
}

export function formatBytes(n: bigint): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}
