#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm ci` (prepare script).
// The operator needs Node.js 24 (package.json engines): its Kubernetes client
// (@kubernetes/client-node 2.x, on undici 8) does not even load on Node 20,
// so say that plainly instead of undici's "reading 'bind'" error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(
    `pairshift: needs Node.js 24 or later, this is ${process.version} (scripts/node24 runs a command on Node 24)\n`,
  );
  process.exit(1);
}
import('../dist/cli/main.js')
  .then((m) => m.main(process.argv))
  .catch((err) => {
    process.stderr.write(`pairshift: ${err?.message ?? err}\n`);
    process.exit(1);
  });
