// The node steps of `lab up`: namespaces, daemons started through `svc`,
// keepalived, the app release and its services.
import { randomBytes } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { javaCommand, workerCommand } from './app/commands.js';
import { type BuildContext, holder } from './build-context.js';
import { NODE_PATHS } from './layout.js';
import { mountNsOf, shInNode, shq, startHolder } from './namespaces.js';
import { writeFile } from './node-files.js';
import { type LabPlan, NODE_IDS, type NodeId } from './plan.js';
import { appProperties, JAVA_PORT, PYTHON_PORT, serviceDefs, svcCommand } from './render.js';
import { run, waitFor } from './run.js';
import { writeState } from './state.js';

export async function startNodes(ctx: BuildContext): Promise<void> {
  const { plan, dirs, state } = ctx;
  await Promise.all(
    NODE_IDS.map(async (id) => {
      const pid = await startHolder(plan, id, (dir) => dirs.node(id).mount(dir));
      state.holders[id] = pid;
      state.mountNs[id] = mountNsOf(pid);
      writeState(state);
    }),
  );
}

export async function startOnBoth(ctx: BuildContext, service: string): Promise<void> {
  await Promise.all(
    NODE_IDS.map((id) => {
      const defs = ctx.dirs.node(id).hostPath(NODE_PATHS.servicesDir);
      writeFile(join(defs, `${service}.sh`), serviceDefs(appStart(id))[service]!);
      return shInNode(holder(ctx, id), svcCommand('start', service));
    }),
  );
}

/** The app's start commands, exactly as src/lab/app/commands.ts gives them
 * (what its tests run), with absolute binaries so a service starts the same
 * from an ssh session (default PATH) as from `lab up`. */
function appStart(id: NodeId) {
  const absolute = (argv: string[]) => {
    const [bin, ...rest] = argv;
    const abs = bin === 'java' ? '/usr/bin/java' : bin === 'python3' ? '/usr/bin/python3' : bin!;
    return [abs, ...rest].map(shq).join(' ');
  };
  return {
    java: absolute(javaCommand(NODE_PATHS.appJar, { nodeName: id })),
    python: absolute(workerCommand(`${NODE_PATHS.appDir}/worker.py`)),
  };
}

export async function vipHolder(plan: LabPlan): Promise<NodeId | undefined> {
  for (const id of NODE_IDS) {
    const r = await run('ip', ['-n', plan.netns[id], '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    if (r.stdout.includes(` ${plan.vip}/`)) return id;
  }
  return undefined;
}

export async function startKeepalived(ctx: BuildContext): Promise<void> {
  await startOnBoth(ctx, 'keepalived');
  await waitFor(
    'the VIP on node a',
    async () => ((await vipHolder(ctx.plan)) === 'a' ? true : undefined),
    15_000,
    50,
  );
}

export async function installRelease(
  ctx: BuildContext,
  release: { jarPath: string; pythonPath: string },
): Promise<void> {
  const rootKey = randomBytes(64);
  for (const id of NODE_IDS) {
    const p = (nodePath: string) => ctx.dirs.node(id).hostPath(nodePath);
    copyFileSync(release.jarPath, p(NODE_PATHS.appJar));
    copyFileSync(release.pythonPath, p(`${NODE_PATHS.appDir}/worker.py`));
    // both nodes start with identical /etc/app; the sync job keeps it so
    writeFile(p(`${NODE_PATHS.configDir}/app.properties`), appProperties(ctx.plan, ctx.secrets), {
      mode: 0o640,
    });
    writeFile(p(NODE_PATHS.rootKey), rootKey, { mode: 0o600 });
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

export async function startServices(ctx: BuildContext): Promise<void> {
  await startOnBoth(ctx, 'java');
  await startOnBoth(ctx, 'python');
  const { plan } = ctx;
  const urls = NODE_IDS.flatMap((id) => [
    `http://${plan.nodeAddress[id]}:${JAVA_PORT}/health`,
    `http://${plan.nodeAddress[id]}:${PYTHON_PORT}/health`,
  ]);
  await waitFor(
    'the services to pass /health on both nodes',
    async () => ((await Promise.all(urls.map(httpOk))).every(Boolean) ? true : undefined),
    45_000,
    200,
  );
}
