import type { BuildContext } from './build-context.js';
import { pgBin } from './build-database.js';
import { buildInventory, inventoryYaml } from './inventory.js';
import type { LabDirs } from './layout.js';
import { writeFile } from './node-files.js';
import { NODE_IDS } from './plan.js';
import { run } from './run.js';

export async function writeInventory(ctx: BuildContext): Promise<void> {
  const { plan, dirs } = ctx;
  const inv = buildInventory({
    plan,
    hostKeys: { a: ctx.hostKeys.a!, b: ctx.hostKeys.b! },
    privateKeyPath: dirs.clientKey,
    knownHostsPath: dirs.knownHosts,
    pgpassPath: dirs.pgpass,
    pgBinDir: await pgBin(),
    version: ctx.state.version!,
    packagePublicKeyPath: ctx.packagePublicKey,
  });
  writeFile(dirs.inventory, inventoryYaml(inv));
  // prove the inventory works: key login with the pinned host keys only
  await Promise.all(
    NODE_IDS.map((id) =>
      run('ssh', [...sshOptions(dirs), `root@${plan.nodeAddress[id]}`, 'hostname'], {
        timeoutMs: 15_000,
      }).then((r) => {
        if (r.stdout.trim() !== plan.netns[id]) {
          throw new Error(
            `ssh to ${plan.nodeAddress[id]} reached ${r.stdout.trim()}, not ${plan.netns[id]}`,
          );
        }
      }),
    ),
  );
}

export function sshOptions(dirs: LabDirs): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    dirs.clientKey,
    '-o',
    `UserKnownHostsFile=${dirs.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
  ];
}
