// API tokens from configuration: the config names each token and its role
// and points at a file holding the value, so the value never sits in the
// config text. Values are registered with the log redactor the moment they
// are read, so no log line can carry them.
import { readFile, stat } from 'node:fs/promises';
import { secrets } from '../log/redact.js';
import type { ApiToken, Role } from './security.js';

export interface TokenEntry {
  readonly name: string;
  readonly role: Role;
  readonly tokenFile: string;
}

export async function loadApiTokens(
  entries: readonly TokenEntry[],
  warn: (message: string) => void = () => {},
): Promise<ApiToken[]> {
  const names = new Set<string>();
  const out: ApiToken[] = [];
  for (const e of entries) {
    if (names.has(e.name)) throw new Error(`api.tokens: the name ${e.name} is used twice`);
    names.add(e.name);
    let text: string;
    try {
      text = await readFile(e.tokenFile, 'utf8');
    } catch (err) {
      throw new Error(`api token ${e.name}: cannot read ${e.tokenFile}`, { cause: err });
    }
    const token = text.trim();
    if (!/^[A-Za-z0-9._~+/=-]{16,4096}$/.test(token)) {
      throw new Error(
        `api token ${e.name}: ${e.tokenFile} must hold one token of 16 to 4096 characters (letters, digits, ._~+/=-)`,
      );
    }
    secrets.add(token);
    if (((await stat(e.tokenFile)).mode & 0o077) !== 0) {
      warn(`api token ${e.name}: ${e.tokenFile} is readable by other users; chmod 600 it`);
    }
    out.push({ token, role: e.role, name: e.name });
  }
  return out;
}
