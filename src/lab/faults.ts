// The lab's fault injector, as data (pure): each fault a production pair can
// throw at an upgrade, the phases where it can happen, and the shell scripts
// that inject and undo it, on the node, on both nodes or on the operator's
// host. Every script is idempotent: injecting twice leaves one fault, undoing
// what is not there changes nothing. fault-run.ts runs them in a lab;
// `pairshift lab fault` and the fault matrix (test/faults) use that.
//
// Every fault is made of real parts: routes, iptables rules in the node's
// network namespace, SIGKILL of the node's own daemons, PostgreSQL's replay
// pause, a full file system mounted in the node's mount namespace, bytes
// appended to a verified backup, a flag file the lab app reads. Nothing is
// mocked: the operator meets what it would meet on a server.
import { NODE_PATHS } from './layout.js';
import type { NodeId } from './plan.js';
import { PG_PORT } from './render.js';

export const FAULT_KINDS = [
  'link-cut',
  'kill-sshd',
  'kill-keepalived',
  'split-brain',
  'stop-replication',
  'replication-lag',
  'fill-backup-disk',
  'corrupt-backup',
  'migration-fail',
  'slow-health',
  'rsync-refuse-pause',
  'remove-staged',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export function isFaultKind(s: string): s is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(s);
}

/** Where a script runs: the target node, its peer, or the operator's host. */
export type FaultWhere = 'node' | 'peer' | 'host';

export interface FaultScript {
  where: FaultWhere;
  /** sh -c script */
  script: string;
}

/** What the scripts need to know about the lab and the upgrade. */
export interface FaultTarget {
  node: NodeId;
  peer: NodeId;
  nodeAddress: string;
  peerAddress: string;
  /** The operator host's address on the lab's bridge (the node's route to it). */
  uplink: string;
  /** remove-staged: the operator's staging folder of the upgrade (on the host). */
  stageDir?: string;
  /** slow-health: the version whose /health is slowed ("*" for any). */
  version?: string;
  /** slow-health: seconds each /health answer is held back. */
  delaySeconds?: number;
}

export interface FaultSpec {
  kind: FaultKind;
  /** One line for a person: what the fault does to the pair. */
  summary: string;
  /**
   * Phases where the fault can meet the upgrade (the matrix injects it as
   * each is entered). 'START' is before the request is written.
   */
  phases: readonly string[];
  /**
   * Faults that are not a command but a package: the matrix upgrades to this
   * lab package variant instead of the good one (inject and undo are empty).
   */
  package?: 'failing-migration';
  inject(t: FaultTarget): FaultScript[];
  undo(t: FaultTarget): FaultScript[];
}

const BIN = NODE_PATHS.toolsBin;
const RUN = NODE_PATHS.runDir;
const BACKUPS = NODE_PATHS.backupDir;
const SYNC = NODE_PATHS.syncDir;
/** keepalived's VRRP adverts: IP protocol 112 to this group. */
export const VRRP_GROUP = '224.0.0.18';
/** Where corrupt-backup keeps the original bytes (outside the backup folder). */
const CORRUPT_KEEP = `${RUN}/fault-corrupt`;
export const SLOW_HEALTH_FLAG = `${RUN}/slow-health`;

/** An iptables rule added once (-C first) and removed however often it was added. */
function rule(table: string, spec: string): { add: string; del: string } {
  return {
    add: `iptables -C ${table} ${spec} 2>/dev/null || iptables -I ${table} ${spec}`,
    del: `while iptables -C ${table} ${spec} 2>/dev/null; do iptables -D ${table} ${spec}; done`,
  };
}

const node = (script: string): FaultScript => ({ where: 'node', script });
const peer = (script: string): FaultScript => ({ where: 'peer', script });

/** SIGKILL every process of that name in the node (its own pid namespace), as a crash would. */
function killAll(name: string, service: string): string {
  return `for p in $(pgrep -x ${name}); do kill -KILL "$p" 2>/dev/null; done; rm -f ${RUN}/svc/${service}.pid; true`;
}

function psqlPostgres(sql: string): string {
  return `runuser -u postgres -- psql -h ${NODE_PATHS.pgSocketDir} -p ${PG_PORT} -d postgres -XAtqc "${sql}"`;
}

