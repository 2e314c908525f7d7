// Every `pairshift` command the manuals (docs/manual/*.md) show in a ```sh
// block is run by a test, so the docs stay true:
// - the ones that need no pair or API (`--help`, `config check` of an
//   example file) are run here, in-process, and must exit 0;
// - every command must name a real subcommand and only options that
//   subcommand has (read from the CLI's own command tree);
// - the API commands (`pairshift upgrade ...`) are run here against an
//   address where nothing listens and must get as far as calling the API
//   (exit 4, API unreachable: the command line was accepted), and RUN_BY
//   names the test that runs them against a real API server;
// - any other command must be in RUN_BY, whose test file must use the
//   command's subcommand and every option it shows.
// A command in the manuals that is in neither fails.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { EXIT } from '../../src/cli/exit-codes.js';
import { buildProgram } from '../../src/cli/main.js';
import { runCli } from '../support/run-cli.js';

const root = join(import.meta.dirname, '..', '..');
const manualDir = join(root, 'docs', 'manual');

/** The test that runs each command that cannot run without an API server or a pair. */
const RUN_BY: Readonly<Record<string, string>> = {
  'pairshift operator --config /etc/pairshift/config.yaml --data-dir /var/lib/pairshift/data --manifests /etc/pairshift/manifests --trusted-key /etc/pairshift/keys/package-signing.pub --work-dir /var/lib/pairshift/work --listen 127.0.0.1:8080':
    'test/api/operator-cli.test.ts',
  'pairshift upgrade trigger --pair billing --package-path /srv/packages/app-2.0.0.tar.gz --version 2.0.0 --dry-run':
    'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade trigger --pair billing --package-path /srv/packages/app-2.0.0.tar.gz --version 2.0.0 --reason "release 2.0.0"':
    'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade progress upg-20261206-3fa2b1c0 --watch --timeout 30m':
    'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade progress upg-20261206-3fa2b1c0 --watch': 'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade progress upg-20261206-3fa2b1c0 -o json': 'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade history': 'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade logs upg-20261206-3fa2b1c0 --level ERROR': 'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade cancel upg-20261206-3fa2b1c0 --reason "maintenance window over"':
    'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade rollback upg-20261206-3fa2b1c0 --reason "health checks flapping"':
    'test/unit/cli-upgrade.test.ts',
  'pairshift upgrade rollback upg-20261206-3fa2b1c0 --reason "2.0.0 corrupts invoices" --restore-database':
    'test/unit/cli-upgrade.test.ts',
};

/** The `pairshift` lines of every ```sh block of the manuals. */
function manualCommands(): string[] {
  const out: string[] = [];
  for (const f of readdirSync(manualDir).filter((n) => n.endsWith('.md'))) {
    const md = readFileSync(join(manualDir, f), 'utf8');
    for (const block of md.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
      for (const line of block[1]!.replace(/\\\n\s*/g, ' ').split('\n')) {
        const cmd = line.replace(/\s+#.*$/, '').trim();
        if (cmd.startsWith('pairshift ')) out.push(cmd);
      }
    }
  }
  return out;
}

/** Splits a command line as sh would for the plain words and "quoted text" the manuals use. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

/** The subcommand a command line names, and the words after it. */
function resolveCommand(args: string[]): { cmd: Command; path: string[]; rest: string[] } {
  let cmd: Command = buildProgram();
  const path: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const sub = cmd.commands.find((c) => c.name() === args[i]);
    if (!sub) break;
    cmd = sub;
    path.push(args[i]!);
  }
  return { cmd, path, rest: args.slice(i) };
}

const isApiCommand = (path: string[]) => path[0] === 'upgrade' && path.length === 2;
const runsHere = (args: string[]) =>
  args.includes('--help') || (args[0] === 'config' && args[1] === 'check');

const commands = [...new Set(manualCommands())];

test('the manuals show commands, and each is known to this test', () => {
  expect(commands.length).toBeGreaterThanOrEqual(10);
  const unknown = commands.filter((c) => !runsHere(words(c).slice(1)) && !(c in RUN_BY));
  expect(unknown).toEqual([]);
  // and RUN_BY names no command the manuals no longer show
  expect(Object.keys(RUN_BY).filter((c) => !commands.includes(c))).toEqual([]);
});

test.each(commands)('%s: a real subcommand with only options it has', (line) => {
  const { cmd, path, rest } = resolveCommand(words(line).slice(1));
  expect(path.length).toBeGreaterThan(0);
  // a leaf, not a group missing its subcommand (a group's --help is fine)
  if (!rest.includes('--help')) expect(cmd.commands.map((c) => c.name())).toEqual([]);
  const known = new Set(['--help', '-h', ...cmd.options.flatMap((o) => [o.long, o.short])]);
  const flags = rest.filter((w) => w.startsWith('-'));
  expect(flags.filter((f) => !known.has(f))).toEqual([]);
});

const offline = commands.filter((c) => runsHere(words(c).slice(1)));

test('some commands run here', () => expect(offline.length).toBeGreaterThanOrEqual(2));

test.each(offline)('%s: runs and exits 0', async (line) => {
  const args = words(line).slice(1);
  const cwd = process.cwd();
  process.chdir(root); // example paths are relative to the repository
  try {
    const r = await runCli(...args);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: EXIT.OK, stderr: '' });
    expect(r.stdout.length).toBeGreaterThan(20);
    if (args[0] === 'config') expect(r.stdout).toContain('upgradeTimeout: 15m');
    if (args.includes('--help')) expect(r.stdout).toContain(`Usage: pairshift ${args[0]}`);
  } finally {
    process.chdir(cwd);
  }
});

const apiCommands = commands.filter((c) => {
  const args = words(c).slice(1);
  return !runsHere(args) && isApiCommand(resolveCommand(args).path);
});

test.each(apiCommands)(
  '%s: accepted and sent to the API (exit 4 where none listens)',
  async (line) => {
    const before = process.env.PAIRSHIFT_API_TOKEN;
    process.env.PAIRSHIFT_API_TOKEN = 'manuals-test-token-0123456789';
    try {
      const args = words(line).slice(1);
      // a watch would keep trying for its default 2 minutes; 1 ms is enough to see it start
      const extra = args.includes('--watch') ? ['--reconnect-for', '1ms'] : [];
      const r = await runCli(...args, '--api', 'http://127.0.0.1:1', ...extra);
      expect({ code: r.code, out: r.stdout }).toEqual({ code: EXIT.API_UNREACHABLE, out: '' });
      expect(r.stderr).not.toContain('manuals-test-token');
    } finally {
      if (before === undefined) delete process.env.PAIRSHIFT_API_TOKEN;
      else process.env.PAIRSHIFT_API_TOKEN = before;
    }
  },
);

test.each(Object.entries(RUN_BY))(
  '%s: %s runs its subcommand with every option shown',
  (line, file) => {
    const test = readFileSync(join(root, file), 'utf8');
    const { path, rest } = resolveCommand(words(line).slice(1));
    const needed = [path[path.length - 1]!, ...rest.filter((w) => w.startsWith('-'))];
    expect(needed.filter((w) => !test.includes(`'${w}'`))).toEqual([]);
  },
);
