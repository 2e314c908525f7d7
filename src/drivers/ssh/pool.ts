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

/**
 * Why a command failed, as a bounded code (metrics labels must not carry
 * free text: it is unbounded and may hold command output).
 */
export type SshFailureKind = 'connect' | 'timeout' | 'exit_code' | 'error';

/** One command's outcome, for metrics: the node, how long, and how it failed (null: it did not). */
export interface SshCommandEvent {
  readonly node: string;
  readonly seconds: number;
  readonly failure: SshFailureKind | null;
}

export type SshCommandObserver = (e: SshCommandEvent) => void;

export class SshPool implements NodeShell {
  readonly #endpoints = new Map<string, SshEndpoint>();
  readonly #connections = new Map<string, Promise<SshConnection>>();
  /** How many connections were opened per node: for tests and metrics. */
  readonly opened = new Map<string, number>();

  constructor(
    endpoints: readonly SshEndpoint[],
    private readonly timeouts: SshTimeouts = DEFAULT_SSH_TIMEOUTS,
    private readonly observe?: SshCommandObserver,
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
    if (!this.observe) return (await this.connection(node)).exec(argv, opts);
    // Timed from the caller's view: a connection opened for it counts.
    const t0 = performance.now();
    let failure: SshFailureKind | null = 'connect';
    try {
      const conn = await this.connection(node);
      failure = null;
      return await conn.exec(argv, opts);
    } catch (err) {
      failure ??= failureKind(err);
      throw err;
    } finally {
      // An unknown node is not counted: its name is not in the inventory,
      // so it would be an unbounded label.
      if (this.#endpoints.has(node)) {
        this.observe({ node, seconds: (performance.now() - t0) / 1000, failure });
      }
    }
  }

  async close(): Promise<void> {
    const all = [...this.#connections.values()];
    this.#connections.clear();
    for (const p of all) (await p.catch(() => undefined))?.close();
  }
}

function failureKind(err: unknown): SshFailureKind {
  if (!(err instanceof DriverError)) return 'error';
  if (err.timedOut) return 'timeout';
  if (err.exitCode !== undefined && err.exitCode !== null) return 'exit_code';
  return 'error';
}