const vrrpDrop = rule('INPUT', `-p 112 -d ${VRRP_GROUP} -j DROP`);
const pgOut = (t: FaultTarget) =>
  rule('OUTPUT', `-p tcp -d ${t.peerAddress} --dport ${PG_PORT} -j DROP`);
const pgIn = (t: FaultTarget) =>
  rule('INPUT', `-p tcp -s ${t.peerAddress} --dport ${PG_PORT} -j DROP`);

const ACTIVE = ['PREPARE', 'BACKUP', 'UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY'];

export const FAULTS: Readonly<Record<FaultKind, FaultSpec>> = {
  'link-cut': {
    kind: 'link-cut',
    summary: "the operator's host can no longer reach the node (SSH and HTTP hang)",
    phases: ACTIVE,
    inject: (t) => [
      node(
        `ip route show | grep -q '^blackhole ${t.uplink} ' || ip route add blackhole ${t.uplink}/32`,
      ),
    ],
    undo: (t) => [node(`ip route del blackhole ${t.uplink}/32 2>/dev/null; true`)],
  },
  'kill-sshd': {
    kind: 'kill-sshd',
    summary: 'sshd on the node is SIGKILLed, open sessions with it',
    phases: ACTIVE,
    inject: () => [node(killAll('sshd', 'sshd'))],
    undo: () => [node(`${BIN}/svc start sshd >/dev/null`)],
  },
  'kill-keepalived': {
    kind: 'kill-keepalived',
    summary: 'keepalived on the node is SIGKILLed (a VIP it held stays on the interface)',
    phases: ACTIVE,
    inject: () => [node(killAll('keepalived', 'keepalived'))],
    undo: () => [node(`${BIN}/svc start keepalived >/dev/null`)],
  },
  'split-brain': {
    kind: 'split-brain',
    summary: "both nodes drop each other's VRRP adverts, so both claim the VIP",
    phases: [...ACTIVE, 'ROLLBACK'],
    inject: () => [node(vrrpDrop.add), peer(vrrpDrop.add)],
    undo: () => [node(vrrpDrop.del), peer(vrrpDrop.del)],
  },
  'stop-replication': {
    kind: 'stop-replication',
    summary:
      "the node's database traffic with its peer is dropped and the replication stream's ends terminated",
    phases: ['PREPARE', 'BACKUP', 'UPGRADE_BACKUP', 'VIP_SWITCH'],
    // both ends of the stream are ended, so neither side waits out its
    // 60 s timeout before it notices (the rules keep them from reconnecting)
    inject: (t) => [
      node(
        `${pgOut(t).add} && ${pgIn(t).add} && { pkill -TERM -f '^postgres: .*walreceiver' || true; }`,
      ),
      peer(`pkill -TERM -f '^postgres: .*walsender' || true`),
    ],
    undo: (t) => [node(`${pgOut(t).del}; ${pgIn(t).del}; true`)],
  },
  'replication-lag': {
    kind: 'replication-lag',
    summary: 'the standby on the node pauses WAL replay (pg_wal_replay_pause), so it falls behind',
    phases: ['PREPARE', 'BACKUP', 'UPGRADE_BACKUP', 'VIP_SWITCH'],
    // on a primary there is no replay to pause: nothing to do
    inject: () => [
      node(
        `[ "$(${psqlPostgres('SELECT pg_is_in_recovery()')})" = t ] && ${psqlPostgres('SELECT pg_wal_replay_pause()')} >/dev/null; true`,
      ),
    ],
    undo: () => [
      node(
        `[ "$(${psqlPostgres('SELECT pg_is_in_recovery()')})" = t ] && ${psqlPostgres('SELECT pg_wal_replay_resume()')} >/dev/null; true`,
      ),
    ],
  },
  'fill-backup-disk': {
    kind: 'fill-backup-disk',
    summary: `the node's ${BACKUPS} becomes a full 1 MiB file system (earlier backups hidden until undo)`,
    phases: ['START', 'PREPARE', 'BACKUP'],
    inject: () => [
      node(
        `findmnt -n -t tmpfs --mountpoint ${BACKUPS} >/dev/null || { mount -t tmpfs -o size=1m,mode=0755 pairshift-fault-full ${BACKUPS} && { dd if=/dev/zero of=${BACKUPS}/.fault-fill bs=64k 2>/dev/null; true; }; }`,
      ),
    ],
    undo: () => [
      node(
        `while findmnt -n -t tmpfs --mountpoint ${BACKUPS} >/dev/null; do umount ${BACKUPS} || exit 1; done`,
      ),
    ],
  },
  'corrupt-backup': {
    kind: 'corrupt-backup',
    summary:
      "bytes appended to the database dump of the node's newest verified backup set (its checksums no longer match)",
    phases: ['UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER', 'VERIFY'],
    inject: () => [
      node(
        [
          `set -e; mkdir -p ${CORRUPT_KEEP}`,
          `[ -n "$(ls -A ${CORRUPT_KEEP})" ] && exit 0`,
          `d=$(ls -1td ${BACKUPS}/*/ 2>/dev/null | head -1)`,
          `[ -n "$d" ] || { echo "no backup set in ${BACKUPS}" >&2; exit 1; }`,
          `f=$(ls -1 "$d" | grep '^app\\.dump\\.' | head -1)`,
          `[ -n "$f" ] || { echo "no database dump in $d" >&2; exit 1; }`,
          `cp -p "$d$f" ${CORRUPT_KEEP}/"$f"`,
          `printf '%s' "$d$f" > ${CORRUPT_KEEP}/.path`,
          `printf 'pairshift-fault: corrupted after verification' >> "$d$f"`,
        ].join('\n'),
      ),
    ],
    undo: () => [
      node(
        [
          `[ -f ${CORRUPT_KEEP}/.path ] || exit 0`,
          `p=$(cat ${CORRUPT_KEEP}/.path)`,
          `[ -d "$(dirname "$p")" ] && cp -p ${CORRUPT_KEEP}/"$(basename "$p")" "$p"`,
          `rm -rf ${CORRUPT_KEEP}`,
        ].join('\n'),
      ),
    ],
  },
  'migration-fail': {
    kind: 'migration-fail',
    summary:
      "the package's last migration fails after its first statement (division by zero); the migration's transaction is rolled back",
    phases: ['START'],
    package: 'failing-migration',
    inject: () => [],
    undo: () => [],
  },
  'slow-health': {
    kind: 'slow-health',
    summary: "the new version's /health answers only after the health-check timeout",
    phases: ['START', 'PREPARE', 'BACKUP', 'UPGRADE_BACKUP'],
    inject: (t) => [
      node(`printf '%s %s\\n' '${t.version ?? '*'}' ${t.delaySeconds ?? 40} > ${SLOW_HEALTH_FLAG}`),
    ],
    undo: () => [node(`rm -f ${SLOW_HEALTH_FLAG}`)],
  },
  'rsync-refuse-pause': {
    kind: 'rsync-refuse-pause',
    summary: "the sync job's state folder turns read-only: `sync-ctl pause` (and resume) fail",
    phases: ['START', 'PREPARE', 'VERIFY', 'ROLLBACK'],
    inject: () => [
      node(
        `findmnt -n --mountpoint ${SYNC} >/dev/null || { mount --bind ${SYNC} ${SYNC} && mount -o remount,bind,ro ${SYNC}; }`,
      ),
    ],
    undo: () => [
      node(`while findmnt -n --mountpoint ${SYNC} >/dev/null; do umount ${SYNC} || exit 1; done`),
    ],
  },
  'remove-staged': {
    kind: 'remove-staged',
    summary: "the operator's staged copy of the package is removed from its work folder",
    phases: ['BACKUP', 'UPGRADE_BACKUP', 'VIP_SWITCH', 'UPGRADE_MASTER'],
    inject: (t) => {
      if (!t.stageDir) throw new Error('remove-staged needs the staging folder (--stage-dir)');
      return [{ where: 'host', script: `rm -rf '${t.stageDir.replace(/'/g, '')}'` }];
    },
    // what is gone is gone: the operator must stage it again
    undo: () => [],
  },
};

/** The scripts for a fault, in order; undo reverses the order of injection. */
export function faultScripts(kind: FaultKind, t: FaultTarget, undo: boolean): FaultScript[] {
  const spec = FAULTS[kind];
  return undo ? [...spec.undo(t)].reverse() : spec.inject(t);
}
