// pairshift-agent: runs on each node of a pair, with Node's standard library
// only (the operator copies these files onto nodes over SSH).
//
//   pairshift-agent serve --config FILE   HTTP GET /health (docs/agent.md)
//   pairshift-agent run   --config FILE   one JSON command on stdin, one JSON
//                                         answer on stdout (over SSH)
//   pairshift-agent version
//
// `run` exits 0 whenever it answered (even {"ok": false}); non-zero means the
// agent itself is broken here (unreadable config, a crash).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { handleCommand } from './commands.js';
import { type AgentConfig, parseAgentConfig } from './config.js';
import { HealthChecker } from './health.js';
import { errorResponse, MAX_REQUEST_BYTES } from './protocol.js';
import { healthServer, listen } from './server.js';
import { agentVersion } from './version.js';

const USAGE = `usage: pairshift-agent serve --config FILE
       pairshift-agent run --config FILE   (JSON request on stdin)
       pairshift-agent version`;

function configPath(argv: string[]): string {
  const i = argv.indexOf('--config');
  const path = i >= 0 ? argv[i + 1] : process.env.PAIRSHIFT_AGENT_CONFIG;
  if (!path) throw new Error(`--config FILE is required\n${USAGE}`);
  return path;
}

function loadConfig(argv: string[]): AgentConfig {
  const path = configPath(argv);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read agent config ${path}: ${(err as Error).message}`);
  }
  return parseAgentConfig(text);
}

/** stdin up to the limit (+1 byte, so an oversize request is recognised). */
function readStdin(limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (b: Buffer) => {
      if (size > limit) return;
      chunks.push(b);
      size += b.length;
      if (size > limit) {
        process.stdin.pause();
        resolve(Buffer.concat(chunks));
      }
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks)));
    process.stdin.on('error', reject);
  });
}

function reply(body: unknown, code: number): void {
  process.stdout.write(`${JSON.stringify(body)}\n`, () => process.exit(code));
}

async function run(argv: string[]): Promise<void> {
  let cfg: AgentConfig;
  try {
    cfg = loadConfig(argv);
  } catch (err) {
    reply(errorResponse('failed', (err as Error).message), 2);
    return;
  }
  const input = await readStdin(MAX_REQUEST_BYTES);
  const response = await handleCommand(cfg, new HealthChecker(cfg), input, process.env);
  reply(response, 0);
}

async function serve(argv: string[]): Promise<void> {
  const cfg = loadConfig(argv);
  const server = healthServer(cfg, new HealthChecker(cfg));
  await listen(server, cfg);
  // the pid file appears only once the port is open: the installer waits for it
  if (cfg.pidFile) writeFileSync(cfg.pidFile, `${process.pid}\n`);
  const stop = () => {
    if (cfg.pidFile) rmSync(cfg.pidFile, { force: true });
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(
    `pairshift-agent ${agentVersion()} on node ${cfg.node} listening on ${cfg.listen.host}:${cfg.listen.port}`,
  );
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === 'serve') return serve(rest);
  if (cmd === 'run') return run(rest);
  if (cmd === 'version') {
    console.log(agentVersion());
    return;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return;
  }
  throw new Error(cmd ? `unknown subcommand "${cmd}"\n${USAGE}` : USAGE);
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`pairshift-agent: ${err.message}`);
  process.exit(2);
});
