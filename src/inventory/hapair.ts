// The HAPair: the inventory of one pair (nodes, SSH endpoints with pinned
// host keys, VIP, keepalived, services, database, rsync job, paths). This is
// the typed, validated form every driver takes; `pairshift lab up` writes
// one, and in a cluster it is a custom resource. Commands (start, stop,
// status...) are shell command lines the pair's owner declares: systemd units
// in production, the lab's own scripts in the lab.
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { receiverListSchema } from '../config/receivers.js';
import { normaliseFingerprint } from './fingerprint.js';

// Descriptions (.describe) are what `kubectl explain hapair.spec...` shows:
// the CRD generator copies them and test/unit/crd.test.ts fails on a field
// without one.
const command = z.string().min(1, { error: 'expected a shell command line' });
const absPath = z.string().regex(/^\//, { error: 'expected an absolute path' });
const port = z.number().int().min(1).max(65535, { error: 'expected a port from 1 to 65535' });
// z.ipv4: octets 0-255, and `format: ipv4` in the CRD.
const ipv4 = z.ipv4({ error: 'expected an IPv4 address' });

const hostKey = z.object({
  type: z.string().optional().describe('Key type, e.g. ssh-ed25519.'),
  fingerprint: z
    .string()
    .regex(/^(SHA256:)?[A-Za-z0-9+/]{43}=?$/, { error: 'expected an OpenSSH SHA256 fingerprint' })
    .describe('The pinned host key: its OpenSSH SHA256 fingerprint (ssh-keygen -lf).'),
  publicKey: z.string().optional().describe('The public key itself, when known.'),
});

const node = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'expected a DNS-label node name' })
    .describe("The node's name in the pair (a DNS label); unique in the pair."),
  hostname: z.string().optional().describe('The host name, for people and logs.'),
  address: ipv4.describe('The IPv4 address the operator reaches the node on (SSH, /health).'),
  ssh: z
    .object({
      port: port.optional().describe('SSH port of this node; default: spec.ssh.port.'),
      hostKey: hostKey.describe('The host key the SSH client pins; any other is refused.'),
    })
    .describe('SSH to this node.'),
  initialRole: z
    .record(z.string(), z.string())
    .optional()
    .describe('Roles at inventory time, e.g. {database: primary, vip: master}; informational.'),
  keepalivedPriority: z
    .number()
    .int()
    .min(1)
    .max(255)
    .optional()
    .describe("This node's keepalived priority when it is not switching."),
});

const service = z.object({
  name: z.string().min(1).describe('The service name (java, python, ...).'),
  port: port.describe('The port it listens on.'),
  healthPath: z.string().optional().describe('HTTP path of its health check, e.g. /health.'),
  versionPath: z.string().optional().describe('HTTP path that reports its version.'),
  start: command.describe('Shell command that starts it.'),
  stop: command.describe('Shell command that stops it.'),
  status: command.describe('Shell command that exits 0 when it runs.'),
});

