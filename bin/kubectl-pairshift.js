#!/usr/bin/env node
// `kubectl pairshift`: kubectl runs this file when it is on PATH under this
// name (docs/kubernetes.md, "kubectl pairshift"). Thin launcher like
// pairshift.js: the CLI is compiled to dist/ by `npm ci` (prepare script).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `kubectl-pairshift: needs Node.js 24 or later, this is ${process.version}\n`,
  );
  process.exit(1);
}
import('../dist/cli/kubectl-plugin.js')
  .then((m) => m.pluginMain(process.argv))
  .catch((err) => {
    process.stderr.write(`kubectl-pairshift: ${err?.message ?? err}\n`);
    process.exit(1);
  });
