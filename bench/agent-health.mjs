// /health response time of pairshift-agent on a lab pair, and installAgent's
// time (first install, then the unchanged second run). Brings up lab "agm",
// installs the agent on both nodes, polls each node's /health from the host
// over HTTP 15 times back to back and 15 times every 2 s, prints medians and
// tails, and removes the lab. Needs root and what docs/lab.md lists.
//
// Run (plain JavaScript over the build: the installer ships dist/agent/node,
// and the lab finds its node tools relative to dist/lab):
//   npm run build && node bench/agent-health.mjs
import { installAgent } from '../dist/agent/install.js';
import { agentConfigFor } from '../dist/agent/render-config.js';
import { httpHealthProbe } from '../dist/drivers/health-probes.js';
import { SshPool } from '../dist/drivers/ssh/pool.js';
import { sshEndpoints } from '../dist/inventory/endpoints.js';
import { loadHAPair } from '../dist/inventory/hapair.js';
import { labDown, labUp, NODE_PATHS } from '../dist/lab/index.js';

const NAME = 'agm';
const ROOT = `${NODE_PATHS.toolsDir}/agent`;

const quantile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(p * (s.length - 1))].toFixed(0);
};

const up = await labUp({ name: NAME });
const pair = await loadHAPair(up.inventory);
const pool = new SshPool(await sshEndpoints(pair));
try {
  for (const n of ['a', 'b']) {
    const opts = { config: agentConfigFor(pair, n, { root: ROOT }), root: ROOT };
    let t = performance.now();
    const first = await installAgent(pool, n, opts);
    const firstMs = performance.now() - t;
    t = performance.now();
    const second = await installAgent(pool, n, opts);
    console.log(
      `install ${n}: ${first.state} in ${firstMs.toFixed(0)} ms, then ${second.state} in ${(performance.now() - t).toFixed(0)} ms`,
    );
  }
  const probe = httpHealthProbe((node) => ({
    host: pair.spec.nodes.find((x) => x.name === node).address,
    port: 8090,
  }));
  for (const [label, gapMs] of [
    ['back to back', 0],
    ['every 2 s', 2000],
  ]) {
    for (const n of ['a', 'b']) {
      const roundTrip = [];
      const agent = [];
      for (let i = 0; i < 15; i++) {
        const t = performance.now();
        const r = await probe(n, 5000);
        roundTrip.push(performance.now() - t);
        agent.push(r.responseTimeMs);
        if (r.status !== 'UP')
          console.log(
            `  ${n} DOWN: ${r.checks.filter((c) => c.status !== 'UP').map((c) => c.name)}`,
          );
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
      console.log(
        `${label}, node ${n}: round trip median ${quantile(roundTrip, 0.5)} ms, p95 ${quantile(roundTrip, 0.95)}, max ${quantile(roundTrip, 1)}; agent responseTimeMs median ${quantile(agent, 0.5)}`,
      );
    }
  }
} finally {
  await pool.close();
  await labDown({ name: NAME });
}
