// One SSH connection to one node (ssh2). Deadlines everywhere, because a
// half-open TCP connection otherwise hangs forever: a connect/handshake
// deadline, keepalives that close a silent connection, and a deadline per
// command after which the remote process is signalled and the channel closed.
import { Client, type ClientChannel } from 'ssh2';
import { DriverError, tail } from '../errors.js';
import { pinnedHostKeys } from './host-key.js';
import { commandLine } from './quote.js';

export interface SshEndpoint {
  /** The node's name in the HAPair, used in every message. */
  readonly node: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** The private key's contents; never logged. */
  readonly privateKey: Buffer | string;
  readonly hostKeyFingerprints: readonly string[];
}

export interface SshTimeouts {
  readonly connectTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  readonly commandTimeoutMs: number;
}

export const DEFAULT_SSH_TIMEOUTS: SshTimeouts = {
  connectTimeoutMs: 10_000,
  keepaliveIntervalMs: 2_000,
  keepaliveCountMax: 3,
  commandTimeoutMs: 30_000,
};

export interface ExecOptions {
  readonly timeoutMs?: number;
  readonly stdin?: string | Buffer;
  /** Exit codes that are answers, not failures (e.g. 1 from `test`). */
  readonly okExitCodes?: readonly number[];
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

function connectError(node: string, err: Error & { level?: string; code?: string }): DriverError {
  const msg = err.message;
  const unreachable = ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'];
  // ssh2 marks its own deadlines (readyTimeout, keepalive) with level
  // 'client-timeout' and a failed key exchange with 'handshake' (an sshd
  // restarting mid-handshake): both are worth another try.
  const timedOut = err.level === 'client-timeout' || err.code === 'ETIMEDOUT';
  const transient = timedOut || unreachable.includes(err.code ?? '') || err.level === 'handshake';
  return new DriverError(`cannot connect over SSH: ${msg}`, {
    kind: err.level === 'client-authentication' ? 'terminal' : transient ? 'transient' : 'terminal',
    node,
    timedOut,
    cause: err,
  });
}

export class SshConnection {
  #closed = false;
  /** Commands in flight: failed at once when the connection dies, not at their own deadline. */
  readonly #inFlight = new Set<() => void>();

