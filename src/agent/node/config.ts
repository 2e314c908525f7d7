// The agent's configuration file: JSON (parsed without dependencies), written
// by the operator from the HAPair (see ../render-config.ts and docs/agent.md).
// Validation is pure and names the field that is wrong.
import { parseCidr } from './cidr.js';

export interface DatabaseConfig {
  /** psql to run (the node's own client) */
  readonly psql: string;
  /** a socket folder ("/run/postgresql") or a host name */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly dbname: string;
  /** run psql as this OS user (peer authentication on the socket) */
  readonly osUser?: string | undefined;
  /** a pgpass file, when the database wants a password */
  readonly passFile?: string | undefined;
}

export interface ServiceConfig {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** the service's own health URL path, checked when present */
  readonly healthPath?: string | undefined;
  /** where the service reports its version (status command) */
  readonly versionPath?: string | undefined;
}

export interface KeepalivedConfig {
  /** the vrrp_instance to report on */
  readonly instance: string;
  readonly virtualRouterId?: number | undefined;
  /** keepalived's main pid file; without it the agent looks for a
   * keepalived process in its own network namespace */
  readonly pidFile?: string | undefined;
  /** the signal number that makes keepalived write keepalived.json
   * (`keepalived --signum=JSON`; 36 on Debian/Ubuntu builds) */
  readonly jsonSignal: number;
  /** the VIP, reported as present or not on this node */
  readonly vip?: string | undefined;
}

export interface AgentConfig {
  readonly node: string;
  readonly listen: { readonly host: string; readonly port: number };
  /** CIDRs allowed to read /health and to send commands over SSH */
  readonly allow: readonly string[];
  /** each check's own deadline, so /health always answers quickly */
  readonly checkTimeoutMs: number;
  /** the default and the ceiling of a command's deadline */
  readonly commandTimeoutMs: number;
  readonly database?: DatabaseConfig | undefined;
  readonly services: readonly ServiceConfig[];
  readonly keepalived?: KeepalivedConfig | undefined;
  /** prints the rsync job's state as one line of JSON */
  readonly rsyncStatusCommand?: string | undefined;
  /** written by `serve` once it listens */
  readonly pidFile?: string | undefined;
}

export const DEFAULT_PORT = 8090;

type Obj = Record<string, unknown>;

class Fields {
  constructor(
    private readonly o: Obj,
    private readonly at: string,
  ) {}
  private fail(name: string, want: string): never {
    throw new Error(`agent config: ${this.at}${name} must be ${want}`);
  }
  str(name: string): string {
    const v = this.o[name];
    if (typeof v !== 'string' || v === '') this.fail(name, 'a non-empty string');
    return v;
  }
  optStr(name: string): string | undefined {
    return this.o[name] === undefined || this.o[name] === null ? undefined : this.str(name);
  }
  int(name: string, dflt?: number, min = 1, max = 2 ** 31): number {
    const v = this.o[name] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.fail(name, `an integer from ${min} to ${max}`);
    }
    return v;
  }
  optInt(name: string, min = 1, max = 2 ** 31): number | undefined {
    return this.o[name] === undefined || this.o[name] === null
      ? undefined
      : this.int(name, undefined, min, max);
  }
  obj(name: string): Fields | undefined {
    const v = this.o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(name, 'an object');
    return new Fields(v as Obj, `${this.at}${name}.`);
  }
  list(name: string): Fields[] {
    const v = this.o[name] ?? [];
    if (!Array.isArray(v)) this.fail(name, 'an array');
    return v.map((x, i) => {
      if (typeof x !== 'object' || x === null || Array.isArray(x))
        this.fail(`${name}[${i}]`, 'an object');
      return new Fields(x as Obj, `${this.at}${name}[${i}].`);
    });
  }
  strList(name: string): string[] {
    const v = this.o[name] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
      this.fail(name, 'an array of strings');
    return v as string[];
  }
}

export function parseAgentConfig(text: string): AgentConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`agent config is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error('agent config must be a JSON object');
  }
  const f = new Fields(value as Obj, '');
  const listen = f.obj('listen');
  const allow = f.strList('allow');
  for (const c of allow) {
    try {
      parseCidr(c);
    } catch (err) {
      throw new Error(`agent config: allow: ${(err as Error).message}`);
    }
  }
  const db = f.obj('database');
  const ka = f.obj('keepalived');
  const names = new Set<string>();
  const services = f.list('services').map((s) => {
    const name = s.str('name');
    if (names.has(name)) throw new Error(`agent config: services: "${name}" appears twice`);
    names.add(name);
    return {
      name,
      host: s.optStr('host') ?? '127.0.0.1',
      port: s.int('port', undefined, 1, 65535),
      healthPath: s.optStr('healthPath'),
      versionPath: s.optStr('versionPath'),
    };
  });
  return {
    node: f.str('node'),
    listen: {
      host: listen?.optStr('host') ?? '0.0.0.0',
      port: listen?.int('port', DEFAULT_PORT, 1, 65535) ?? DEFAULT_PORT,
    },
    allow,
    checkTimeoutMs: f.int('checkTimeoutMs', 1500, 50, 60_000),
    commandTimeoutMs: f.int('commandTimeoutMs', 10_000, 100, 3_600_000),
    database: db && {
      psql: db.str('psql'),
      host: db.str('host'),
      port: db.int('port', 5432, 1, 65535),
      user: db.str('user'),
      dbname: db.str('dbname'),
      osUser: db.optStr('osUser'),
      passFile: db.optStr('passFile'),
    },
    services,
    keepalived: ka && {
      instance: ka.str('instance'),
      virtualRouterId: ka.optInt('virtualRouterId', 1, 255),
      pidFile: ka.optStr('pidFile'),
      jsonSignal: ka.int('jsonSignal', 36, 1, 64),
      vip: ka.optStr('vip'),
    },
    rsyncStatusCommand: f.optStr('rsyncStatusCommand'),
    pidFile: f.optStr('pidFile'),
  };
}
