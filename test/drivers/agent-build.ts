// Test helper: compiles src/agent/node on its own (exactly what installAgent
// ships: nothing outside node:* can sneak in) into a folder.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '../..');

export function compileAgent(dir: string): void {
  execFileSync('npx', ['tsc', '-p', join(REPO, 'src/agent/node/tsconfig.json'), '--outDir', dir], {
    cwd: REPO,
    stdio: 'pipe',
  });
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
}
