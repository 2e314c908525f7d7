// Writes crds/*.yaml from the zod schemas (run as `npm run crds`, which
// builds dist/ first). test/unit/crd-files.test.ts fails when the committed
// files differ from what this produces.
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderCrdFiles } from '../dist/reconciler/crd.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'crds');
for (const [name, text] of Object.entries(renderCrdFiles())) {
  await writeFile(join(dir, name), text);
  console.log(`wrote crds/${name}`);
}
