// One reused SSH connection per node. A command on a node whose connection
// died opens a new one; concurrent callers share one connection attempt.
import { DriverError } from '../errors.js';
import {
  DEFAULT_SSH_TIMEOUTS,
  type ExecOptions,
  type ExecResult,
  SshConnection,
  type SshEndpoint,
  type SshTimeouts,
} from './connection.js';

/** What drivers need from SSH; the lab, tests and fakes all provide it. */
export interface NodeShell {
  exec(node: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export class SshPool implements NodeShell {
  readonly #endpoints = new Map<string, SshEndpoint>();
  readonly #connections = new Map<string, Promise<SshConnection>>();
  /** How many connections were opened per node: for tests and metrics. */
  readonly opened = new Map<string, number>();

  constructor(
    endpoints: readonly SshEndpoint[],
    private readonly timeouts: SshTimeouts = DEFAULT_SSH_TIMEOUTS,
  ) {
    for (const e of endpoints) this.#endpoints.set(e.node, e);
  }

  async connection(node: string): Promise<SshConnection> {
    const endpoint = this.#endpoints.get(node);
    if (!endpoint) throw new DriverError(`unknown node "${node}"`, { kind: 'terminal', node });
    const existing = this.#connections.get(node);
    if (existing) {
      const conn = await existing.catch(() => undefined);
      if (conn && !conn.closed) return conn;
      if (this.#connections.get(node) !== existing) return this.connection(node);
    }
    const attempt = SshConnection.open(endpoint, this.timeouts);
    this.#connections.set(node, attempt);
    this.opened.set(node, (this.opened.get(node) ?? 0) + 1);
    attempt.catch(() => {
      if (this.#connections.get(node) === attempt) this.#connections.delete(node);
    });
    return attempt;
  }

  async exec(node: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const conn = await this.connection(node);
    return conn.exec(argv, opts);
  }

  async close(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    for (const p of all) (await p.catch(() => undefined))?.close();
  }
}
