// All of a node's checks, each under its own deadline, so /health answers in
// well under two seconds even when something hangs (task list 3.1).
import type { AgentConfig, ServiceConfig } from './config.js';
import { queryDatabase } from './database.js';
import { KeepalivedCheck } from './keepalived.js';
import { hostForUrl, httpGet, tcpConnect } from './net-checks.js';
import {
  aggregate,
  type CheckResult,
  type HealthReport,
  round,
  type VrrpRole,
  withTimeout,
} from './protocol.js';

type CheckBody = Omit<CheckResult, 'name' | 'responseTimeMs'>;

interface NamedCheck {
  readonly name: string;
  run(signal: AbortSignal): Promise<CheckBody & { role?: VrrpRole }>;
}

/** Runs one check: times it, bounds it, turns any failure into DOWN. */
export async function timedCheck(
  name: string,
  timeoutMs: number,
  fn: (signal: AbortSignal) => Promise<CheckBody & { role?: VrrpRole }>,
): Promise<{ result: CheckResult; role?: VrrpRole }> {
  const started = performance.now();
  try {
    const { role, ...body } = await withTimeout(timeoutMs, `check ${name}`, fn);
    return {
      result: { ...body, name, responseTimeMs: round(performance.now() - started) },
      ...(role ? { role } : {}),
    };
  } catch (err) {
    return {
      result: {
        name,
        status: 'DOWN',
        responseTimeMs: round(performance.now() - started),
        detail: (err as Error).message || String(err),
      },
    };
  }
}

function serviceChecks(s: ServiceConfig): NamedCheck[] {
  const checks: NamedCheck[] = [
    {
      name: `service:${s.name}`,
      async run(signal) {
        await tcpConnect(s.host, s.port, signal);
        return { status: 'UP', detail: `port ${s.port} accepts connections` };
      },
    },
  ];
  if (s.healthPath) {
    const url = `http://${hostForUrl(s.host)}:${s.port}${s.healthPath}`;
    checks.push({
      name: `service:${s.name}:health`,
      async run(signal) {
        const r = await httpGet(url, signal);
        const ok = r.statusCode >= 200 && r.statusCode < 300;
        const snippet = r.body.trim().replace(/\s+/g, ' ').slice(0, 200);
        return {
          status: ok ? 'UP' : 'DOWN',
          detail: `GET ${s.healthPath} answered ${r.statusCode}: ${snippet}`,
        };
      },
    });
  }
  return checks;
}

export class HealthChecker {
  readonly #checks: NamedCheck[] = [];
  #inFlight: Promise<HealthReport> | undefined;

  constructor(readonly cfg: AgentConfig) {
    const db = cfg.database;
    if (db) {
      this.#checks.push({
        name: 'database',
        async run(signal) {
          const f = await queryDatabase(db, signal);
          const where =
            f.role === 'primary'
              ? `WAL at ${f.currentLsn}`
              : `replayed to ${f.replayLsn ?? 'nothing yet'}`;
          return {
            status: 'UP',
            detail: `${f.role}, PostgreSQL ${f.serverVersion}, ${where}`,
            data: { ...f },
          };
        },
      });
    }
    for (const s of cfg.services) this.#checks.push(...serviceChecks(s));
    if (cfg.keepalived) {
      const ka = new KeepalivedCheck(cfg.keepalived);
      this.#checks.push({
        name: 'keepalived',
        async run(signal) {
          const { result, role } = await ka.run(signal);
          return { ...result, role };
        },
      });
    }
  }

  get names(): string[] {
    return this.#checks.map((c) => c.name);
  }

  /** One check by name (the `check` command). */
  async one(name: string): Promise<CheckResult | undefined> {
    const c = this.#checks.find((x) => x.name === name);
    if (!c) return undefined;
    return (await timedCheck(c.name, this.cfg.checkTimeoutMs, (s) => c.run(s))).result;
  }

  /** The whole report; callers arriving while one runs share it. */
  report(): Promise<HealthReport> {
    this.#inFlight ??= this.#run().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #run(): Promise<HealthReport> {
    const started = performance.now();
    const startedWall = Date.now();
    const done = await Promise.all(
      this.#checks.map((c) => timedCheck(c.name, this.cfg.checkTimeoutMs, (s) => c.run(s))),
    );
    const role = done.find((d) => d.role)?.role ?? 'UNKNOWN';
    const elapsed = performance.now() - started;
    return aggregate(
      this.cfg.node,
      role,
      done.map((d) => d.result),
      startedWall,
      startedWall + elapsed,
    );
  }
}
