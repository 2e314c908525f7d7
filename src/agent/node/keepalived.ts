// The keepalived check (task list 2.2.3, 3.1.4): is keepalived running, which
// VRRP state is this node in, and are VRRP adverts flowing (the heartbeat).
//
// Why keepalived's JSON dump: keepalived 2.2.7 writes keepalived.json into
// its TMPDIR (default /tmp) when sent the JSON signal (`keepalived
// --signum=JSON`, 36 on Debian/Ubuntu). It holds, per vrrp_instance, the state
// keepalived itself believes in (INIT/BACKUP/MASTER/FAULT) and its counters
// advert_sent / advert_rcvd. Two dumps a few advert intervals apart prove
// adverts are flowing: a MASTER's advert_sent grows, a BACKUP's advert_rcvd
// grows. It needs no change to keepalived.conf (notify scripts or track
// files would), works with the VIP on any interface, and reads keepalived's
// own word instead of guessing from the VIP's presence (which cannot tell a
// BACKUP from a FAULT).
//
// Care taken: the file is read through /proc/<pid>/root so a private /tmp
// (systemd PrivateTmp, a mount namespace) is honoured; several nodes that
// share one /tmp (the lab) take turns with a lock file next to the dump, and
// the dump is matched to our instance name and router id.
import {
  closeSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { KeepalivedConfig } from './config.js';
import type { CheckResult, VrrpRole } from './protocol.js';

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT';

const STATES: Record<number, VrrpState> = { 0: 'INIT', 1: 'BACKUP', 2: 'MASTER', 3: 'FAULT' };

export interface VrrpSnapshot {
  readonly instance: string;
  readonly vrid: number;
  readonly state: VrrpState;
  readonly advertIntervalSeconds: number;
  readonly advertSent: number;
  readonly advertReceived: number;
  readonly becameMaster: number;
}

/** Picks our instance out of keepalived.json (pure). */
export function parseKeepalivedJson(text: string, instance: string, vrid?: number): VrrpSnapshot {
  const all = JSON.parse(text) as unknown;
  if (!Array.isArray(all)) throw new Error('keepalived.json is not a list of instances');
  for (const entry of all as Array<{
    data?: Record<string, unknown>;
    stats?: Record<string, unknown>;
  }>) {
    const d = entry?.data;
    const s = entry?.stats;
    if (!d || !s || d.iname !== instance) continue;
    if (vrid !== undefined && d.vrid !== vrid) {
      throw new Error(
        `vrrp_instance ${instance} has virtual_router_id ${String(d.vrid)}, expected ${vrid}`,
      );
    }
    return {
      instance,
      vrid: Number(d.vrid),
      state: STATES[Number(d.state)] ?? 'INIT',
      advertIntervalSeconds: Number(d.adver_int) || 1,
      advertSent: Number(s.advert_sent) || 0,
      advertReceived: Number(s.advert_rcvd) || 0,
      becameMaster: Number(s.become_master) || 0,
    };
  }
  throw new Error(`no vrrp_instance ${instance} in keepalived's dump`);
}

/** How long to wait between two dumps so at least two adverts fit in it. */
export function heartbeatWindowMs(advertIntervalSeconds: number): number {
  return Math.min(1000, Math.max(250, Math.round(advertIntervalSeconds * 2500)));
}

export interface Heartbeat {
  readonly flowing: boolean;
  readonly sent: number;
  readonly received: number;
  readonly overMs: number;
}

/** Adverts between two snapshots of the same keepalived (pure). */
export function heartbeat(before: VrrpSnapshot, after: VrrpSnapshot, overMs: number): Heartbeat {
  const sent = after.advertSent - before.advertSent;
  const received = after.advertReceived - before.advertReceived;
  return { flowing: sent > 0 || received > 0, sent, received, overMs: Math.round(overMs) };
}

export function roleOf(state: VrrpState | undefined): VrrpRole {
  return state === 'MASTER' || state === 'BACKUP' || state === 'FAULT' ? state : 'UNKNOWN';
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** keepalived's main process: from the pid file, else the keepalived in our
 * network namespace whose parent is not keepalived. */
export function findKeepalived(cfg: KeepalivedConfig): number | undefined {
  const isKeepalived = (pid: number) => readText(`/proc/${pid}/comm`)?.trim() === 'keepalived';
  if (cfg.pidFile) {
    const pid = Number(readText(cfg.pidFile)?.trim());
    return Number.isInteger(pid) && pid > 0 && isKeepalived(pid) ? pid : undefined;
  }
  let myNet: string | undefined;
  try {
    myNet = readlinkSync('/proc/self/ns/net');
  } catch {
    myNet = undefined;
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (!isKeepalived(pid)) continue;
    try {
      if (myNet && readlinkSync(`/proc/${pid}/ns/net`) !== myNet) continue;
    } catch {
      continue;
    }
    const stat = readText(`/proc/${pid}/stat`) ?? '';
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!isKeepalived(ppid)) return pid;
  }
  return undefined;
}

/** Where this keepalived writes keepalived.json, seen from the agent. */
export function dumpPath(pid: number): string {
  const env = readText(`/proc/${pid}/environ`) ?? '';
  const tmp =
    env
      .split('\0')
      .find((e) => e.startsWith('TMPDIR='))
      ?.slice('TMPDIR='.length) || '/tmp';
  const viaProc = `/proc/${pid}/root${tmp}`;
  try {
    statSync(viaProc);
    return `${viaProc}/keepalived.json`;
  } catch {
    return `${tmp}/keepalived.json`;
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new Error('aborted'));
      },
      { once: true },
    );
  });

