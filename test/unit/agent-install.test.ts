// installAgent's decisions against a fake node (the real thing is in
// test/drivers/agent-ssh.test.ts): observe once, act only where different.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAgentConfig } from '../../src/agent/node/config.js';
import { renderAgentConfig } from '../../src/agent/render-config.js';
import { agentBundle, installAgent } from '../../src/drivers/agent/install.js';
import { DriverError } from '../../src/drivers/errors.js';
import type { ExecOptions, ExecResult } from '../../src/drivers/ssh/connection.js';
import type { NodeShell } from '../../src/drivers/ssh/pool.js';

const root = '/opt/pairshift-agent';
const config = parseAgentConfig('{"node":"a","allow":["127.0.0.0/8"]}');
const configSha = createHash('sha256')
  .update(renderAgentConfig({ ...config, pidFile: `${root}/agent.pid` }))
  .digest('hex');

let src: string;
beforeAll(() => {
  src = mkdtempSync(join(tmpdir(), 'ag-unit-bundle-'));
  writeFileSync(join(src, 'main.js'), 'console.log(1)\n');
  writeFileSync(join(src, 'main.js.map'), '{}');
});
afterAll(() => rmSync(src, { recursive: true, force: true }));

/** A node that answers the observe script with `state` and records the rest. */
function fakeNode(state: { version: string; sha: string; running: boolean }) {
  const calls: string[] = [];
  const shell: NodeShell = {
    async exec(_node, argv: readonly string[], _opts?: ExecOptions): Promise<ExecResult> {
      const script = argv[2] ?? '';
      const kind = script.includes('printf')
        ? 'observe'
        : script.includes('tar -xzf')
          ? 'unpack'
          : script.includes('config.json.new')
            ? 'config'
            : 'restart';
      calls.push(kind);
      if (kind === 'unpack') state.version = argv[5]!;
      if (kind === 'config') state.sha = configSha;
      if (kind === 'restart') state.running = true;
      const stdout =
        kind === 'observe'
          ? `${state.version}\n${state.sha}\n${state.running ? 'yes' : 'no'}\n`
          : '';
      return { exitCode: 0, signal: undefined, stdout, stderr: '', durationMs: 1 };
    },
  };
  return { shell, calls };
}

describe('installAgent decisions', () => {
  it('names a version after the exact files, ignoring source maps', () => {
    const b = agentBundle(src);
    expect(b.version).toMatch(/^0\.1\.0-[0-9a-f]{12}$/);
    expect([...b.files.keys()].sort()).toEqual(['VERSION', 'main.js', 'package.json']);
    writeFileSync(join(src, 'extra.js'), '');
    expect(agentBundle(src).version).not.toBe(b.version);
    rmSync(join(src, 'extra.js'));
    expect(agentBundle(src).version).toBe(b.version);
  });

  it('does nothing but observe when everything matches', async () => {
    const version = agentBundle(src).version;
    const n = fakeNode({ version, sha: configSha, running: true });
    const r = await installAgent(n.shell, 'a', { config, root, sourceDir: src });
    expect(r).toEqual({ state: 'unchanged', version, actions: [], dryRun: false });
    expect(n.calls).toEqual(['observe']);
  });

  it('only rewrites the config and restarts when only the config differs', async () => {
    const n = fakeNode({ version: agentBundle(src).version, sha: 'old', running: true });
    const r = await installAgent(n.shell, 'a', { config, root, sourceDir: src });
    expect(r.actions).toEqual(['write config.json', 'restart serve']);
    expect(n.calls).toEqual(['observe', 'config', 'restart', 'observe']);
  });

  it('a dry run observes and reports, never acts', async () => {
    const n = fakeNode({ version: '', sha: '', running: false });
    const r = await installAgent(n.shell, 'a', { config, root, sourceDir: src, dryRun: true });
    expect(r).toMatchObject({ state: 'changed', dryRun: true });
    expect(r.actions).toHaveLength(3);
    expect(n.calls).toEqual(['observe']);
  });

  it('fails terminal when the node does not end up as asked', async () => {
    const n = fakeNode({ version: '', sha: '', running: false });
    const broken: NodeShell = {
      exec: (node, argv, opts) =>
        (argv[2] ?? '').includes('setsid')
          ? Promise.resolve({
              exitCode: 0,
              signal: undefined,
              stdout: '',
              stderr: '',
              durationMs: 1,
            })
          : n.shell.exec(node, argv, opts),
    };
    const err = await installAgent(broken, 'a', { config, root, sourceDir: src }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DriverError);
    expect(err).toMatchObject({ kind: 'terminal', node: 'a' });
    expect((err as Error).message).toMatch(/while installing pairshift-agent.*serve not running/);
  });

  it('refuses a relative root and a missing build', async () => {
    const n = fakeNode({ version: '', sha: '', running: false });
    await expect(
      installAgent(n.shell, 'a', { config, root: 'opt/x', sourceDir: src }),
    ).rejects.toThrow(/absolute/);
    await expect(
      installAgent(n.shell, 'a', { config, root, sourceDir: '/nonexistent' }),
    ).rejects.toThrow(/npm run build/);
  });
});
