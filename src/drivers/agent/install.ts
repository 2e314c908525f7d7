// Installing or updating the agent on a node over SSH, ensure-style: observe
// what is installed (version, config, whether `serve` runs), act only where
// it differs, observe again to verify. Files travel as a tar.gz on the
// command's stdin (no scp, no sftp); each version gets its own folder and
// `current` is switched with a rename, so a half-finished copy never runs.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AgentConfig } from '../../agent/node/config.js';
import { renderAgentConfig } from '../../agent/render-config.js';
import { DriverError, whileDoing } from '../errors.js';
import type { NodeShell } from '../ssh/pool.js';

export const DEFAULT_AGENT_ROOT = '/opt/pairshift-agent';

export interface InstallOptions {
  readonly config: AgentConfig;
  /** the agent's home on the node: <root>/<version>/, current, config.json, agent.pid, agent.log */
  readonly root?: string;
  /** the compiled agent (dist/agent/node) */
  readonly sourceDir?: string;
  /** node on the node */
  readonly nodeBinary?: string;
  readonly dryRun?: boolean;
}

export interface InstallResult {
  readonly state: 'unchanged' | 'changed';
  readonly version: string;
  /** what was done (or, in a dry run, what would be done) */
  readonly actions: readonly string[];
  readonly dryRun: boolean;
}

export interface AgentBundle {
  readonly version: string;
  readonly files: ReadonlyMap<string, Buffer>;
}

const DEFAULT_SOURCE = fileURLToPath(new URL('../../agent/node/', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

/** The files to copy, and a version naming their exact content. */
export function agentBundle(sourceDir = DEFAULT_SOURCE): AgentBundle {
  if (!existsSync(join(sourceDir, 'main.js'))) {
    throw new DriverError(`no compiled agent in ${sourceDir} (run npm run build)`, {
      kind: 'terminal',
    });
  }
  const files = new Map<string, Buffer>();
  for (const name of readdirSync(sourceDir).sort()) {
    if (name.endsWith('.js')) files.set(name, readFileSync(join(sourceDir, name)));
  }
  const hash = createHash('sha256');
  for (const [name, content] of files) hash.update(`${name}\0${content.length}\0`).update(content);
  const pkgVersion = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version: string })
    .version;
  const version = `${pkgVersion}-${hash.digest('hex').slice(0, 12)}`;
  files.set('VERSION', Buffer.from(`${version}\n`));
  // the node's Node must read these files as ES modules
  files.set('package.json', Buffer.from('{ "type": "module" }\n'));
  return { version, files };
}

