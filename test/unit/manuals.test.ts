// The manuals (docs/manual/) stay true to the code: every error code the
// source can emit and every halt reason has its troubleshooting entry (and
// the doc names none that no longer exist), every relative link and anchor
// resolves, every REST route is in docs/api.md and every configuration key
// in docs/configuration.md. Reads the sources, so a new code, reason, route
// or key without its documentation fails here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { PROBLEMS } from '../../src/api/problems.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { configFileSchema, upgradeSettingsSchema } from '../../src/config/schema.js';
import { verdictsFor } from '../../src/core/conditions.js';
import { HALT_REASONS } from '../../src/core/event-reasons.js';
import { TERMINAL_PHASES } from '../../src/core/phases.js';

const root = join(import.meta.dirname, '..', '..');
const manualDir = join(root, 'docs', 'manual');
const read = (p: string) => readFileSync(p, 'utf8');
const troubleshooting = read(join(manualDir, 'troubleshooting.md'));

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** The text between a `## title` heading and the next `## ` heading. */
function section(md: string, title: string): string {
  const start = md.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`no section "## ${title}"`);
  const rest = md.slice(start + title.length + 5);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
}

const headings3 = (md: string) => [...md.matchAll(/^### (\S+)/gm)].map((m) => m[1]!);

describe('troubleshooting.md covers every error code and halt reason', () => {
  test('the PS codes emitted in src are exactly the ones with an entry', () => {
    const inSrc = new Set<string>(Object.keys(PROBLEMS));
    for (const f of tsFiles(join(root, 'src'))) {
      for (const m of read(f).matchAll(/\bPS-\d{4}\b/g)) inSrc.add(m[0]);
    }
    const entries = headings3(section(troubleshooting, 'API error codes'));
    expect(inSrc.size).toBeGreaterThan(20);
    expect([...inSrc].sort()).toEqual([...entries].sort());
    // and no code mentioned anywhere in the doc is unknown to the source
    const mentioned = new Set([...troubleshooting.matchAll(/\bPS-\d{4}\b/g)].map((m) => m[0]));
    expect([...mentioned].filter((c) => !inSrc.has(c))).toEqual([]);
  });

  test('each code entry states the HTTP status the code is sent with', () => {
    const wrong = Object.entries(PROBLEMS).filter(
      ([code, p]) => !new RegExp(`^### ${code} .*\\(${p.status}\\)$`, 'm').test(troubleshooting),
    );
    expect(wrong.map(([c]) => c)).toEqual([]);
  });

  test('the halt reasons are exactly the ones with an entry', () => {
    expect([...HALT_REASONS].sort()).toEqual(headings3(section(troubleshooting, 'Halts')).sort());
  });

  test('every way to end without COMPLETE is listed with its Degraded reason', () => {
    const ends = section(troubleshooting, 'Ends other than COMPLETE');
    for (const phase of TERMINAL_PHASES.filter((p) => p !== 'COMPLETE')) {
      const degraded = verdictsFor(phase, false).Degraded;
      const row = ends.split('\n').find((l) => l.startsWith(`| ${phase} |`));
      expect({ phase, row: row !== undefined }).toEqual({ phase, row: true });
      if (degraded.status === 'True') expect(row).toContain(`| ${degraded.reason} |`);
      else expect(row).toContain('(not degraded)');
    }
  });

  test('every CLI exit code has a row, and no row names a code that does not exist', () => {
    const table = section(troubleshooting, 'CLI exit codes');
    const rows = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    expect(rows.sort()).toEqual(Object.values(EXIT).sort());
  });
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(md: string): Set<string> {
  const out = new Set<string>();
  for (const m of md.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add(
      m[1]!
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return out;
}

describe('links in docs/manual', () => {
  const files = readdirSync(manualDir).filter((f) => f.endsWith('.md'));

  test('the four manuals are there', () => {
    expect(files.sort()).toEqual([
      'README.md',
      'operations.md',
      'rollback.md',
      'troubleshooting.md',
    ]);
  });

  test('every relative link points to an existing file and heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const f of files) {
      const path = join(manualDir, f);
      for (const m of read(path).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        checked++;
        const [file, anchor] = target.split('#');
        const resolved = file ? resolve(dirname(path), file) : path;
        if (!existsSync(resolved)) broken.push(`${f}: ${target} (no such file)`);
        else if (anchor && !anchors(read(resolved)).has(anchor))
          broken.push(`${f}: ${target} (no such heading)`);
      }
    }
    expect(checked).toBeGreaterThan(20);
    expect(broken).toEqual([]);
  });

  test('the anchor rule matches GitHub on the headings the manuals link to', () => {
    expect(anchors('## Checklist before the first upgrade (7.4.1)')).toContain(
      'checklist-before-the-first-upgrade-741',
    );
    expect(anchors('### POST /api/v1/upgrade/rollback/{upgrade_id} — operator')).toContain(
      'post-apiv1upgraderollbackupgrade_id--operator',
    );
  });

  test('README.md links the manuals', () => {
    expect(read(join(root, 'README.md'))).toContain('](docs/manual/README.md)');
  });
});

describe('the reference pages the manuals link to are complete', () => {
  test('docs/api.md documents every route of src/api/app.ts', () => {
    const app = read(join(root, 'src', 'api', 'app.ts'));
    const routes = [...app.matchAll(/route\(app, '([^']+)'/g)].map((m) =>
      m[1]!.replace(/:([a-z_]+)/g, '{$1}'),
    );
    expect(routes.length).toBeGreaterThanOrEqual(8);
    const api = read(join(root, 'docs', 'api.md'));
    expect(routes.filter((r) => !api.includes(r))).toEqual([]);
  });

  test('docs/operator.md documents every path of the probes server', () => {
    const probes = read(join(root, 'src', 'api', 'probes-server.ts'));
    const paths = [...new Set([...probes.matchAll(/path === '([^']+)'/g)].map((m) => m[1]!))];
    expect(paths.sort()).toEqual(['/livez', '/metrics', '/readyz']);
    const operator = read(join(root, 'docs', 'operator.md'));
    expect(paths.filter((p) => !operator.includes(p))).toEqual([]);
  });

  test('docs/configuration.md names every key of the file with its default', () => {
    const doc = read(join(root, 'docs', 'configuration.md'));
    const every = section(doc, 'Every key');
    const upgrade = section(doc, 'Upgrade settings and their defaults (task list 1.2)');
    const keys = leafKeys(configFileSchema).filter((k) => !k.startsWith('upgrade.'));
    expect(keys.length).toBeGreaterThan(20);
    const rowOf = (table: string, key: string) =>
      table.split('\n').find((l) => l.startsWith(`| ${key} |`));
    expect(keys.filter((k) => !rowOf(every, k))).toEqual([]);
    const settings = Object.keys(upgradeSettingsSchema.shape);
    expect(settings.filter((k) => !rowOf(upgrade, k))).toEqual([]);
    // each row has a default column that is not empty
    const empty = [
      ...keys.map((k) => rowOf(every, k)!),
      ...settings.map((k) => rowOf(upgrade, k)!),
    ].filter((row) => row.split('|')[2]!.trim() === '');
    expect(empty).toEqual([]);
    // and the doc names no key the schema does not know
    const known = new Set([...keys, 'upgrade.*']);
    const rows = [...every.matchAll(/^\| ([a-z][\w.*]+) \|/gm)]
      .map((m) => m[1]!)
      .filter((k) => k !== 'key'); // the header row
    expect(rows.filter((k) => !known.has(k))).toEqual([]);
  });
});

/** Dotted paths of the leaves of a zod object schema (arrays and scalars are leaves). */
function leafKeys(schema: z.ZodType, prefix = ''): string[] {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
  if (!(s instanceof z.ZodObject)) return [prefix];
  return Object.entries(s.shape as Record<string, z.ZodType>).flatMap(([k, v]) =>
    leafKeys(v, prefix ? `${prefix}.${k}` : k),
  );
}
