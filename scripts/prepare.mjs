// npm's "prepare" (run by `npm ci` and `npm install`): compile src/ to dist/,
// which bin/pairshift.js runs. A production install (`npm ci --omit=dev`, the
// container image) has no TypeScript: there dist/ must already be there,
// built beforehand and copied in; say so instead of failing on a missing tsc.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function typescriptCompiler() {
  try {
    return require.resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

const tsc = typescriptCompiler();
if (tsc) {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
} else if (existsSync('dist/cli/main.js')) {
  console.log('prepare: TypeScript is not installed (npm ci --omit=dev): using the dist/ present');
} else {
  console.error(
    'prepare: TypeScript is not installed and dist/ is missing: build dist/ first (npm ci && npm run build), then install with --omit=dev',
  );
  process.exit(1);
}
