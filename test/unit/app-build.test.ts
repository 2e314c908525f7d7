// The lab app's build (cached, version baked in) and both services started
// from their real command lines on loopback. The JDBC /health against a real
// PostgreSQL is in test/store/app-health.test.ts.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { bakeWorker, buildAppRelease, versionJava } from '../../src/lab/app/build.js';
import { javaCommand, renderAppProperties, workerCommand } from '../../src/lab/app/commands.js';
import { httpGet, type Service, startService } from '../../src/lab/app/service-process.js';
import { freePort } from '../support/pg-cluster.js';

jest.setTimeout(60_000);

let dir: string;
let cacheDir: string;
const started: Service[] = [];
const ROOT_KEY = 'k-root-key-contents-never-printed';

beforeAll(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'k-app-cache-'));
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'k-app-'));
  writeFileSync(join(dir, 'root.key'), ROOT_KEY, { mode: 0o600 });
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('buildAppRelease', () => {
  it('bakes the version into the jar and the worker, and reuses the cached build', async () => {
    const t0 = Date.now();
    const r = await buildAppRelease({ version: '1.2.3', outDir: join(dir, 'a'), cacheDir });
    const first = Date.now() - t0;
    expect(execFileSync('java', ['-jar', r.jarPath, '--version'], { encoding: 'utf8' })).toBe(
      '1.2.3\n',
    );
    expect(execFileSync('python3', [r.pythonPath, '--version'], { encoding: 'utf8' })).toBe(
      '1.2.3\n',
    );
    // the JDK's own jar tool (unzip is not on a minimal Debian)
    execFileSync('jar', ['-xf', r.jarPath, 'META-INF/MANIFEST.MF'], { cwd: dir });
    const manifest = readFileSync(join(dir, 'META-INF', 'MANIFEST.MF'), 'utf8');
    expect(manifest).toMatch(/Implementation-Version: 1\.2\.3/);
    expect(manifest).toMatch(/Class-Path: \/usr\/share\/java\/postgresql\.jar/);

    const t1 = Date.now();
    const again = await buildAppRelease({ version: '1.2.3', outDir: join(dir, 'b'), cacheDir });
    const second = Date.now() - t1;
    expect(readFileSync(again.jarPath).equals(readFileSync(r.jarPath))).toBe(true);
    expect(second).toBeLessThan(Math.max(200, first / 3));
  });

  it('survives two builds of the same release racing into the cache', async () => {
    const [a, b] = await Promise.all([
      buildAppRelease({ version: '7.7.7', outDir: join(dir, 'r1'), cacheDir }),
      buildAppRelease({ version: '7.7.7', outDir: join(dir, 'r2'), cacheDir }),
    ]);
    expect(readFileSync(a.jarPath).equals(readFileSync(b.jarPath))).toBe(true);
    // no half-built folders left behind
    expect(readdirSync(cacheDir).filter((n) => n.startsWith('.build-'))).toEqual([]);
  });

  it('builds a different jar for the broken variant', async () => {
    const good = await buildAppRelease({ version: '1.2.3', outDir: join(dir, 'g'), cacheDir });
    const bad = await buildAppRelease({
      version: '1.2.3',
      outDir: join(dir, 'x'),
      cacheDir,
      broken: true,
    });
    expect(readFileSync(bad.jarPath).equals(readFileSync(good.jarPath))).toBe(false);
    expect(readFileSync(bad.pythonPath, 'utf8')).toMatch(/^BROKEN = True$/m);
  });

  it('refuses versions that are not MAJOR.MINOR.PATCH before they reach generated source', async () => {
    expect(() => versionJava('1.0.0"; System.exit(1); //', false)).toThrow('is not a version');
    expect(() => bakeWorker('VERSION = "0.0.0-unbuilt"\nBROKEN = False\n', '1.0', false)).toThrow(
      'is not a version',
    );
    expect(() => bakeWorker('print(1)\n', '1.0.0', false)).toThrow('lost its VERSION/BROKEN lines');
    await expect(buildAppRelease({ version: 'v2', outDir: dir, cacheDir })).rejects.toThrow(
      'is not a version',
    );
  });
});

