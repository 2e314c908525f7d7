// The operator's image, tested the way a cluster would run it, without a
// container engine (none works on these machines): the OCI image that
// `npm run image` built is unpacked with umoci, its config is checked, and
// its entrypoint runs from the unpacked root file system mounted read-only,
// as uid 65532, PID 1 of its own PID namespace, with the pod's mounts
// (config, SSH key, trusted package key, API token, manifests, a writable
// data folder, tmpfs /tmp). It must carry out a real upgrade of a lab pair
// (1.0.0 -> 2.0.0) and stop cleanly on SIGTERM.
//
// Needs: root, umoci, the lab's packages (test/lab), and the image:
// `npm run image && npm run test:image`.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { run, sleep } from '../../src/lab/run.js';
import { OperatorLab } from '../lab/operator-harness.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VERSION = (
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
).version;
const LAYOUT = process.env.PAIRSHIFT_IMAGE_LAYOUT ?? join(REPO, '.pairshift/image/oci');
const LAUNCHER = join(REPO, 'test/image/run-in-image.sh');
const APP_UID = 65532;

interface ImageConfig {
  config: {
    User?: string;
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    Env?: string[];
    ExposedPorts?: Record<string, unknown>;
    Volumes?: Record<string, unknown>;
    StopSignal?: string;
    Labels?: Record<string, string>;
  };
}