const STALE_LOCK_MS = 5000;

async function withDumpLock<T>(
  path: string,
  signal: AbortSignal,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = `${path}.pairshift-lock`;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
      } catch {
        // gone already: try again
      }
      await sleep(10, signal);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // nothing to release
    }
  }
}

/** Asks keepalived for a fresh dump and reads our instance from it. */
export async function dumpVrrp(
  pid: number,
  cfg: KeepalivedConfig,
  signal: AbortSignal,
): Promise<VrrpSnapshot> {
  const path = dumpPath(pid);
  return withDumpLock(path, signal, async () => {
    try {
      unlinkSync(path);
    } catch {
      // no earlier dump
    }
    process.kill(pid, cfg.jsonSignal);
    for (;;) {
      await sleep(10, signal);
      const text = readText(path);
      if (!text) continue;
      try {
        return parseKeepalivedJson(text, cfg.instance, cfg.virtualRouterId);
      } catch (err) {
        // a half-written dump is not JSON yet; anything else is an answer
        if (err instanceof SyntaxError) continue;
        throw err;
      }
    }
  });
}

export function vipPresent(vip: string): boolean {
  const addr = vip.split('/')[0];
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === addr));
}

/** Keeps the last dump so a /health shortly after another needs only one. */
export class KeepalivedCheck {
  #last: { pid: number; at: number; snap: VrrpSnapshot } | undefined;

  constructor(private readonly cfg: KeepalivedConfig) {}

  async run(
    signal: AbortSignal,
  ): Promise<{ result: Omit<CheckResult, 'responseTimeMs'>; role: VrrpRole }> {
    const name = 'keepalived';
    const pid = findKeepalived(this.cfg);
    if (pid === undefined) {
      this.#last = undefined;
      const where = this.cfg.pidFile ? `per ${this.cfg.pidFile}` : 'in this network namespace';
      return {
        result: { name, status: 'DOWN', detail: `keepalived is not running (${where})` },
        role: 'UNKNOWN',
      };
    }
    const first = await dumpVrrp(pid, this.cfg, signal);
    const window = heartbeatWindowMs(first.advertIntervalSeconds);
    const prev = this.#last;
    let before: VrrpSnapshot;
    let after: VrrpSnapshot;
    let overMs: number;
    const now = Date.now();
    if (
      prev &&
      prev.pid === pid &&
      now - prev.at >= window &&
      now - prev.at <= 10_000 &&
      first.advertSent >= prev.snap.advertSent &&
      first.advertReceived >= prev.snap.advertReceived
    ) {
      before = prev.snap;
      after = first;
      overMs = now - prev.at;
    } else {
      await sleep(window, signal);
      before = first;
      after = await dumpVrrp(pid, this.cfg, signal);
      overMs = Date.now() - now;
    }
    this.#last = { pid, at: Date.now(), snap: after };
    const hb = heartbeat(before, after, overMs);
    const role = roleOf(after.state);
    const vip = this.cfg.vip ? vipPresent(this.cfg.vip) : undefined;
    const up = (after.state === 'MASTER' || after.state === 'BACKUP') && hb.flowing;
    const beat = hb.flowing
      ? `adverts flowing (${hb.sent} sent, ${hb.received} received in ${hb.overMs} ms)`
      : `no VRRP adverts sent or received in ${hb.overMs} ms`;
    return {
      role,
      result: {
        name,
        status: up ? 'UP' : 'DOWN',
        detail: `pid ${pid}, ${this.cfg.instance} ${after.state}, ${beat}`,
        data: {
          pid,
          state: after.state,
          vrid: after.vrid,
          advertIntervalSeconds: after.advertIntervalSeconds,
          heartbeat: hb,
          ...(vip !== undefined ? { vipPresent: vip } : {}),
        },
      },
    };
  }
}