export const haPairSchema = z.object({
  apiVersion: z.literal('pairshift.io/v1alpha1', {
    error: 'expected apiVersion pairshift.io/v1alpha1',
  }),
  kind: z.literal('HAPair', { error: 'expected kind HAPair' }),
  metadata: z.object({
    name: z.string().min(1),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: z.object({
    vip: z
      .object({
        address: ipv4.describe('The virtual IP clients use.'),
        prefixLength: z.number().int().min(1).max(32).describe('Its prefix length, e.g. 24.'),
        interface: z.string().describe('The interface keepalived puts it on.'),
      })
      .describe('The virtual IP keepalived moves between the nodes.'),
    ssh: z
      .object({
        user: z.string().min(1).describe('The user the operator logs in as.'),
        port: port.default(22).describe('SSH port (default 22); a node may override it.'),
        privateKeyPath: absPath.describe(
          "The operator's private key file (mounted from a Secret; never in the resource).",
        ),
        knownHostsPath: absPath.optional().describe('A known_hosts file to use as well.'),
      })
      .describe('How the operator reaches the nodes.'),
    nodes: z
      .array(node.describe('One server of the pair.'))
      .length(2, { error: 'a pair has exactly two nodes' })
      .describe('The two servers, by unique name.'),
    keepalived: z
      .object({
        configPath: absPath.describe('keepalived.conf on each node.'),
        instance: z.string().min(1).describe('The vrrp_instance holding the VIP.'),
        virtualRouterId: z
          .number()
          .int()
          .min(1)
          .max(255)
          .optional()
          .describe('Its virtual_router_id.'),
        advertIntervalSeconds: z
          .number()
          .positive()
          .optional()
          .describe('Its advert_int, seconds.'),
        faultFile: absPath
          .optional()
          .describe('A file whose presence makes the node give up the VIP (track_file).'),
        start: command.describe('Shell command that starts keepalived.'),
        stop: command.describe('Shell command that stops keepalived.'),
        status: command.describe('Shell command that exits 0 when keepalived runs.'),
        reload: command.describe('Shell command that reloads its configuration.'),
      })
      .describe('Keepalived on the nodes.'),
    services: z
      .array(service.describe('One service of the product.'))
      .min(1)
      .describe("The product's services on each node (the Java and the Python service)."),
    database: z
      .object({
        /** GaussDB/openGauss speak the same protocol; their tools differ (gs_ctl, gs_dump). */
        engine: z
          .enum(['postgresql', 'gaussdb', 'opengauss'])
          .default('postgresql')
          .describe('postgresql (default), gaussdb or opengauss: which tools to use.'),
        port: port.describe('The database port on each node.'),
        name: z.string().min(1).describe("The product's database."),
        user: z.string().min(1).describe("The product's database user."),
        superuser: z.string().min(1).describe('The user for switchover and backups.'),
        replicationUser: z.string().min(1).describe('The streaming replication user.'),
        passFile: absPath.optional().describe('A pgpass file (mounted from a Secret).'),
        osUser: z.string().min(1).describe('The OS user that owns the cluster.'),
        dataDir: absPath.describe('The data directory.'),
        binDir: absPath.describe('Where the server binaries are (pg_ctl, pg_dump).'),
        socketDir: absPath.optional().describe('The Unix socket directory.'),
        logFile: absPath.optional().describe('The server log file.'),
        start: command.describe('Shell command that starts the database.'),
        stop: command.describe('Shell command that stops the database.'),
        status: command.describe('Shell command that exits 0 when the database runs.'),
      })
      .describe('The database: one primary, one streaming standby.'),
    rsync: z
      .object({
        source: absPath.describe('The folder copied (the configuration, with the root key).'),
        direction: z
          .literal('vip-holder-to-peer')
          .describe("vip-holder-to-peer: the VIP holder's copy wins."),
        periodSeconds: z.number().positive().describe('How often the job runs, seconds.'),
        pause: command.describe('Shell command that pauses the job.'),
        resume: command.describe('Shell command that resumes it.'),
        status: command.describe('Shell command that prints its state.'),
        runOnce: command.optional().describe('Shell command that runs one copy now.'),
      })
      .describe('The rsync job keeping the configuration in step.'),
    paths: z
      .object({
        appDir: absPath.describe('The application folder.'),
        appJar: absPath.describe("The Java service's jar."),
        configDir: absPath.describe('The configuration folder.'),
        rootKey: absPath.describe('The root key file: backed up byte-exact, never overwritten.'),
        backupDir: absPath.describe('Where backups go.'),
        logDir: absPath.optional().describe("The application's log folder."),
      })
      .describe('Paths on the nodes.'),
    notifications: z
      .object({
        receivers: receiverListSchema.describe(
          'Webhook receivers of this pair, on top of the operator-wide ones (notifications.receivers of its configuration).',
        ),
      })
      .optional()
      .describe(
        "Webhooks for this pair's upgrades: phase changes, halts and results (docs/notifications.md). Secrets come from files on the operator's side.",
      ),
  }),
});

export type HAPair = z.output<typeof haPairSchema>;
export type HAPairNode = HAPair['spec']['nodes'][number];

export class InventoryError extends Error {
  override readonly name = 'InventoryError';
}

export function parseHAPair(text: string, source: string): HAPair {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new InventoryError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = haPairSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new InventoryError(
      `${source}: ${issue.path.join('.') || '(document)'}: ${issue.message}`,
    );
  }
  const names = r.data.spec.nodes.map((n) => n.name);
  if (names[0] === names[1])
    throw new InventoryError(`${source}: spec.nodes: the two nodes need different names`);
  for (const n of r.data.spec.nodes)
    n.ssh.hostKey.fingerprint = normaliseFingerprint(n.ssh.hostKey.fingerprint);
  return r.data;
}

export async function loadHAPair(path: string): Promise<HAPair> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InventoryError(
      `${path}: cannot read the HAPair (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  return parseHAPair(text, path);
}

export function nodeNamed(pair: HAPair, name: string): HAPairNode {
  const n = pair.spec.nodes.find((x) => x.name === name);
  if (!n) throw new InventoryError(`pair ${pair.metadata.name} has no node "${name}"`);
  return n;
}

export function peerOf(pair: HAPair, name: string): HAPairNode {
  nodeNamed(pair, name);
  return pair.spec.nodes.find((x) => x.name !== name)!;
}

/** A path the pair declares, which no package file may overwrite, and what it is. */
export interface ProtectedPath {
  readonly path: string;
  readonly what: string;
}

/**
 * What a package may never write onto: the root key above all (under
 * whatever name the pair gives it), and the other places the pair declares
 * for its own state. Config payload files land in paths.configDir, so any of
 * these inside it could otherwise be replaced by a trusted package.
 */
export function protectedPaths(pair: HAPair): ProtectedPath[] {
  const s = pair.spec;
  return [
    { path: s.paths.rootKey, what: 'the root key (paths.rootKey)' },
    { path: s.paths.backupDir, what: 'the backup folder (paths.backupDir)' },
    ...(s.paths.logDir ? [{ path: s.paths.logDir, what: 'the log folder (paths.logDir)' }] : []),
    { path: s.keepalived.configPath, what: 'the keepalived configuration (keepalived.configPath)' },
    { path: s.database.dataDir, what: 'the database folder (database.dataDir)' },
    { path: s.paths.appJar, what: 'the jar (paths.appJar), which only payload/app.jar replaces' },
  ].map((p) => ({ ...p, path: posix.normalize(p.path).replace(/(.)\/+$/, '$1') }));
}

/** The protected path a target is, or lies inside, or null when it may be written. */
export function protectedTarget(
  target: string,
  protect: readonly ProtectedPath[],
): ProtectedPath | null {
  const t = posix.normalize(target);
  return protect.find((p) => t === p.path || t.startsWith(`${p.path}/`)) ?? null;
}
