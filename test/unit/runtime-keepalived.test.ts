// One KeepalivedDriver per upgrade: the runtime builds it and gives the same
// one to the observer and the executor, which take it as a required
// dependency. Before, the observer built one every round and the executor
// one per step; this keeps a second construction from creeping back into the
// operator's own code (tests and the CLI's lab tools may build their own).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

test('only the upgrade runtime constructs a KeepalivedDriver, once', () => {
  const sites = sourceFiles(SRC).flatMap((f) => {
    const n = readFileSync(f, 'utf8').match(/new KeepalivedDriver\(/g)?.length ?? 0;
    return n > 0 ? [`${relative(SRC, f)} x${n}`] : [];
  });
  expect(sites).toEqual(['reconciler/runtime.ts x1']);
});
