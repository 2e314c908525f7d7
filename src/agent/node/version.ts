// The agent's version: the VERSION file the installer writes next to the
// code (package version plus a hash of the files), or "dev" from a checkout.
import { readFileSync } from 'node:fs';

export function agentVersion(): string {
  try {
    return readFileSync(new URL('./VERSION', import.meta.url), 'utf8').trim() || 'dev';
  } catch {
    return 'dev';
  }
}
