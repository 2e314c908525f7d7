// Every file the lab writes onto a node, rendered from the plan (pure).
// Kept apart from the steps that write them so they can be read, diffed and
// unit-tested, and so a later keepalived driver can reuse the layout.
import { renderAppProperties } from './app/commands.js';
import { NODE_PATHS } from './layout.js';
import type { LabPlan, NodeId } from './plan.js';

export const PG_PORT = 5432;
export const JAVA_PORT = 8080;
export const PYTHON_PORT = 8081;
export const SSH_PORT = 22;
export const SYNC_PERIOD_SECONDS = 2;
/** VRRPv3 advert interval in seconds (lab.md: 0.1 s moves the VIP in ~0.1-0.3 s) */
export const ADVERT_INT = 0.1;
export const PRIORITY: Record<NodeId, number> = { a: 150, b: 100 };

export const DB = {
  name: 'app',
  user: 'app',
  superuser: 'postgres',
  replicationUser: 'replicator',
} as const;

export interface LabSecrets {
  /** password of the `postgres` superuser over the network */
  postgres: string;
  app: string;
  replicator: string;
}

const peerOf = (id: NodeId): NodeId => (id === 'a' ? 'b' : 'a');

export function sshdConfig(): string {
  const ssh = NODE_PATHS.sshDir;
  return `# sshd of a pairshift lab node: key authentication only.
Port ${SSH_PORT}
ListenAddress 0.0.0.0
HostKey ${ssh}/ssh_host_ed25519_key
AuthorizedKeysFile ${ssh}/authorized_keys
PidFile ${NODE_PATHS.runDir}/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
# the operator opens several sessions at once
MaxStartups 100:30:200
MaxSessions 50
Subsystem sftp internal-sftp
`;
}

/** keepalived.conf of one node. Layout kept simple on purpose so a driver can
 * rewrite `priority` and reload (SIGHUP), or write a non-zero number into the
 * fault file to drop the node to FAULT at once (releases the VIP). */
export function keepalivedConf(plan: LabPlan, id: NodeId, priority = PRIORITY[id]): string {
  return `# keepalived of pairshift lab ${plan.name}, node ${id}
global_defs {
  router_id ${plan.netns[id]}
  vrrp_version 3
  script_user root
  enable_script_security
  max_auto_priority
}

# Non-zero content -> this node goes to FAULT and gives up the VIP at once.
track_file fault {
  file ${NODE_PATHS.keepalivedFaultFile}
  weight 0
  init_file 0
}

vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id ${plan.vrid}
  priority ${priority}
  advert_int ${ADVERT_INT}
  track_file {
    fault
  }
  virtual_ipaddress {
    ${plan.vip}/24 dev eth0
  }
}
`;
}

/** Appended to postgresql.conf on the primary (pg_basebackup copies it). */
export function postgresqlConf(): string {
  return `
# --- pairshift lab ---
listen_addresses = '*'
port = ${PG_PORT}
unix_socket_directories = '${NODE_PATHS.pgSocketDir}'
wal_level = replica
max_wal_senders = 10
wal_keep_size = '512MB'
hot_standby = on
hot_standby_feedback = on
wal_log_hints = on
max_connections = 200
# One machine, many labs: fsync off saves seconds per bring-up. A crashed
# process still loses nothing (the kernel keeps the page cache); only a
# crash of the whole machine could, and that ends the lab anyway.
fsync = off
log_line_prefix = '%m [%p] %u@%d '
`;
}

export function pgHba(plan: LabPlan): string {
  return `# pairshift lab ${plan.name}
local   all          all                          peer
host    all          all          127.0.0.1/32    scram-sha-256
host    all          all          ${plan.cidr}    scram-sha-256
host    replication  ${DB.replicationUser}   ${plan.cidr}    scram-sha-256
`;
}

/** ~/.pgpass format, for the host (operator, tests, prober). */
export function pgpass(plan: LabPlan, s: LabSecrets): string {
  const lines: string[] = [];
  for (const host of [plan.vip, plan.nodeAddress.a, plan.nodeAddress.b]) {
    lines.push(`${host}:${PG_PORT}:*:${DB.superuser}:${s.postgres}`);
    lines.push(`${host}:${PG_PORT}:*:${DB.user}:${s.app}`);
    lines.push(`${host}:${PG_PORT}:replication:${DB.replicationUser}:${s.replicator}`);
    lines.push(`${host}:${PG_PORT}:*:${DB.replicationUser}:${s.replicator}`);
  }
  return `${lines.join('\n')}\n`;
}

/** /etc/app/app.properties: identical on both nodes (the sync job copies
 * it), so it names the VIP, not a node (each node's Java service gets its
 * node name on the command line instead). */
export function appProperties(plan: LabPlan, s: LabSecrets): string {
  return renderAppProperties({
    host: plan.vip,
    port: PG_PORT,
    name: DB.name,
    user: DB.user,
    password: s.app,
  });
}

export function hostsFile(plan: LabPlan, id: NodeId): string {
  return `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
${plan.nodeAddress[id]}\t${plan.netns[id]}
${plan.nodeAddress[peerOf(id)]}\t${plan.netns[peerOf(id)]}
${plan.vip}\t${plan.name}-vip
`;
}

export function syncConf(plan: LabPlan, id: NodeId): string {
  return `# config sync job of node ${id} (read by sync-ctl)
PEER=${plan.nodeAddress[peerOf(id)]}
VIP=${plan.vip}
PERIOD=${SYNC_PERIOD_SECONDS}
SRC=${NODE_PATHS.configDir}/
KEY=${NODE_PATHS.sshDir}/id_ed25519
KNOWN_HOSTS=${NODE_PATHS.sshDir}/known_hosts
`;
}

export interface AppStart {
  java: string;
  python: string;
}

/** Service definitions for `svc` (one command line each, exec'd). */
export function serviceDefs(app: AppStart): Record<string, string> {
  const ssh = NODE_PATHS.sshDir;
  const run = NODE_PATHS.runDir;
  return {
    sshd: `exec /usr/sbin/sshd -D -f ${ssh}/sshd_config -E ${NODE_PATHS.logDir}/sshd.log\n`,
    keepalived: `exec /usr/sbin/keepalived -n -l -G -P -f ${NODE_PATHS.keepalivedConf} -p ${run}/keepalived.pid -r ${run}/vrrp.pid\n`,
    java: `exec ${app.java}\n`,
    python: `exec ${app.python}\n`,
    'config-sync': `exec sh ${NODE_PATHS.toolsBin}/sync-ctl loop\n`,
  };
}

/** Commands as the inventory gives them (run over ssh on the node). */
export function svcCommand(action: 'start' | 'stop' | 'status' | 'reload', service: string) {
  return `${NODE_PATHS.toolsBin}/svc ${action} ${service}`;
}

export function pgCtlCommand(binDir: string, action: 'start' | 'stop' | 'status'): string {
  const base = `runuser -u postgres -- ${binDir}/pg_ctl -D ${NODE_PATHS.dataDir}`;
  if (action === 'start')
    return `${base} -l ${NODE_PATHS.logDir}/postgresql/postgresql.log -w -t 60 start`;
  if (action === 'stop') return `${base} -m fast -w -t 60 stop`;
  return `${base} status`;
}

/** root's ~/.bashrc and ~/.profile on a node: bash reads .bashrc even for
 * `ssh node CMD`, so this is where the node's tools join the PATH. */
export function rootShellRc(): string {
  return `# root's shell on a pairshift lab node
export PATH=${NODE_PATHS.toolsBin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
`;
}
