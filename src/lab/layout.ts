// Where things live: the paths a node sees (identical on both nodes, as on a
// production pair) and the per-node host folders bound over them (pure).
//
// Each node runs in its own mount namespace; inside it, every path in
// NODE_MOUNTS is a bind mount of that node's own folder under the lab's state
// folder. The host only needs an empty mount point at each path.
import { join } from 'node:path';
import type { NodeId } from './plan.js';

export const LAB_ROOT = process.env.PAIRSHIFT_LAB_ROOT ?? '/var/lib/pairshift-lab';

/** Paths as the node (and anything that logs into it over ssh) sees them. */
export const NODE_PATHS = {
  appDir: '/opt/app',
  appJar: '/opt/app/app.jar',
  configDir: '/etc/app',
  rootKey: '/etc/app/root.key',
  keepalivedDir: '/etc/keepalived',
  keepalivedConf: '/etc/keepalived/keepalived.conf',
  /** non-zero content puts this node's VRRP instance into FAULT (releases the VIP) */
  keepalivedFaultFile: '/etc/keepalived/fault',
  dbRoot: '/var/lib/app',
  dataDir: '/var/lib/app/pgdata',
  backupDir: '/var/backups/app',
  logDir: '/var/log/app',
  runDir: '/run/app',
  pgSocketDir: '/run/postgresql',
  /** the lab's own node tooling: supervisor, sync job, sshd config and keys */
  toolsDir: '/opt/pairshift-node',
  toolsBin: '/opt/pairshift-node/bin',
  sshDir: '/opt/pairshift-node/ssh',
  syncDir: '/opt/pairshift-node/sync',
  servicesDir: '/opt/pairshift-node/services',
  rootHome: '/root',
} as const;

/** node path -> name of the node's host folder (or file) bound over it */
export const NODE_MOUNTS: ReadonlyArray<{ target: string; dir: string; file?: boolean }> = [
  { target: NODE_PATHS.appDir, dir: 'opt-app' },
  { target: NODE_PATHS.configDir, dir: 'etc-app' },
  { target: NODE_PATHS.keepalivedDir, dir: 'etc-keepalived' },
  { target: NODE_PATHS.dbRoot, dir: 'var-lib-app' },
  { target: NODE_PATHS.backupDir, dir: 'backups' },
  { target: NODE_PATHS.logDir, dir: 'log' },
  { target: NODE_PATHS.runDir, dir: 'run' },
  { target: NODE_PATHS.pgSocketDir, dir: 'run-postgresql' },
  { target: NODE_PATHS.toolsDir, dir: 'tools' },
  // root's own home: ssh sessions must not run the host's ~/.bashrc (here it
  // runs `pyenv init`, whose rehash lock stalls every session for 60 s once
  // a killed session leaves it behind), and a real server has its own /root
  { target: NODE_PATHS.rootHome, dir: 'root-home' },
  // the node's own name and its peer's, as on a real server (Java's
  // InetAddress.getLocalHost() needs the hostname to resolve)
  { target: '/etc/hosts', dir: 'hosts', file: true },
];

/** Empty folders the host must have for the bind mounts (and sshd's
 * privilege-separation folder, which sshd insists on). */
export const HOST_MOUNT_POINTS: readonly string[] = [
  ...NODE_MOUNTS.filter((m) => !m.file).map((m) => m.target),
  '/run/sshd',
];

export interface LabDirs {
  root: string;
  stateFile: string;
  inventory: string;
  sshDir: string;
  clientKey: string;
  knownHosts: string;
  secretsDir: string;
  pgpass: string;
  releasesDir: string;
  packageKeysDir: string;
  logDir: string;
  node(id: NodeId): {
    root: string;
    mount(dir: string): string;
    hostPath(nodePath: string): string;
  };
}

export function labDirs(name: string, root = LAB_ROOT): LabDirs {
  const base = join(root, name);
  return {
    root: base,
    stateFile: join(base, 'state.json'),
    inventory: join(base, 'hapair.yaml'),
    sshDir: join(base, 'ssh'),
    clientKey: join(base, 'ssh', 'id_ed25519'),
    knownHosts: join(base, 'ssh', 'known_hosts'),
    secretsDir: join(base, 'secrets'),
    pgpass: join(base, 'secrets', 'pgpass'),
    releasesDir: join(base, 'releases'),
    packageKeysDir: join(base, 'package-keys'),
    logDir: join(base, 'log'),
    node(id) {
      const nodeRoot = join(base, 'nodes', id);
      return {
        root: nodeRoot,
        mount: (dir) => join(nodeRoot, dir),
        hostPath(nodePath) {
          // longest mount target that prefixes nodePath
          const m = [...NODE_MOUNTS]
            .sort((x, y) => y.target.length - x.target.length)
            .find((x) => nodePath === x.target || nodePath.startsWith(`${x.target}/`));
          if (!m) throw new Error(`${nodePath} is not inside a node mount`);
          return join(nodeRoot, m.dir, nodePath.slice(m.target.length));
        },
      };
    },
  };
}
