// `pairshift lab up`: build a lab step by step. Each step is named; the state
// file records what exists after every step; if a step fails, everything the
// lab created is torn down and the error says which step failed.
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAppRelease } from './app/build.js';
import { javaCommand, workerCommand } from './app/commands.js';
import { ensureLabSigningKey } from './app/releases.js';
import { labDown } from './down.js';
import { ensureHostMountPoints } from './host-dirs.js';
import { buildInventory, type HostKey, inventoryYaml } from './inventory.js';
import { generateKey, hostKeyOf, knownHostsLines } from './keys.js';
import { type LabDirs, labDirs, NODE_MOUNTS, NODE_PATHS } from './layout.js';
import { createNetwork, inNode, mountNsOf, shInNode, shq, startHolder } from './namespaces.js';
import { installNodeBin, makeDir, writeFile } from './node-files.js';
import {
  chooseSubnetIndex,
  type LabPlan,
  NODE_IDS,
  type NodeId,
  planLab,
  validateLabName,
} from './plan.js';
import { checkPrerequisites } from './prereq.js';
import {
  appProperties,
  DB,
  hostsFile,
  JAVA_PORT,
  keepalivedConf,
  type LabSecrets,
  PG_PORT,
  PYTHON_PORT,
  pgCtlCommand,
  pgHba,
  pgpass,
  postgresqlConf,
  rootShellRc,
  serviceDefs,
  sshdConfig,
  svcCommand,
  syncConf,
} from './render.js';
import { run, waitFor } from './run.js';
import { type LabState, readState, takenSubnets, withAllocationLock, writeState } from './state.js';
import { collectStatus, problems } from './status.js';

export const DEFAULT_APP_VERSION = '1.0.0';

export interface UpOptions {
  name: string;
  appVersion?: string;
  log?: (line: string) => void;
}

export interface UpResult {
  inventory: string;
  alreadyUp: boolean;
  plan: LabPlan;
  seconds: number;
}

