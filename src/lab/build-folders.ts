import { readFileSync } from 'node:fs';
import { ensureLabSigningKey } from './app/releases.js';
import type { BuildContext } from './build-context.js';
import { ensureHostMountPoints } from './host-dirs.js';
import { generateKey, hostKeyOf, knownHostsLines } from './keys.js';
import { NODE_MOUNTS, NODE_PATHS } from './layout.js';
import { installNodeBin, makeDir, writeFile } from './node-files.js';
import { NODE_IDS } from './plan.js';
import { hostsFile, keepalivedConf, pgpass, rootShellRc, sshdConfig, syncConf } from './render.js';

export async function prepareFolders(ctx: BuildContext): Promise<void> {
  const { dirs, plan } = ctx;
  ensureHostMountPoints();
  makeDir(dirs.sshDir, { mode: 0o700 });
  makeDir(dirs.secretsDir, { mode: 0o700 });
  makeDir(dirs.logDir);
  const keyJobs: Promise<void>[] = [generateKey(dirs.clientKey, `pairshift-lab-${plan.name}`)];
  for (const id of NODE_IDS) {
    const node = dirs.node(id);
    for (const m of NODE_MOUNTS) {
      if (m.file) writeFile(node.mount(m.dir), hostsFile(plan, id));
      else makeDir(node.mount(m.dir));
    }
    const p = (nodePath: string) => node.hostPath(nodePath);
    makeDir(p(NODE_PATHS.dataDir), { mode: 0o700, owner: 'postgres' });
    makeDir(p(NODE_PATHS.pgSocketDir), { mode: 0o2775, owner: 'postgres' });
    makeDir(p(`${NODE_PATHS.logDir}/postgresql`), { mode: 0o755, owner: 'postgres' });
    makeDir(p(NODE_PATHS.configDir), { mode: 0o755 });
    installNodeBin(p(NODE_PATHS.toolsBin));
    makeDir(p(NODE_PATHS.sshDir), { mode: 0o700 });
    makeDir(p(NODE_PATHS.syncDir));
    makeDir(p(NODE_PATHS.servicesDir));
    makeDir(p(NODE_PATHS.rootHome), { mode: 0o700 });
    writeFile(p(`${NODE_PATHS.rootHome}/.bashrc`), rootShellRc());
    writeFile(p(`${NODE_PATHS.rootHome}/.profile`), `. ~/.bashrc\n`);
    writeFile(p(`${NODE_PATHS.sshDir}/sshd_config`), sshdConfig());
    writeFile(p(`${NODE_PATHS.syncDir}/sync.conf`), syncConf(plan, id));
    writeFile(p(NODE_PATHS.keepalivedConf), keepalivedConf(plan, id));
    writeFile(p(NODE_PATHS.keepalivedFaultFile), '0\n');
    // the replication password, for pg_basebackup and primary_conninfo on
    // whichever node is the standby
    writeFile(p(`${NODE_PATHS.dbRoot}/pgpass`), pgpass(plan, ctx.secrets), {
      mode: 0o600,
      owner: 'postgres',
    });
    keyJobs.push(
      generateKey(p(`${NODE_PATHS.sshDir}/ssh_host_ed25519_key`), `${plan.netns[id]}-host`),
    );
  }
  writeFile(dirs.pgpass, pgpass(plan, ctx.secrets), { mode: 0o600 });
  // the key the lab's upgrade packages are signed with; the inventory names
  // its public half as the one to trust
  keyJobs.push(
    ensureLabSigningKey(dirs.packageKeysDir).then((k) => {
      ctx.packagePublicKey = k.publicKeyPath;
    }),
  );
  await Promise.all(keyJobs);

  const pub = readFileSync(`${dirs.clientKey}.pub`, 'utf8');
  for (const id of NODE_IDS) {
    ctx.hostKeys[id] = await hostKeyOf(
      dirs.node(id).hostPath(`${NODE_PATHS.sshDir}/ssh_host_ed25519_key`),
    );
  }
  const known = knownHostsLines(
    NODE_IDS.map((id) => ({ address: plan.nodeAddress[id], key: ctx.hostKeys[id]! })),
  );
  writeFile(dirs.knownHosts, known);
  for (const id of NODE_IDS) {
    const p = (nodePath: string) => dirs.node(id).hostPath(nodePath);
    writeFile(p(`${NODE_PATHS.sshDir}/authorized_keys`), pub, { mode: 0o600 });
    writeFile(p(`${NODE_PATHS.sshDir}/known_hosts`), known);
    // the sync job logs into the peer with the lab's key
    writeFile(p(`${NODE_PATHS.sshDir}/id_ed25519`), readFileSync(dirs.clientKey), { mode: 0o600 });
  }
}
