// The agent is copied onto nodes without node_modules: its code may import
// only Node's standard library and its own files.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '../../src/agent/node');

describe('pairshift-agent runtime', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));

  it('has its modules', () => {
    expect(files).toEqual(
      expect.arrayContaining(['main.ts', 'health.ts', 'keepalived.ts', 'commands.ts']),
    );
  });

  it.each(files)('%s imports only node:* and sibling files', (file) => {
    const text = readFileSync(join(dir, file), 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map(
      (m) => m[1]!,
    );
    for (const s of specifiers) {
      expect(s.startsWith('node:') || /^\.\/[\w-]+\.js$/.test(s) ? 'ok' : s).toBe('ok');
    }
  });
});
