// The pair's inventory as a HAPair manifest (pure). `lab up` writes it to
// <lab>/hapair.yaml; the operator reads it unchanged. No secret is inside:
// database passwords are in a pgpass file named by path, the ssh private key
// likewise, and host keys are public.
import { stringify } from 'yaml';
import { NODE_PATHS } from './layout.js';
import type { LabPlan, NodeId } from './plan.js';
import {
  ADVERT_INT,
  DB,
  JAVA_PORT,
  PG_PORT,
  PRIORITY,
  PYTHON_PORT,
  pgCtlCommand,
  SSH_PORT,
  SYNC_PERIOD_SECONDS,
  svcCommand,
} from './render.js';

export interface HostKey {
  /** e.g. ssh-ed25519 */
  type: string;
  /** OpenSSH fingerprint, "SHA256:..." */
  fingerprint: string;
  /** the public key line ("ssh-ed25519 AAAA..."), for known_hosts */
  publicKey: string;
}

export interface InventoryInput {
  plan: LabPlan;
  hostKeys: Record<NodeId, HostKey>;
  privateKeyPath: string;
  knownHostsPath: string;
  pgpassPath: string;
  pgBinDir: string;
  version: string;
  /** public key the lab's upgrade packages are signed with */
  packagePublicKeyPath?: string;
}

export function buildInventory(i: InventoryInput) {
  const { plan } = i;
  const node = (id: NodeId) => ({
    name: id,
    hostname: plan.netns[id],
    address: plan.nodeAddress[id],
    ssh: { port: SSH_PORT, hostKey: i.hostKeys[id] },
    // roles at bring-up; observed state always wins afterwards
    initialRole: {
      database: id === 'a' ? 'primary' : 'standby',
      vip: id === 'a' ? 'master' : 'backup',
    },
    keepalivedPriority: PRIORITY[id],
  });
  const service = (name: string, port: number, versionPath?: string) => ({
    name,
    port,
    healthPath: '/health',
    ...(versionPath ? { versionPath } : {}),
    start: svcCommand('start', name),
    stop: svcCommand('stop', name),
    status: svcCommand('status', name),
  });
  return {
    apiVersion: 'pairshift.io/v1alpha1',
    kind: 'HAPair',
    metadata: {
      name: plan.name,
      labels: { 'pairshift.io/lab': plan.name },
      annotations: {
        'pairshift.io/lab-version': i.version,
        // where a client outside both nodes runs (`ip netns exec <it> ...`)
        'pairshift.io/lab-client-netns': plan.netns.client,
        'pairshift.io/lab-client-address': plan.clientAddress,
        ...(i.packagePublicKeyPath
          ? { 'pairshift.io/lab-package-public-key': i.packagePublicKeyPath }
          : {}),
      },
    },
    spec: {
      vip: { address: plan.vip, prefixLength: 24, interface: 'eth0' },
      ssh: {
        user: 'root',
        port: SSH_PORT,
        privateKeyPath: i.privateKeyPath,
        knownHostsPath: i.knownHostsPath,
      },
      nodes: [node('a'), node('b')],
      keepalived: {
        configPath: NODE_PATHS.keepalivedConf,
        instance: 'VI_1',
        virtualRouterId: plan.vrid,
        advertIntervalSeconds: ADVERT_INT,
        faultFile: NODE_PATHS.keepalivedFaultFile,
        start: svcCommand('start', 'keepalived'),
        stop: svcCommand('stop', 'keepalived'),
        status: svcCommand('status', 'keepalived'),
        reload: svcCommand('reload', 'keepalived'),
      },
      services: [
        service('java', JAVA_PORT, '/version'),
        service('python', PYTHON_PORT, '/version'),
      ],
      database: {
        engine: 'postgresql',
        port: PG_PORT,
        name: DB.name,
        user: DB.user,
        superuser: DB.superuser,
        replicationUser: DB.replicationUser,
        /** pgpass-format file with every password, on the operator's machine */
        passFile: i.pgpassPath,
        osUser: 'postgres',
        dataDir: NODE_PATHS.dataDir,
        binDir: i.pgBinDir,
        socketDir: NODE_PATHS.pgSocketDir,
        logFile: `${NODE_PATHS.logDir}/postgresql/postgresql.log`,
        start: pgCtlCommand(i.pgBinDir, 'start'),
        stop: pgCtlCommand(i.pgBinDir, 'stop'),
        status: pgCtlCommand(i.pgBinDir, 'status'),
      },
      rsync: {
        source: `${NODE_PATHS.configDir}/`,
        direction: 'vip-holder-to-peer',
        periodSeconds: SYNC_PERIOD_SECONDS,
        // each prints one line of JSON (sync-ctl status)
        pause: `${NODE_PATHS.toolsBin}/sync-ctl pause`,
        resume: `${NODE_PATHS.toolsBin}/sync-ctl resume`,
        status: `${NODE_PATHS.toolsBin}/sync-ctl status`,
        runOnce: `${NODE_PATHS.toolsBin}/sync-ctl once`,
      },
      paths: {
        appDir: NODE_PATHS.appDir,
        appJar: NODE_PATHS.appJar,
        configDir: NODE_PATHS.configDir,
        rootKey: NODE_PATHS.rootKey,
        backupDir: NODE_PATHS.backupDir,
        logDir: NODE_PATHS.logDir,
      },
    },
  };
}

export type Inventory = ReturnType<typeof buildInventory>;

export function inventoryYaml(inv: Inventory): string {
  return `# HAPair inventory written by \`pairshift lab up\` (docs/lab.md).\n${stringify(inv, { lineWidth: 0 })}`;
}
