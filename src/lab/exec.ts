// `pairshift lab exec`: run a command inside node a, node b or the client
// namespace, with the terminal attached (psql, curl, bash...).
import { spawn } from 'node:child_process';
import { alive, mountNsOf, nodeArgv } from './namespaces.js';
import { planLab, validateLabName } from './plan.js';
import { readState } from './state.js';

export type ExecTarget = 'a' | 'b' | 'client';

/** argv that runs `cmd` inside the target of a running lab */
export function execArgv(name: string, target: ExecTarget, cmd: readonly string[]): string[] {
  validateLabName(name);
  if (cmd.length === 0) throw new Error('lab exec needs a command after --');
  const state = readState(name);
  if (!state) throw new Error(`lab ${name} is not up (pairshift lab up --name ${name})`);
  if (target === 'client') {
    return ['ip', 'netns', 'exec', planLab(name, state.subnetIndex).netns.client, ...cmd];
  }
  if (target !== 'a' && target !== 'b') {
    throw new Error(`lab exec target must be a, b or client, not "${target}"`);
  }
  const pid = state.holders[target];
  if (!pid || !alive(pid) || mountNsOf(pid) !== state.mountNs[target]) {
    throw new Error(
      `node ${target} of lab ${name} is not running (pairshift lab up --name ${name})`,
    );
  }
  return nodeArgv(pid, cmd);
}

/** Runs with inherited stdio; resolves to the command's exit code. */
export function labExec(name: string, target: ExecTarget, cmd: readonly string[]): Promise<number> {
  const [bin, ...args] = execArgv(name, target, cmd);
  return new Promise((resolve, reject) => {
    const child = spawn(bin!, args, { stdio: 'inherit' });
    child.on('error', (err) =>
      reject(new Error(`cannot run ${bin}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  });
}