export async function labUp(opts: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const name = validateLabName(opts.name);
  checkPrerequisites();
  const dirs = labDirs(name);

  const existing = readState(name);
  if (existing) {
    if (existing.phase === 'up') {
      const status = await collectStatus(name);
      const wrong = problems(status);
      if (wrong.length === 0) {
        log(`lab ${name} is already up`);
        return {
          inventory: dirs.inventory,
          alreadyUp: true,
          plan: planLab(name, existing.subnetIndex),
          seconds: (Date.now() - started) / 1000,
        };
      }
      log(`lab ${name} is up but not healthy (${wrong.join('; ')}); rebuilding it`);
    } else {
      log(`lab ${name} was left half-built; removing it first`);
    }
    await labDown({ name, log });
  } else {
    // namespaces without a state file (a crash before the first write)
    await labDown({ name, log: () => {}, quietIfAbsent: true });
  }

  // choosing a /24 and recording it is one critical section, so two labs
  // coming up at the same moment never pick the same one
  const { plan, state } = await withAllocationLock(async () => {
    const plan = planLab(name, chooseSubnetIndex(name, await subnetsInUse(name)));
    const state: LabState = {
      name,
      subnetIndex: plan.subnetIndex,
      createdAt: new Date().toISOString(),
      phase: 'creating',
      steps: [],
      netns: [],
      holders: {},
      mountNs: {},
      version: opts.appVersion ?? DEFAULT_APP_VERSION,
    };
    writeState(state);
    return { plan, state };
  });
  log(`lab ${name}: ${plan.cidr}, VIP ${plan.vip}, VRRP id ${plan.vrid}`);

  const ctx: Ctx = { plan, dirs, state, secrets: newSecrets(), hostKeys: {} };
  let current = 'start';
  const step = async (title: string, fn: () => Promise<void>) => {
    current = title;
    const t = Date.now();
    await fn();
    state.steps.push(title);
    writeState(state);
    log(`  ${title} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
  };

  // javac is the slowest single thing; run it while the network comes up
  const release = buildAppRelease({
    version: state.version!,
    outDir: join(dirs.releasesDir, state.version!),
  });
  release.catch(() => {}); // awaited (and reported) in its step

  try {
    await step('folders and keys', () => prepareFolders(ctx));
    await step('network namespaces and bridge', () =>
      createNetwork(plan, (ns) => {
        state.netns.push(ns);
        writeState(state);
      }),
    );
    await step('node namespaces', () => startNodes(ctx));
    await step('sshd', () => startOnBoth(ctx, 'sshd'));
    await step('postgresql primary on a', () => startPrimary(ctx));
    await step('postgresql standby on b', () => startStandby(ctx));
    await step('keepalived (VIP on a)', () => startKeepalived(ctx));
    await step('app release', async () => installRelease(ctx, await release));
    await step('java and python services', () => startServices(ctx));
    await step('config sync', () => startOnBoth(ctx, 'config-sync'));
    await step('inventory', () => writeInventory(ctx));
  } catch (err) {
    if (process.env.PAIRSHIFT_LAB_KEEP_ON_FAILURE === '1') {
      throw new Error(
        `lab up failed at step "${current}" (kept for inspection: PAIRSHIFT_LAB_KEEP_ON_FAILURE=1)`,
        { cause: err },
      );
    }
    log(`lab up failed at step "${current}"; removing what it created`);
    try {
      await labDown({ name, log: () => {} });
    } catch (cleanupErr) {
      throw new Error(
        `lab up failed at step "${current}" and cleanup failed too (run pairshift lab down --name ${name})`,
        { cause: cleanupErr },
      );
    }
    throw new Error(`lab up failed at step "${current}" (everything it created was removed)`, {
      cause: err,
    });
  }
  state.phase = 'up';
  state.inventory = dirs.inventory;
  writeState(state);
  return {
    inventory: dirs.inventory,
    alreadyUp: false,
    plan,
    seconds: (Date.now() - started) / 1000,
  };
}

interface Ctx {
  plan: LabPlan;
  dirs: LabDirs;
  state: LabState;
  secrets: LabSecrets;
  hostKeys: Partial<Record<NodeId, HostKey>>;
  packagePublicKey?: string;
}

function newSecrets(): LabSecrets {
  const pw = () => randomBytes(18).toString('base64url');
  return { postgres: pw(), app: pw(), replicator: pw() };
}

/** /24s other labs hold, plus any route already on the host (so a lab never
 * shadows a network someone else configured in 198.18.0.0/15). */
async function subnetsInUse(name: string): Promise<Set<number>> {
  const taken = takenSubnets(name);
  const routes = await run('ip', ['-4', 'route', 'show'], { allowFail: true });
  for (const m of routes.stdout.matchAll(/^198\.(18|19)\.(\d+)\.0\/24/gm)) {
    taken.add((Number(m[1]) - 18) * 256 + Number(m[2]));
  }
  return taken;
}

async function prepareFolders(ctx: Ctx): Promise<void> {
  const { dirs, plan } = ctx;
  ensureHostMountPoints();
  makeDir(dirs.sshDir, { mode: 0o700 });
  makeDir(dirs.secretsDir, { mode: 0o700 });
  makeDir(dirs.logDir);
  const keyJobs: Promise<void>[] = [generateKey(dirs.clientKey, `pairshift-lab-${plan.name}`)];
  for (const id of NODE_IDS) {
    const node = dirs.node(id);
    for (const m of NODE_MOUNTS) {
      if (m.file) writeFile(node.mount(m.dir), hostsFile(plan, id));
      else makeDir(node.mount(m.dir));
    }
    const p = (nodePath: string) => node.hostPath(nodePath);
    makeDir(p(NODE_PATHS.dataDir), { mode: 0o700, owner: 'postgres' });
    makeDir(p(NODE_PATHS.pgSocketDir), { mode: 0o2775, owner: 'postgres' });
    makeDir(p(`${NODE_PATHS.logDir}/postgresql`), { mode: 0o755, owner: 'postgres' });
    makeDir(p(NODE_PATHS.configDir), { mode: 0o755 });
    installNodeBin(p(NODE_PATHS.toolsBin));
    makeDir(p(NODE_PATHS.sshDir), { mode: 0o700 });
    makeDir(p(NODE_PATHS.syncDir));
    makeDir(p(NODE_PATHS.servicesDir));
    makeDir(p(NODE_PATHS.rootHome), { mode: 0o700 });
    writeFile(p(`${NODE_PATHS.rootHome}/.bashrc`), rootShellRc());
    writeFile(p(`${NODE_PATHS.rootHome}/.profile`), `. ~/.bashrc\n`);
    writeFile(p(`${NODE_PATHS.sshDir}/sshd_config`), sshdConfig());
    writeFile(p(`${NODE_PATHS.syncDir}/sync.conf`), syncConf(plan, id));
    writeFile(p(NODE_PATHS.keepalivedConf), keepalivedConf(plan, id));
    writeFile(p(NODE_PATHS.keepalivedFaultFile), '0\n');
    // the replication password, for pg_basebackup and primary_conninfo on
    // whichever node is the standby
    writeFile(p(`${NODE_PATHS.dbRoot}/pgpass`), pgpass(plan, ctx.secrets), {
      mode: 0o600,
      owner: 'postgres',
    });
    keyJobs.push(
      generateKey(p(`${NODE_PATHS.sshDir}/ssh_host_ed25519_key`), `${plan.netns[id]}-host`),
    );
  }
  writeFile(dirs.pgpass, pgpass(plan, ctx.secrets), { mode: 0o600 });
  // the key the lab's upgrade packages are signed with; the inventory names
  // its public half as the one to trust
  keyJobs.push(
    ensureLabSigningKey(dirs.packageKeysDir).then((k) => {
      ctx.packagePublicKey = k.publicKeyPath;
    }),
  );
  await Promise.all(keyJobs);

  const pub = readFileSync(`${dirs.clientKey}.pub`, 'utf8');
  for (const id of NODE_IDS) {
    ctx.hostKeys[id] = await hostKeyOf(
      dirs.node(id).hostPath(`${NODE_PATHS.sshDir}/ssh_host_ed25519_key`),
    );
  }
  const known = knownHostsLines(
    NODE_IDS.map((id) => ({ address: plan.nodeAddress[id], key: ctx.hostKeys[id]! })),
  );
  writeFile(dirs.knownHosts, known);
  for (const id of NODE_IDS) {
    const p = (nodePath: string) => dirs.node(id).hostPath(nodePath);
    writeFile(p(`${NODE_PATHS.sshDir}/authorized_keys`), pub, { mode: 0o600 });
    writeFile(p(`${NODE_PATHS.sshDir}/known_hosts`), known);
    // the sync job logs into the peer with the lab's key
    writeFile(p(`${NODE_PATHS.sshDir}/id_ed25519`), readFileSync(dirs.clientKey), { mode: 0o600 });
  }
}

async function startNodes(ctx: Ctx): Promise<void> {
  const { plan, dirs, state } = ctx;
  await Promise.all(
    NODE_IDS.map(async (id) => {
      const pid = await startHolder(plan, id, (dir) => dirs.node(id).mount(dir));
      state.holders[id] = pid;
      state.mountNs[id] = mountNsOf(pid);
      writeState(state);
    }),
  );
}

function holder(ctx: Ctx, id: NodeId): number {
  const pid = ctx.state.holders[id];
  if (!pid) throw new Error(`node ${id} has no namespaces`);
  return pid;
}

async function startOnBoth(ctx: Ctx, service: string): Promise<void> {
  await Promise.all(
    NODE_IDS.map((id) => {
      const defs = ctx.dirs.node(id).hostPath(NODE_PATHS.servicesDir);
      writeFile(join(defs, `${service}.sh`), serviceDefs(appStart(id))[service]!);
      return shInNode(holder(ctx, id), svcCommand('start', service));
    }),
  );
}

/** The app's start commands, exactly as src/lab/app/commands.ts gives them
 * (what its tests run), with absolute binaries so a service starts the same
 * from an ssh session (default PATH) as from `lab up`. */
function appStart(id: NodeId) {
  const absolute = (argv: string[]) => {
    const [bin, ...rest] = argv;
    const abs = bin === 'java' ? '/usr/bin/java' : bin === 'python3' ? '/usr/bin/python3' : bin!;
    return [abs, ...rest].map(shq).join(' ');
  };
  return {
    java: absolute(javaCommand(NODE_PATHS.appJar, { nodeName: id })),
    python: absolute(workerCommand(`${NODE_PATHS.appDir}/worker.py`)),
  };
}

async function pgBin(): Promise<string> {
  return (await run('pg_config', ['--bindir'])).stdout.trim();
}

function psqlAs(ctx: Ctx, id: NodeId, sql: string, db = 'postgres') {
  return inNode(
    holder(ctx, id),
    [
      'runuser',
      '-u',
      'postgres',
      '--',
      'psql',
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-At',
      '-d',
      db,
      '-f',
      '-',
    ],
    { input: sql },
  );
}

async function startPrimary(ctx: Ctx): Promise<void> {
  const bin = await pgBin();
  const dataDir = ctx.dirs.node('a').hostPath(NODE_PATHS.dataDir);
  await run('runuser', [
    '-u',
    'postgres',
    '--',
    `${bin}/initdb`,
    '-D',
    dataDir,
    '-U',
    DB.superuser,
    '--auth-local=peer',
    '--auth-host=scram-sha-256',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const conf = readFileSync(join(dataDir, 'postgresql.conf'), 'utf8');
  writeFile(join(dataDir, 'postgresql.conf'), conf + postgresqlConf(), {
    mode: 0o600,
    owner: 'postgres',
  });
  writeFile(join(dataDir, 'pg_hba.conf'), pgHba(ctx.plan), { mode: 0o600, owner: 'postgres' });
  await shInNode(holder(ctx, 'a'), pgCtlCommand(bin, 'start'));
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const s = ctx.secrets;
  await psqlAs(
    ctx,
    'a',
    `ALTER ROLE ${DB.superuser} PASSWORD ${q(s.postgres)};
CREATE ROLE ${DB.replicationUser} WITH REPLICATION LOGIN PASSWORD ${q(s.replicator)};
CREATE ROLE ${DB.user} WITH LOGIN PASSWORD ${q(s.app)};
CREATE DATABASE ${DB.name} OWNER ${DB.user};
`,
  );
  // the table the app writes (the app also creates it if missing)
  await psqlAs(
    ctx,
    'a',
    `SET ROLE ${DB.user};
CREATE TABLE IF NOT EXISTS app_heartbeat (instance text PRIMARY KEY, version text NOT NULL, beat_at timestamptz NOT NULL);
`,
    DB.name,
  );
}

async function startStandby(ctx: Ctx): Promise<void> {
  const bin = await pgBin();
  const { plan } = ctx;
  const pgpassPath = `${NODE_PATHS.dbRoot}/pgpass`;
  await inNode(holder(ctx, 'b'), [
    'runuser',
    '-u',
    'postgres',
    '--',
    'env',
    `PGPASSFILE=${pgpassPath}`,
    `${bin}/pg_basebackup`,
    '-h',
    plan.nodeAddress.a,
    '-p',
    String(PG_PORT),
    '-U',
    DB.replicationUser,
    '-D',
    NODE_PATHS.dataDir,
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  const dataDir = ctx.dirs.node('b').hostPath(NODE_PATHS.dataDir);
  // primary_conninfo names the pgpass file, never the password itself
  const conninfo = `host=${plan.nodeAddress.a} port=${PG_PORT} user=${DB.replicationUser} passfile=${pgpassPath} application_name=${plan.netns.b}`;
  const auto = readFileSync(join(dataDir, 'postgresql.auto.conf'), 'utf8');
  writeFile(join(dataDir, 'postgresql.auto.conf'), `${auto}primary_conninfo = '${conninfo}'\n`, {
    mode: 0o600,
    owner: 'postgres',
  });
  writeFile(join(dataDir, 'standby.signal'), '', { mode: 0o600, owner: 'postgres' });
  await shInNode(holder(ctx, 'b'), pgCtlCommand(bin, 'start'));
  await waitFor(
    'b to stream from a',
    async () => {
      const r = await psqlAs(
        ctx,
        'a',
        `SELECT state FROM pg_stat_replication WHERE application_name = ${`'${plan.netns.b}'`};`,
      );
      return r.stdout.trim() === 'streaming' ? true : undefined;
    },
    30_000,
  );
}

async function vipHolder(plan: LabPlan): Promise<NodeId | undefined> {
  for (const id of NODE_IDS) {
    const r = await run('ip', ['-n', plan.netns[id], '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    if (r.stdout.includes(` ${plan.vip}/`)) return id;
  }
  return undefined;
}

async function startKeepalived(ctx: Ctx): Promise<void> {
  await startOnBoth(ctx, 'keepalived');
  await waitFor(
    'the VIP on node a',
    async () => ((await vipHolder(ctx.plan)) === 'a' ? true : undefined),
    15_000,
    50,
  );
}

async function installRelease(
  ctx: Ctx,
  release: { jarPath: string; pythonPath: string },
): Promise<void> {
  const rootKey = randomBytes(64);
  for (const id of NODE_IDS) {
    const p = (nodePath: string) => ctx.dirs.node(id).hostPath(nodePath);
    copyFileSync(release.jarPath, p(NODE_PATHS.appJar));
    copyFileSync(release.pythonPath, p(`${NODE_PATHS.appDir}/worker.py`));
    // both nodes start with identical /etc/app; the sync job keeps it so
    writeFile(p(`${NODE_PATHS.configDir}/app.properties`), appProperties(ctx.plan, ctx.secrets), {
      mode: 0o640,
    });
    writeFile(p(NODE_PATHS.rootKey), rootKey, { mode: 0o600 });
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function startServices(ctx: Ctx): Promise<void> {
  await startOnBoth(ctx, 'java');
  await startOnBoth(ctx, 'python');
  const { plan } = ctx;
  const urls = NODE_IDS.flatMap((id) => [
    `http://${plan.nodeAddress[id]}:${JAVA_PORT}/health`,
    `http://${plan.nodeAddress[id]}:${PYTHON_PORT}/health`,
  ]);
  await waitFor(
    'the services to pass /health on both nodes',
    async () => ((await Promise.all(urls.map(httpOk))).every(Boolean) ? true : undefined),
    45_000,
    200,
  );
}

