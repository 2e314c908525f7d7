// `pairshift lab up`: build a lab step by step. Each step is named; the state
// file records what exists after every step; if a step fails, everything the
// lab created is torn down and the error says which step failed.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildAppRelease } from './app/build.js';
import type { BuildContext } from './build-context.js';
import { startPrimary, startStandby } from './build-database.js';
import { prepareFolders } from './build-folders.js';
import { writeInventory } from './build-inventory.js';
import {
  installRelease,
  startKeepalived,
  startNodes,
  startOnBoth,
  startServices,
} from './build-nodes.js';
import { labDown } from './down.js';
import { labDirs } from './layout.js';
import { createNetwork } from './namespaces.js';
import { chooseSubnetIndex, type LabPlan, planLab, validateLabName } from './plan.js';
import { checkPrerequisites } from './prereq.js';
import type { LabSecrets } from './render.js';
import { run } from './run.js';
import { type LabState, readState, takenSubnets, withAllocationLock, writeState } from './state.js';
import { collectStatus, problems } from './status.js';

export const DEFAULT_APP_VERSION = '1.0.0';

export interface UpOptions {
  name: string;
  appVersion?: string;
  log?: (line: string) => void;
  /** aborting stops before the next step and removes what was built (Ctrl-C) */
  signal?: AbortSignal;
}

export interface UpResult {
  inventory: string;
  alreadyUp: boolean;
  plan: LabPlan;
  seconds: number;
}

export async function labUp(opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const name = validateLabName(opts.name);
  checkPrerequisites();
  const dirs = labDirs(name);

  const existing = readState(name);
  if (existing) {
    if (existing.phase === 'up') {
      const status = await collectStatus(name);
      const wrong = problems(status);
      if (wrong.length === 0) {
        log(`lab ${name} is already up`);
        return {
          inventory: dirs.inventory,
          alreadyUp: true,
          plan: planLab(name, existing.subnetIndex),
          seconds: (Date.now() - started) / 1000,
        };
      }
      log(`lab ${name} is up but not healthy (${wrong.join('; ')}); rebuilding it`);
    } else {
      log(`lab ${name} was left half-built; removing it first`);
    }
    await labDown({ name, log });
  } else {
    // namespaces without a state file (a crash before the first write)
    await labDown({ name, log: () => {}, quietIfAbsent: true });
  }

  // choosing a /24 and recording it is one critical section, so two labs
  // coming up at the same moment never pick the same one
  const { plan, state } = await withAllocationLock(async () => {
    const plan = planLab(name, chooseSubnetIndex(name, await subnetsInUse(name)));
    const state: LabState = {
      name,
      subnetIndex: plan.subnetIndex,
      createdAt: new Date().toISOString(),
      phase: 'creating',
      steps: [],
      netns: [],
      holders: {},
      mountNs: {},
      version: opts.appVersion ?? DEFAULT_APP_VERSION,
    };
    writeState(state);
    return { plan, state };
  });
  log(`lab ${name}: ${plan.cidr}, VIP ${plan.vip}, VRRP id ${plan.vrid}`);

  const ctx: BuildContext = { plan, dirs, state, secrets: newSecrets(), hostKeys: {} };
  let current = 'start';
  const step = async (title: string, fn: () => Promise<void>) => {
    current = title;
    if (opts.signal?.aborted) throw new Error('interrupted');
    const t = Date.now();
    await fn();
    state.steps.push(title);
    writeState(state);
    log(`  ${title} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };

  // javac is the slowest single thing; run it while the network comes up
  const release = buildAppRelease({
    version: state.version!,
    outDir: join(dirs.releasesDir, state.version!),
  });
  release.catch(() => {}); // awaited (and reported) in its step

  try {
    await step('folders and keys', () => prepareFolders(ctx));
    await step('network namespaces and bridge', () =>
      createNetwork(plan, (ns) => {
        state.netns.push(ns);
        writeState(state);
      }),
    );
    await step('node namespaces', () => startNodes(ctx));
    await step('sshd', () => startOnBoth(ctx, 'sshd'));
    await step('postgresql primary on a', () => startPrimary(ctx));
    await step('postgresql standby on b', () => startStandby(ctx));
    await step('keepalived (VIP on a)', () => startKeepalived(ctx));
    await step('app release', async () => installRelease(ctx, await release));
    await step('java and python services', () => startServices(ctx));
    await step('config sync', () => startOnBoth(ctx, 'config-sync'));
    await step('inventory', () => writeInventory(ctx));
  } catch (err) {
    if (process.env.PAIRSHIFT_LAB_KEEP_ON_FAILURE === '1') {
      throw new Error(
        `lab up failed at step "${current}" (kept for inspection: PAIRSHIFT_LAB_KEEP_ON_FAILURE=1)`,
        { cause: err },
      );
    }
    log(`lab up failed at step "${current}"; removing what it created`);
    try {
      await labDown({ name, log: () => {} });
    } catch (cleanupErr) {
      throw new Error(
        `lab up failed at step "${current}" and cleanup failed too (run pairshift lab down --name ${name})`,
        { cause: cleanupErr },
      );
    }
    throw new Error(`lab up failed at step "${current}" (everything it created was removed)`, {
      cause: err,
    });
  }
  state.phase = 'up';
  state.inventory = dirs.inventory;
  writeState(state);
  return {
    inventory: dirs.inventory,
    alreadyUp: false,
    plan,
    seconds: (Date.now() - started) / 1000,
  };
}

function newSecrets(): LabSecrets {
  const pw = () => randomBytes(18).toString('base64url');
  return { postgres: pw(), app: pw(), replicator: pw() };
}

/** /24s other labs hold, plus any route already on the host (so a lab never
 * shadows a network someone else configured in 198.18.0.0/15). */
async function subnetsInUse(name: string): Promise<Set<number>> {
  const taken = takenSubnets(name);
  const routes = await run('ip', ['-4', 'route', 'show'], { allowFail: true });
  for (const m of routes.stdout.matchAll(/^198\.(18|19)\.(\d+)\.0\/24/gm)) {
    taken.add((Number(m[1]) - 18) * 256 + Number(m[2]));
  }
  return taken;
}

export { sshOptions } from './build-inventory.js';
