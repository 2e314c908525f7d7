// Every operator setting that has a flag resolves flag > environment > file
// > default, parsed through the real command definition (a commander default
// once hid packages.workDir from the file).
import { Command } from 'commander';
import { storeChoice } from '../../src/cli/context.js';
import {
  type OperatorCliOptions,
  registerOperatorCommands,
  resolveOperatorSettings,
} from '../../src/cli/operator.js';
import { applyEnv, parseConfig } from '../../src/config/load.js';

async function flagsOf(...args: string[]): Promise<OperatorCliOptions> {
  const program = new Command().exitOverride();
  registerOperatorCommands(program);
  const op = program.commands.find((c) => c.name() === 'operator')!;
  let got: OperatorCliOptions | undefined;
  op.action((o: OperatorCliOptions) => {
    got = o;
  });
  await program.parseAsync(['node', 'pairshift', 'operator', ...args]);
  return got!;
}

const FILE = [
  'store:',
  '  databaseUrl: postgres://op@file-db:5432/p',
  '  dataDir: /file/data',
  'packages:',
  '  workDir: /file/work',
  '  trustedKeys: [/file/key.pem]',
  'operator:',
  '  manifestsDir: /file/manifests',
  '  concurrency: 7',
  'api:',
  '  listen: 127.0.0.1:9001',
].join('\n');

async function resolved(args: string[], env: NodeJS.ProcessEnv = {}, file = FILE) {
  const flags = await flagsOf(...args);
  const config = applyEnv(parseConfig(file, 'c.yaml'), env);
  return { ...resolveOperatorSettings(flags, config), store: storeChoice(flags, config) };
}

describe('set only in the file, the file wins over the default', () => {
  test.each([
    ['packages.workDir', (r: Resolved) => r.workDir, '/file/work'],
    ['packages.trustedKeys', (r: Resolved) => r.keyPaths, ['/file/key.pem']],
    ['operator.manifestsDir', (r: Resolved) => r.manifestsDir, '/file/manifests'],
    ['operator.concurrency', (r: Resolved) => r.concurrency, 7],
    ['api.listen', (r: Resolved) => r.listen, '127.0.0.1:9001'],
    ['store.databaseUrl', (r: Resolved) => r.store.databaseUrl, 'postgres://op@file-db:5432/p'],
    ['store.dataDir', (r: Resolved) => r.store.dataDir, '/file/data'],
  ])('%s', async (_name, pick, expected) => {
    expect(pick(await resolved([]))).toEqual(expected);
  });
});

type Resolved = Awaited<ReturnType<typeof resolved>>;

test('nothing anywhere: the defaults', async () => {
  const r = await resolved([], {}, '');
  expect([r.workDir, r.concurrency, r.manifestsDir, r.listen, r.keyPaths]).toEqual([
    '/var/lib/pairshift/work',
    4,
    undefined,
    undefined,
    [],
  ]);
});

test('the environment wins over the file', async () => {
  const r = await resolved([], {
    PAIRSHIFT_WORK_DIR: '/env/work',
    PAIRSHIFT_MANIFESTS_DIR: '/env/manifests',
    PAIRSHIFT_CONCURRENCY: '9',
    PAIRSHIFT_API_LISTEN: '127.0.0.1:9002',
    PAIRSHIFT_DATABASE_URL: 'postgres://op@env-db:5432/p',
  });
  expect([r.workDir, r.manifestsDir, r.concurrency, r.listen, r.store.databaseUrl]).toEqual([
    '/env/work',
    '/env/manifests',
    9,
    '127.0.0.1:9002',
    'postgres://op@env-db:5432/p',
  ]);
});

test('a flag wins over the environment and the file', async () => {
  const r = await resolved(
    [
      '--work-dir',
      '/flag/work',
      '--manifests',
      '/flag/manifests',
      '--concurrency',
      '2',
      '--listen',
      '127.0.0.1:9003',
      '--trusted-key',
      '/flag/key.pem',
      '--database-url',
      'postgres://op@flag-db:5432/p',
    ],
    { PAIRSHIFT_WORK_DIR: '/env/work', PAIRSHIFT_CONCURRENCY: '9' },
  );
  expect([r.workDir, r.manifestsDir, r.concurrency, r.listen, r.keyPaths]).toEqual([
    '/flag/work',
    '/flag/manifests',
    2,
    '127.0.0.1:9003',
    ['/flag/key.pem'],
  ]);
  expect(r.store.databaseUrl).toBe('postgres://op@flag-db:5432/p');
});

test('a bad value is refused naming where it came from', async () => {
  await expect(resolved([], { PAIRSHIFT_WORK_DIR: 'relative/dir' })).rejects.toThrow(
    'PAIRSHIFT_WORK_DIR: expected an absolute path',
  );
  await expect(resolved(['--concurrency', '1e2'])).rejects.toThrow(
    '--concurrency: expected a whole number from 1 to 64, got "1e2"',
  );
});

describe('probes and metrics port, shutdown grace (issue 13)', () => {
  const file = ['operator:', '  shutdownGrace: 40s', 'metrics:', '  listen: 0.0.0.0:9081'].join(
    '\n',
  );

  test('off and 25s when set nowhere', async () => {
    const r = await resolved([], {}, '');
    expect([r.metricsListen, r.shutdownGraceMs]).toEqual([undefined, 25_000]);
  });

  test('the file, then the environment, then the flag', async () => {
    expect(await resolved([], {}, file)).toMatchObject({
      metricsListen: '0.0.0.0:9081',
      shutdownGraceMs: 40_000,
    });
    expect(
      await resolved(
        [],
        { PAIRSHIFT_METRICS_LISTEN: '127.0.0.1:9082', PAIRSHIFT_SHUTDOWN_GRACE: '50s' },
        file,
      ),
    ).toMatchObject({ metricsListen: '127.0.0.1:9082', shutdownGraceMs: 50_000 });
    expect(
      await resolved(
        ['--metrics-listen', '127.0.0.1:9083', '--shutdown-grace', '1m30s'],
        { PAIRSHIFT_METRICS_LISTEN: '127.0.0.1:9082', PAIRSHIFT_SHUTDOWN_GRACE: '50s' },
        file,
      ),
    ).toMatchObject({ metricsListen: '127.0.0.1:9083', shutdownGraceMs: 90_000 });
  });

  test('bad values are refused', async () => {
    await expect(resolved(['--shutdown-grace', 'soon'])).rejects.toThrow(
      '--shutdown-grace: expected a positive duration',
    );
    await expect(resolved(['--metrics-listen', 'nohost'])).rejects.toThrow('expected host:port');
    await expect(resolved([], { PAIRSHIFT_SHUTDOWN_GRACE: 'never' })).rejects.toThrow(
      'PAIRSHIFT_SHUTDOWN_GRACE',
    );
  });
});