/** The image config of tag VERSION, read from the OCI layout (index -> manifest -> config). */
function readImageConfig(): { image: ImageConfig; layerBytes: number } {
  const blob = (digest: string) =>
    JSON.parse(readFileSync(join(LAYOUT, 'blobs', ...digest.split(':')), 'utf8'));
  const index = JSON.parse(readFileSync(join(LAYOUT, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === VERSION,
  );
  if (!entry) throw new Error(`the image in ${LAYOUT} has no tag ${VERSION}`);
  const manifest = blob(entry.digest) as { config: { digest: string }; layers: { size: number }[] };
  return {
    image: blob(manifest.config.digest) as ImageConfig,
    layerBytes: manifest.layers.reduce((s, l) => s + l.size, 0),
  };
}

const work = mkdtempSync(join(tmpdir(), 'pairshift-image-'));
const bundle = join(work, 'bundle');
const rootfs = join(bundle, 'rootfs');
let image: ImageConfig;

beforeAll(async () => {
  if (!existsSync(join(LAYOUT, 'index.json')))
    throw new Error(`no image in ${LAYOUT}: run \`npm run image\` first`);
  image = readImageConfig().image;
  await run('umoci', ['unpack', '--image', `${LAYOUT}:${VERSION}`, bundle], {
    timeoutMs: 300_000,
  });
}, 300_000);

afterAll(() => {
  if (process.env.PAIRSHIFT_KEEP_WORK === '1') console.log(`work folder kept: ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

describe('the image', () => {
  test('runs as 65532, the operator by default, with the agreed ports, paths and labels', () => {
    const c = image.config;
    expect(c.User).toBe(`${APP_UID}:${APP_UID}`);
    expect(c.Entrypoint).toEqual(['node', '/app/bin/pairshift.js']);
    expect(c.Cmd).toEqual(['operator', '--kubernetes']);
    expect(c.WorkingDir).toBe('/app');
    expect(c.Env).toEqual(
      expect.arrayContaining(['NODE_ENV=production', 'HOME=/var/lib/pairshift']),
    );
    expect(Object.keys(c.ExposedPorts ?? {}).sort()).toEqual(['8080/tcp', '8081/tcp']);
    expect(Object.keys(c.Volumes ?? {}).sort()).toEqual(['/tmp', '/var/lib/pairshift']);
    expect(c.StopSignal).toBe('SIGTERM');
    expect(c.Labels?.['org.opencontainers.image.version']).toBe(VERSION);
    expect(c.Labels?.['org.opencontainers.image.revision']).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    expect(c.Labels?.['org.opencontainers.image.licenses']).toBe('Apache-2.0');
  });

  test('holds Node.js 24, production dependencies only, and no secret', async () => {
    const node = await run('chroot', [rootfs, '/usr/local/bin/node', '--version']);
    expect(node.stdout.trim()).toMatch(/^v24\./);
    const modules = join(rootfs, 'app/node_modules');
    for (const dep of ['express', 'ssh2', '@electric-sql/pglite', '@kubernetes/client-node'])
      expect(existsSync(join(modules, dep))).toBe(true);
    // dev-only packages (not @types/node: @kubernetes/client-node depends on it)
    const dev = ['typescript', 'jest', '@swc/core', '@biomejs/biome', 'ajv', 'fast-check'];
    expect(dev.filter((d) => existsSync(join(modules, d)))).toEqual([]);
    expect(existsSync(join(rootfs, 'app/dist/cli/main.js'))).toBe(true);
    expect(existsSync(join(rootfs, 'app/dist/agent/node/main.js'))).toBe(true);
    expect(existsSync(join(rootfs, 'app/src'))).toBe(false);
    // the user the image runs as exists (os.userInfo(), ssh's ~ lookups)
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toMatch(
      /^pairshift:x:65532:65532:[^:]*:\/var\/lib\/pairshift:/m,
    );
    // the app is root's and not writable by the operator's user
    const app = statSync(join(rootfs, 'app'));
    expect(app.uid).toBe(0);
    expect(app.mode & 0o022).toBe(0);
    expect(statSync(join(rootfs, 'var/lib/pairshift')).uid).toBe(APP_UID);
    // no private key, npm token or SSH material anywhere in the image: a
    // PEM header followed by key material (libraries that parse keys, jose
    // and ssh2, carry the header alone as a string in their code)
    const candidates = await run(
      'grep',
      ['-rlIE', '-e', '-----BEGIN ([A-Z]+ )?PRIVATE KEY-----', '--exclude-dir=proc', rootfs],
      { allowFail: true, timeoutMs: 120_000 },
    );
    const keyFiles = candidates.stdout
      .split('\n')
      .filter((f) => f !== '')
      .filter((f) =>
        /-----BEGIN ([A-Z]+ )?PRIVATE KEY-----(?:\r?\n|\\n)(?:[A-Za-z-]+: [^\n]*(?:\r?\n|\\n))*(?:\r?\n|\\n)?[A-Za-z0-9+/=]{40,}/.test(
          readFileSync(f, 'latin1'),
        ),
      );
    expect(keyFiles).toEqual([]);
    for (const p of ['root/.npmrc', 'root/.npm', 'root/.ssh', 'app/.npmrc', 'etc/pairshift/ssh'])
      expect(existsSync(join(rootfs, p))).toBe(false);
  }, 180_000);
});

describe('the operator from inside the image', () => {
  const lab = new OperatorLab('im1');
  let container: Container | undefined;

  beforeAll(async () => {
    await lab.up();
    await lab.buildPackages();
  }, 600_000);

  afterAll(async () => {
    try {
      await container?.stop();
    } finally {
      await lab.dispose();
    }
  }, 120_000);

  test(
    'upgrades a lab pair 1.0.0 -> 2.0.0 as uid 65532 on a read-only root',
    async () => {
      const pod = podFiles(lab, await freePort());
      container = startContainer(pod);
      const pid = await container.commandPid();

      // who and where the operator runs, read by the host
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(
        new RegExp(`^Uid:\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}$`, 'm'),
      );
      expect(status).toMatch(
        new RegExp(`^Gid:\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}\\s+${APP_UID}$`, 'm'),
      );
      expect(status).toMatch(/^Groups:\s*$/m);
      expect(status).toMatch(/^NSpid:\s+\d+\s+1$/m); // PID 1 in its namespace: no init in front
      expect(readlinkSync(`/proc/${pid}/root`)).toBe(rootfs);
      const rootMount = readFileSync(`/proc/${pid}/mountinfo`, 'utf8')
        .split('\n')
        .map((l) => l.split(' '))
        .find((f) => f[4] === '/');
      expect(rootMount?.[5]?.split(',')).toContain('ro');

      // writes, tried in the operator's namespaces as its user: only the two writable places
      const tryWrite = (path: string, user = APP_UID) =>
        run(
          'nsenter',
          [
            '-t',
            String(pid),
            '-m',
            '-p',
            '--root',
            '--wd',
            '-S',
            String(user),
            '-G',
            String(user),
          ].concat(['/bin/sh', '-c', `: > ${path} && rm ${path}`]),
          { allowFail: true },
        );
      expect((await tryWrite('/tmp/probe')).code).toBe(0);
      expect((await tryWrite('/var/lib/pairshift/probe')).code).toBe(0);
      for (const p of ['/probe', '/app/probe', '/etc/pairshift/probe', '/var/lib/probe']) {
        const w = await tryWrite(p);
        expect({ p, refused: w.code !== 0, stderr: w.stderr }).toEqual({
          p,
          refused: true,
          stderr: expect.stringMatching(/Read-only file system/),
        });
      }
      // even root in there cannot: the mount is read-only, not only the permissions
      expect((await tryWrite('/app/probe', 0)).stderr).toMatch(/Read-only file system/);

      // the upgrade, watched through the operator's REST API (viewer token)
      const final = await pod.waitTerminal(container, 15 * 60_000);
      // on a failure the diff shows the status message and the operator's last words
      expect({ phase: final.phase, message: final.message }).toEqual({
        phase: 'COMPLETE',
        message: final.phase === 'COMPLETE' ? final.message : container.output.slice(-3000),
      });
      expect(final.target_version).toBe('2.0.0');
      expect(await lab.versions()).toEqual({ a: '2.0.0', b: '2.0.0' });
      const state = await lab.pairState();
      expect(state.vipVersion).toBe('2.0.0');
      expect(state.vipHolderHealthy).toBe(true);

      // the store was written by the operator's user, in the data volume
      const store = join(pod.data, 'store');
      expect(statSync(store).uid).toBe(APP_UID);

      // SIGTERM to PID 1 of the namespace: the operator stops itself, cleanly
      const exit = await container.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      expect(container.output).toMatch(/stopping/);
      // nothing secret in what the operator logged
      const key = readFileSync(join(pod.dir, 'ssh/id_ed25519'), 'utf8');
      const keyBody = key.split('\n')[1] ?? 'no key body';
      expect(container.output).not.toContain(keyBody);
      expect(container.output).not.toContain(pod.token);
    },
    20 * 60_000,
  );
});

interface Progress {
  phase: string;
  target_version: string;
  message: string | null;
  progress_percent: number;
}

interface Pod {
  dir: string;
  data: string;
  token: string;
  binds: string;
  argv: string[];
  waitTerminal(c: Container, timeoutMs: number): Promise<Progress>;
}

/** What the Deployment would mount, from the lab: config, key, known_hosts, trusted key, token, manifests, packages. */
function podFiles(lab: OperatorLab, port: number): Pod {
  const dir = join(work, 'pod');
  const mk = (d: string, mode = 0o755) => {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), mode);
    return join(dir, d);
  };
  // a Secret mounted with defaultMode 0400 and the pod's fsGroup: readable by the operator only
  const secret = (src: string | Buffer, dst: string) => {
    const p = join(dir, dst);
    if (typeof src === 'string') copyFileSync(src, p);
    else writeFileSync(p, src);
    chownSync(p, APP_UID, APP_UID);
    chmodSync(p, 0o400);
  };
  mk('ssh');
  mk('trusted-keys');
  mk('tokens');
  mk('manifests');
  mk('releases');
  const data = mk('data', 0o750);
  chownSync(data, APP_UID, APP_UID);

  const ssh = lab.pair.spec.ssh as { privateKeyPath: string; knownHostsPath?: string };
  secret(ssh.privateKeyPath, 'ssh/id_ed25519');
  copyFileSync(ssh.knownHostsPath!, join(dir, 'ssh/known_hosts'));
  copyFileSync(lab.packages.publicKeyPath, join(dir, 'trusted-keys/release.pub'));
  const token = randomBytes(24).toString('hex');
  secret(Buffer.from(`${token}\n`), 'tokens/viewer');
  for (const f of [lab.packages.v2.packagePath, lab.packages.v2.sigPath])
    copyFileSync(f, join(dir, 'releases', basename(f)));

  // the lab's inventory, with the key paths where the pod mounts them
  const pair = parse(readFileSync(lab.inventoryPath, 'utf8'));
  pair.spec.ssh.privateKeyPath = '/etc/pairshift/ssh/id_ed25519';
  pair.spec.ssh.knownHostsPath = '/etc/pairshift/ssh/known_hosts';
  writeFileSync(join(dir, 'manifests/hapair.yaml'), stringify(pair));
  const name = 'im-to-2-0-0';
  writeFileSync(
    join(dir, 'manifests/upgrade.yaml'),
    stringify({
      apiVersion: 'pairshift.io/v1alpha1',
      kind: 'UpgradeRequest',
      metadata: { name },
      spec: {
        pairRef: { name: pair.metadata.name },
        package: {
          path: `/srv/releases/${basename(lab.packages.v2.packagePath)}`,
          version: lab.packages.v2.version,
        },
      },
    }),
  );
  writeFileSync(
    join(dir, 'config.yaml'),
    stringify({
      store: { dataDir: '/var/lib/pairshift/store' },
      log: { level: 'info', format: 'json' },
      // the lab's services answer quickly: poll health every 2 s, as the lab tests do
      upgrade: { healthCheckInterval: '2s' },
      packages: {
        trustedKeys: ['/etc/pairshift/trusted-keys/release.pub'],
        workDir: '/var/lib/pairshift/work',
      },
      operator: { manifestsDir: '/etc/pairshift/manifests' },
      api: {
        listen: `127.0.0.1:${port}`,
        tokens: [{ name: 'image-test', role: 'viewer', tokenFile: '/etc/pairshift/tokens/viewer' }],
      },
    }),
  );

  // mount points, made in the unpacked root before it goes read-only (a runtime does the same)
  for (const d of ['etc/pairshift/ssh', 'etc/pairshift/trusted-keys', 'etc/pairshift/tokens'])
    mkdirSync(join(rootfs, d), { recursive: true });
  for (const d of ['etc/pairshift/manifests', 'srv/releases'])
    mkdirSync(join(rootfs, d), { recursive: true });
  writeFileSync(join(rootfs, 'etc/pairshift/config.yaml'), '');

  const binds = [
    `${join(dir, 'config.yaml')} /etc/pairshift/config.yaml ro`,
    `${join(dir, 'ssh')} /etc/pairshift/ssh ro`,
    `${join(dir, 'trusted-keys')} /etc/pairshift/trusted-keys ro`,
    `${join(dir, 'tokens')} /etc/pairshift/tokens ro`,
    `${join(dir, 'manifests')} /etc/pairshift/manifests ro`,
    `${join(dir, 'releases')} /srv/releases ro`,
    `${data} /var/lib/pairshift rw`,
  ].join('\n');

  return {
    dir,
    data,
    token,
    binds,
    // the image's entrypoint; standalone instead of the default --kubernetes
    argv: ['operator', '--config', '/etc/pairshift/config.yaml'],
    async waitTerminal(c, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = 'no answer yet';
      while (Date.now() < deadline) {
        if (c.exited) throw new Error(`the operator exited early:\n${c.output.slice(-4000)}`);
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/v1/upgrade/progress/${name}`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          });
          last = `${r.status} ${await r.text()}`;
          if (r.ok) {
            const p = JSON.parse(last.slice(4)) as Progress;
            if (['COMPLETE', 'FAILED', 'CANCELLED', 'TIMEOUT', 'UNREACHABLE'].includes(p.phase))
              return p;
          }
        } catch (err) {
          last = String(err);
        }
        await sleep(1000);
      }
      throw new Error(
        `no terminal phase after ${timeoutMs} ms; last: ${last}\n${c.output.slice(-4000)}`,
      );
    },
  };
}