  private constructor(
    readonly endpoint: SshEndpoint,
    readonly timeouts: SshTimeouts,
    private readonly client: Client,
  ) {
    const lost = () => {
      this.#closed = true;
      for (const fail of [...this.#inFlight]) fail();
    };
    client.on('close', lost);
    // Errors after ready (keepalive timeout, reset) end the connection; the
    // commands still running on it fail now. Without a listener they would crash.
    client.on('error', lost);
  }

  get closed(): boolean {
    return this.#closed;
  }

  static open(
    endpoint: SshEndpoint,
    timeouts: SshTimeouts = DEFAULT_SSH_TIMEOUTS,
  ): Promise<SshConnection> {
    let hostKeys: ReturnType<typeof pinnedHostKeys>;
    try {
      hostKeys = pinnedHostKeys(endpoint.hostKeyFingerprints);
    } catch (err) {
      return Promise.reject(
        new DriverError((err as Error).message, { kind: 'terminal', node: endpoint.node }),
      );
    }
    return new Promise((resolve, reject) => {
      const client = new Client();
      let settled = false;
      const fail = (err: DriverError) => {
        if (settled) return;
        settled = true;
        client.end();
        client.destroy();
        reject(err);
      };
      client.once('ready', () => {
        settled = true;
        resolve(new SshConnection(endpoint, timeouts, client));
      });
      client.on('error', (err: Error & { level?: string }) => {
        if (hostKeys.refused) {
          fail(
            new DriverError(
              `host key ${hostKeys.refused} is not pinned for this node (changed or unknown host key; refusing to connect)`,
              { kind: 'terminal', node: endpoint.node, cause: err },
            ),
          );
        } else {
          fail(connectError(endpoint.node, err));
        }
      });
      client.on('close', () =>
        fail(
          new DriverError('connection closed during the handshake', {
            kind: 'transient',
            node: endpoint.node,
          }),
        ),
      );
      try {
        client.connect({
          host: endpoint.host,
          port: endpoint.port,
          username: endpoint.username,
          privateKey: endpoint.privateKey,
          hostVerifier: (key: Buffer) => hostKeys.verify(key),
          readyTimeout: timeouts.connectTimeoutMs,
          keepaliveInterval: timeouts.keepaliveIntervalMs,
          keepaliveCountMax: timeouts.keepaliveCountMax,
        });
      } catch (err) {
        // ssh2 throws synchronously for an unparsable private key.
        fail(
          new DriverError(`cannot use the SSH private key: ${(err as Error).message}`, {
            kind: 'terminal',
            node: endpoint.node,
          }),
        );
      }
    });
  }

  /**
   * Runs argv (each argument quoted) and resolves with its output; a failing
   * exit is a DriverError. The deadline is enforced on the node too, by
   * coreutils `timeout`: closing an SSH channel does not stop a process that
   * has no terminal, and OpenSSH ignores most signal requests.
   */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const node = this.endpoint.node;
    const timeoutMs = opts.timeoutMs ?? this.timeouts.commandTimeoutMs;
    const command = commandLine(argv);
    const remoteSeconds = (timeoutMs / 1000).toFixed(3);
    const wrapped = commandLine(['timeout', '--kill-after=2', remoteSeconds, ...argv]);
    if (this.#closed) {
      return Promise.reject(
        new DriverError('SSH connection is closed', { kind: 'transient', node, command }),
      );
    }
    const started = performance.now();
    return new Promise((resolve, reject) => {
      let channel: ClientChannel | undefined;
      let done = false;
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outBytes = 0;
      const connectionLost = () =>
        finish(
          new DriverError('SSH connection lost while the command ran', {
            kind: 'transient',
            node,
            command,
          }),
        );
      const finish = (e: DriverError | null, result?: ExecResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#inFlight.delete(connectionLost);
        if (e) reject(e);
        else resolve(result!);
      };
      this.#inFlight.add(connectionLost);
      const timedOut = () =>
        new DriverError(`command timed out after ${timeoutMs} ms`, {
          kind: 'transient',
          timedOut: true,
          node,
          command,
          stderrTail: tail(Buffer.concat(err).toString('utf8')),
        });
      // The node's own `timeout` normally answers first (exit 124); this is
      // the backstop for a node that stopped answering altogether.
      const timer = setTimeout(() => {
        channel?.signal('KILL');
        channel?.close();
        finish(timedOut());
      }, timeoutMs + 3000);
      this.client.exec(wrapped, (startErr, ch) => {
        if (startErr) {
          finish(
            new DriverError(`cannot start command: ${startErr.message}`, {
              kind: 'transient',
              node,
              command,
              cause: startErr,
            }),
          );
          return;
        }
        channel = ch;
        if (done) {
          ch.close();
          return;
        }
        const collect = (into: Buffer[]) => (chunk: Buffer) => {
          outBytes += chunk.length;
          if (outBytes > MAX_OUTPUT_BYTES) {
            ch.close();
            finish(
              new DriverError(`command printed more than ${MAX_OUTPUT_BYTES} bytes`, {
                kind: 'terminal',
                node,
                command,
              }),
            );
            return;
          }
          into.push(chunk);
        };
        ch.on('data', collect(out));
        ch.stderr.on('data', collect(err));
        let exitCode: number | null = null;
        let signal: string | undefined;
        ch.on('exit', (code: number | null, sig?: string) => {
          exitCode = code;
          signal = sig ?? undefined;
        });
        ch.on('close', () => {
          const result: ExecResult = {
            exitCode,
            signal,
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(err).toString('utf8'),
            durationMs: performance.now() - started,
          };
          const ok =
            exitCode === 0 || (exitCode !== null && (opts.okExitCodes ?? []).includes(exitCode));
          if (ok) finish(null, result);
          // 124: coreutils `timeout` stopped it; 137: its --kill-after SIGKILL.
          else if (exitCode === 124 || exitCode === 137) finish(timedOut());
          else if (exitCode === null && this.#closed) {
            finish(
              new DriverError('SSH connection lost while the command ran', {
                kind: 'transient',
                node,
                command,
              }),
            );
          } else {
            finish(
              new DriverError(signal ? `command killed by ${signal}` : 'command failed', {
                kind: 'terminal',
                node,
                command,
                exitCode,
                stderrTail: tail(result.stderr),
              }),
            );
          }
        });
        if (opts.stdin !== undefined) ch.end(opts.stdin);
        else ch.end();
      });
    });
  }

  close(): void {
    this.#closed = true;
    this.client.end();
  }
}
