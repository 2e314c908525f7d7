// Writes crds/*.yaml from the zod schemas. Run as `npm run crds`, which
// first compiles src/sources/crd.ts and what it imports (only those, so
// a half-finished file elsewhere does not block it) into .pairshift/.
// test/unit/crd.test.ts fails when the committed files differ from what
// this produces.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { renderCrdFiles } = await import(
  join(root, '.pairshift', 'crds-build', 'src', 'sources', 'crd.js')
);
for (const [name, text] of Object.entries(renderCrdFiles())) {
  await writeFile(join(root, 'crds', name), text);
  console.log(`wrote crds/${name}`);
}