async function tarGz(files: ReadonlyMap<string, Buffer>): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-agent-bundle-'));
  try {
    for (const [name, content] of files) writeFileSync(join(dir, name), content);
    const { stdout } = await promisify(execFile)('tar', ['-czf', '-', '-C', dir, '.'], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Installed {
  readonly version: string;
  readonly configSha256: string;
  readonly running: boolean;
}

// Prints three lines: the installed version, the sha256 of config.json, and
// "yes" when the pid file names a live process started from this root.
const OBSERVE = `root=$1
v=$(cat "$root/current/VERSION" 2>/dev/null || true)
c=$(sha256sum "$root/config.json" 2>/dev/null | cut -d' ' -f1)
r=no
p=$(cat "$root/agent.pid" 2>/dev/null || true)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -qaF -- "$root/" "/proc/$p/cmdline" 2>/dev/null; then r=yes; fi
printf '%s\\n%s\\n%s\\n' "$v" "$c" "$r"`;

const UNPACK = `set -e
root=$1 version=$2
t="$root/.incoming.$$"
rm -rf "$t"; mkdir -p "$t"
tar -xzf - -C "$t"
rm -rf "$root/$version"; mv "$t" "$root/$version"
ln -sfn "$version" "$root/.current.new"; mv -T "$root/.current.new" "$root/current"
# keep this version and the one before it
ls -1t "$root" | grep -v -e '^current$' -e '^config.json$' -e '^agent' -e "^$version\\$" | tail -n +2 | while read -r old; do rm -rf "$root/$old"; done`;

const WRITE_CONFIG = `set -e
umask 022; mkdir -p "$1"
cat > "$1/.config.json.new"; mv "$1/.config.json.new" "$1/config.json"`;

// Stops the serve process this root started (if any), then starts it again
// detached from the SSH session and waits for its pid file, which the agent
// writes only once its port is open.
const RESTART = `root=$1 nodebin=$2
p=$(cat "$root/agent.pid" 2>/dev/null || true)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -qaF -- "$root/" "/proc/$p/cmdline" 2>/dev/null; then
  kill "$p"; i=0
  while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -9 "$p" 2>/dev/null || true
fi
rm -f "$root/agent.pid"
setsid "$nodebin" "$root/current/main.js" serve --config "$root/config.json" >>"$root/agent.log" 2>&1 </dev/null &
i=0
while [ ! -s "$root/agent.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ ! -s "$root/agent.pid" ]; then echo "the agent did not start; end of $root/agent.log:" >&2; tail -n 5 "$root/agent.log" >&2; exit 1; fi`;

export async function observeAgent(
  shell: NodeShell,
  node: string,
  root: string,
): Promise<Installed> {
  const r = await shell.exec(node, ['sh', '-c', OBSERVE, 'sh', root], { timeoutMs: 10_000 });
  const [version = '', configSha256 = '', running = ''] = r.stdout.split('\n');
  return { version, configSha256, running: running === 'yes' };
}

/** The argv that runs one agent command on the node (JSON on stdin). */
export function agentRunArgv(root = DEFAULT_AGENT_ROOT, nodeBinary = 'node'): string[] {
  return [nodeBinary, `${root}/current/main.js`, 'run', '--config', `${root}/config.json`];
}

export async function installAgent(
  shell: NodeShell,
  node: string,
  opts: InstallOptions,
): Promise<InstallResult> {
  const root = (opts.root ?? DEFAULT_AGENT_ROOT).replace(/\/+$/, '');
  if (!root.startsWith('/'))
    throw new DriverError(`agent root must be absolute: ${root}`, { kind: 'terminal', node });
  const nodeBinary = opts.nodeBinary ?? 'node';
  const dryRun = opts.dryRun ?? false;
  return whileDoing(
    `installing pairshift-agent under ${root}`,
    async () => {
      const bundle = agentBundle(opts.sourceDir);
      // the pid file is how the installer finds the server: it must live here
      const config = renderAgentConfig({ ...opts.config, pidFile: `${root}/agent.pid` });
      const configSha256 = createHash('sha256').update(config).digest('hex');

      const before = await observeAgent(shell, node, root);
      const actions: string[] = [];
      if (before.version !== bundle.version) {
        actions.push(`copy agent ${bundle.version} (installed: ${before.version || 'none'})`);
      }
      if (before.configSha256 !== configSha256) actions.push('write config.json');
      if (actions.length > 0 || !before.running)
        actions.push(before.running ? 'restart serve' : 'start serve');
      if (actions.length === 0 || dryRun) {
        return {
          state: actions.length === 0 ? 'unchanged' : 'changed',
          version: bundle.version,
          actions,
          dryRun,
        };
      }

      if (before.version !== bundle.version) {
        await shell.exec(node, ['sh', '-c', UNPACK, 'sh', root, bundle.version], {
          stdin: await tarGz(bundle.files),
          timeoutMs: 60_000,
        });
      }
      if (before.configSha256 !== configSha256) {
        await shell.exec(node, ['sh', '-c', WRITE_CONFIG, 'sh', root], {
          stdin: config,
          timeoutMs: 10_000,
        });
      }
      await shell.exec(node, ['sh', '-c', RESTART, 'sh', root, nodeBinary], { timeoutMs: 30_000 });

      const after = await observeAgent(shell, node, root);
      if (
        after.version !== bundle.version ||
        after.configSha256 !== configSha256 ||
        !after.running
      ) {
        throw new DriverError(
          `after installing, the node reports version "${after.version}", config ${after.configSha256 === configSha256 ? 'current' : 'different'}, serve ${after.running ? 'running' : 'not running'}`,
          { kind: 'terminal', node },
        );
      }
      return { state: 'changed', version: bundle.version, actions, dryRun };
    },
    { kind: 'transient', node },
  );
}