describe('the Python service', () => {
  it('serves /version and /health; a broken build is always 503', async () => {
    const good = await buildAppRelease({ version: '2.0.0', outDir: join(dir, 'g'), cacheDir });
    const bad = await buildAppRelease({
      version: '2.0.0',
      outDir: join(dir, 'b'),
      cacheDir,
      broken: true,
    });
    const [p1, p2] = [await freePort(), await freePort()];
    const opts = { host: '127.0.0.1', configDir: dir };
    started.push(await startService(workerCommand(good.pythonPath, { ...opts, port: p1 }), p1));
    started.push(await startService(workerCommand(bad.pythonPath, { ...opts, port: p2 }), p2));
    expect(await httpGet(p1, '/version')).toMatchObject({ status: 200, body: '2.0.0\n' });
    const h = await httpGet(p1, '/health');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body)).toEqual({ status: 'ok', version: '2.0.0' });
    expect((await httpGet(p2, '/health')).status).toBe(503);
    expect((await httpGet(p2, '/version')).body).toBe('2.0.0\n');
    // the root key disappearing shows on /health
    rmSync(join(dir, 'root.key'));
    expect((await httpGet(p1, '/health')).status).toBe(503);
  });

  it('refuses to start without the root key', async () => {
    const r = await buildAppRelease({ version: '2.0.0', outDir: join(dir, 'g'), cacheDir });
    rmSync(join(dir, 'root.key'));
    const out = spawnCollect(
      workerCommand(r.pythonPath, { host: '127.0.0.1', port: 1, configDir: dir }),
    );
    expect(await out.exit).toBe(2);
    expect(out.text()).toMatch(/root key file .*root\.key is missing; refusing to start/);
  });
});

describe('the Java service without a reachable database', () => {
  function writeConfig(dbPort: number): void {
    writeFileSync(
      join(dir, 'app.properties'),
      renderAppProperties({ host: '127.0.0.1', port: dbPort, name: 'app', user: 'app' }),
    );
  }

  it('serves /version, answers /health 503 quickly, and never prints the root key', async () => {
    const r = await buildAppRelease({ version: '1.0.0', outDir: join(dir, 'g'), cacheDir });
    writeConfig(await freePort()); // nothing listens there
    const port = await freePort();
    const svc = await startService(
      javaCommand(r.jarPath, { host: '127.0.0.1', port, configDir: dir }),
      port,
    );
    started.push(svc);
    expect(await httpGet(port, '/version')).toMatchObject({ status: 200, body: '1.0.0\n' });
    const t0 = Date.now();
    const h = await httpGet(port, '/health');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(h.status).toBe(503);
    expect(JSON.parse(h.body)).toMatchObject({ status: 'fail', version: '1.0.0' });
    expect((await httpGet(port, '/health', 'POST')).status).toBe(405);
    expect(svc.output()).not.toContain(ROOT_KEY);
    expect(h.body).not.toContain(ROOT_KEY);
  });

  it('refuses to start without the root key or without database settings', async () => {
    const r = await buildAppRelease({ version: '1.0.0', outDir: join(dir, 'g'), cacheDir });
    const noSettings = spawnCollect(
      javaCommand(r.jarPath, { host: '127.0.0.1', port: 1, configDir: dir }),
    );
    expect(await noSettings.exit).toBe(2);
    expect(noSettings.text()).toMatch(/cannot read database settings .*app\.properties/);
    writeConfig(5432);
    rmSync(join(dir, 'root.key'));
    const noKey = spawnCollect(
      javaCommand(r.jarPath, { host: '127.0.0.1', port: 1, configDir: dir }),
    );
    expect(await noKey.exit).toBe(2);
    expect(noKey.text()).toMatch(
      /root key file .*root\.key is missing or unreadable; refusing to start/,
    );
  });
});

function spawnCollect(argv: string[]): { exit: Promise<number | null>; text(): string } {
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return {
    exit: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    text: () => text,
  };
}