class Container {
  output = '';
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly #done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.output += d;
    });
    this.#done = new Promise((done) =>
      child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        done(this.exited);
      }),
    );
  }

  /** The host pid of the image's command: the child unshare forked (it exec'd the launcher, then node). */
  async commandPid(): Promise<number> {
    const outer = this.child.pid!;
    for (let i = 0; i < 200; i++) {
      const children = readFileSync(`/proc/${outer}/task/${outer}/children`, 'utf8').trim();
      const pid = Number(children.split(' ')[0]);
      if (pid) {
        try {
          // By the executable, not /proc/PID/comm: Node 24 renames its main
          // thread "MainThread" once it runs, so comm stops saying "node" (the
          // first image test sent its SIGTERM nowhere and was SIGKILLed).
          if (readlinkSync(`/proc/${pid}/exe`).endsWith('/usr/local/bin/node')) return pid;
        } catch {
          // between execs
        }
      }
      if (this.exited) throw new Error(`the container exited:\n${this.output}`);
      await sleep(100);
    }
    throw new Error(`the image's command did not start:\n${this.output}`);
  }

  /** SIGTERM to the command (PID 1 inside), as the kubelet does; SIGKILL after 30 s. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exited) return this.exited;
    const pid = await this.commandPid().catch(() => null);
    if (pid) process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    const r = await this.#done;
    clearTimeout(timer);
    return r;
  }
}

/** The image run as its config says (user, workdir, env, entrypoint), with the pod's mounts. */
function startContainer(pod: Pod): Container {
  const c = image.config;
  const child = spawn(
    'unshare',
    ['--mount', '--pid', '--fork', '--propagation', 'private', LAUNCHER]
      .concat(c.Entrypoint ?? [])
      .concat(pod.argv),
    {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        IMG_ROOTFS: rootfs,
        IMG_USER: c.User ?? '',
        IMG_WORKDIR: c.WorkingDir ?? '/',
        IMG_ENV: (c.Env ?? []).join('\n'),
        IMG_BINDS: pod.binds,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return new Container(child);
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}
