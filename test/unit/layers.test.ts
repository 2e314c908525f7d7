// The import graph between top folders points one way: down. A folder may
// import its own files and the folders of lower layers, never a higher one,
// so the pure core stays pure and an adapter (the store, a source) can be
// swapped without touching what it serves. README.md ("Layout") shows the
// same layers.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');

/** Lowest first. A folder may import folders of a lower rank than its own. */
const LAYERS: readonly (readonly string[])[] = [
  ['log', 'config', 'agent', 'prober'],
  ['core', 'inventory'],
  ['packages'],
  ['drivers'],
  ['store'],
  ['reconciler', 'notify'],
  ['sources'],
  ['api', 'operator', 'lab'],
  ['demo'],
  ['cli'],
];

const rank = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
}

function topFolder(file: string): string {
  return relative(SRC, file).split('/')[0]!;
}

/** Relative imports resolved to .ts files under src. */
function localImports(file: string): string[] {
  return specifiers(file)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s).replace(/\.js$/, '.ts'));
}

/** Imports (paths relative to src) that do not go to a lower layer or the same folder. */
function wrongWay(edges: readonly (readonly [string, string])[]): string[] {
  return edges
    .filter(([from, to]) => {
      const a = from.split('/')[0]!;
      const b = to.split('/')[0]!;
      return a !== b && !(rank.get(b)! < rank.get(a)!);
    })
    .map(([from, to]) => `${from} -> ${to}`);
}

const files = sourceFiles(SRC);

describe('layers', () => {
  it('every top folder has a layer', () => {
    const folders = [...new Set(files.map(topFolder))].filter((f) => !f.endsWith('.ts'));
    expect(folders.filter((f) => !rank.has(f))).toEqual([]);
  });

  it('no import points up or sideways between top folders', () => {
    const edges = files.flatMap((file) =>
      localImports(file).map((target) => [relative(SRC, file), relative(SRC, target)] as const),
    );
    expect(edges.length).toBeGreaterThan(100);
    expect(wrongWay(edges)).toEqual([]);
  });

  it('the core does no I/O: nothing it reaches imports node:* or a driver', () => {
    const seen = new Set<string>();
    const queue = files.filter((f) => topFolder(f) === 'core');
    const impure: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const s of specifiers(file)) {
        if (s.startsWith('node:')) impure.push(`${relative(SRC, file)} imports ${s}`);
      }
      queue.push(...localImports(file));
    }
    expect(impure).toEqual([]);
    expect([...seen].map(topFolder).filter((f) => !['core', 'config'].includes(f))).toEqual([]);
  });

  it("the API reads the store's history, progress and status, not the reconciler's private journal", () => {
    // Writing a transition goes through commitTransition, the one path every
    // transition takes (a trigger that fails ends IDLE -> CANCELLED there);
    // reading the reconciler's memory (loadMemory) is the reconciler's alone.
    const readers = files
      .filter((f) => topFolder(f) === 'api')
      .filter((f) => /\bloadMemory\b|\bsaveMemory\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f));
    expect(readers).toEqual([]);
  });

  it('the check refuses an upward and a sideways import, and allows a downward one', () => {
    expect(
      wrongWay([
        ['drivers/health/health.ts', 'reconciler/loop.ts'],
        ['core/planner.ts', 'inventory/hapair.ts'],
        ['reconciler/execute.ts', 'drivers/errors.ts'],
      ]),
    ).toEqual([
      'drivers/health/health.ts -> reconciler/loop.ts',
      'core/planner.ts -> inventory/hapair.ts',
    ]);
  });
});
