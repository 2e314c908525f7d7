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
import { normaliseFingerprint } from './fingerprint.js';

const command = z.string().min(1, { error: 'expected a shell command line' });
const absPath = z.string().regex(/^\//, { error: 'expected an absolute path' });
const port = z.number().int().min(1).max(65535, { error: 'expected a port from 1 to 65535' });
const ipv4 = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/, { error: 'expected an IPv4 address' });

const hostKey = z.object({
  type: z.string().optional(),
  fingerprint: z
    .string()
    .regex(/^(SHA256:)?[A-Za-z0-9+/]{43}=?$/, { error: 'expected an OpenSSH SHA256 fingerprint' }),
  publicKey: z.string().optional(),
});

const node = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, { error: 'expected a DNS-label node name' }),
  hostname: z.string().optional(),
  address: ipv4,
  ssh: z.object({ port: port.optional(), hostKey }),
  initialRole: z.record(z.string(), z.string()).optional(),
  keepalivedPriority: z.number().int().min(1).max(255).optional(),
});

const service = z.object({
  name: z.string().min(1),
  port,
  healthPath: z.string().optional(),
  versionPath: z.string().optional(),
  start: command,
  stop: command,
  status: command,
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
    vip: z.object({
      address: ipv4,
      prefixLength: z.number().int().min(1).max(32),
      interface: z.string(),
    }),
    ssh: z.object({
      user: z.string().min(1),
      port: port.default(22),
      privateKeyPath: absPath,
      knownHostsPath: absPath.optional(),
    }),
    nodes: z.array(node).length(2, { error: 'a pair has exactly two nodes' }),
    keepalived: z.object({
      configPath: absPath,
      instance: z.string().min(1),
      virtualRouterId: z.number().int().min(1).max(255).optional(),
      advertIntervalSeconds: z.number().positive().optional(),
      faultFile: absPath.optional(),
      start: command,
      stop: command,
      status: command,
      reload: command,
    }),
    services: z.array(service).min(1),
    database: z.object({
      /** GaussDB/openGauss speak the same protocol; their tools differ (gs_ctl, gs_dump). */
      engine: z.enum(['postgresql', 'gaussdb', 'opengauss']).default('postgresql'),
      port,
      name: z.string().min(1),
      user: z.string().min(1),
      superuser: z.string().min(1),
      replicationUser: z.string().min(1),
      passFile: absPath.optional(),
      osUser: z.string().min(1),
      dataDir: absPath,
      binDir: absPath,
      socketDir: absPath.optional(),
      logFile: absPath.optional(),
      start: command,
      stop: command,
      status: command,
    }),
    rsync: z.object({
      source: absPath,
      direction: z.literal('vip-holder-to-peer'),
      periodSeconds: z.number().positive(),
      pause: command,
      resume: command,
      status: command,
      runOnce: command.optional(),
    }),
    paths: z.object({
      appDir: absPath,
      appJar: absPath,
      configDir: absPath,
      rootKey: absPath,
      backupDir: absPath,
      logDir: absPath.optional(),
    }),
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