async function writeInventory(ctx: Ctx): Promise<void> {
  const { plan, dirs } = ctx;
  const inv = buildInventory({
    plan,
    hostKeys: { a: ctx.hostKeys.a!, b: ctx.hostKeys.b! },
    privateKeyPath: dirs.clientKey,
    knownHostsPath: dirs.knownHosts,
    pgpassPath: dirs.pgpass,
    pgBinDir: await pgBin(),
    version: ctx.state.version!,
    packagePublicKeyPath: ctx.packagePublicKey,
  });
  writeFile(dirs.inventory, inventoryYaml(inv));
  // prove the inventory works: key login with the pinned host keys only
  await Promise.all(
    NODE_IDS.map((id) =>
      run('ssh', [...sshOptions(dirs), `root@${plan.nodeAddress[id]}`, 'hostname'], {
        timeoutMs: 15_000,
      }).then((r) => {
        if (r.stdout.trim() !== plan.netns[id]) {
          throw new Error(
            `ssh to ${plan.nodeAddress[id]} reached ${r.stdout.trim()}, not ${plan.netns[id]}`,
          );
        }
      }),
    ),
  );
}

export function sshOptions(dirs: LabDirs): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    dirs.clientKey,
    '-o',
    `UserKnownHostsFile=${dirs.knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
  ];
}
