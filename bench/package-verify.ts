// Package verification throughput against `openssl dgst -sha256` on the same
// file, in the same run: RUNS rounds, each timing openssl then verification
// back to back (so load hits both alike); reports the medians and the median
// of the per-round ratios.
//
// Run (compiles just this script and what it imports, ~3 s):
//   npm run bench:verify -- [sizeMiB, default 200] [runs, default 7]
//
// The package holds one incompressible ~200 MiB jar (a jar is already
// compressed), so the archive is ~200 MiB too. Verification under a v2
// signature (what `package sign` writes) = the two ed25519 checks, then one
// read of the archive in 4 MiB chunks into two reused buffers (the next read
// runs while the current chunk is hashed), every byte hashed with node's
// crypto (OpenSSL's SHA-256) and only the first kilobytes inflated to read
// the manifest. A v1 signature (older packages) also inflates everything and
// re-hashes every entry; shown on its own row.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildPackage,
  generateSigningKeyPair,
  hashFile,
  loadPrivateKey,
  loadTrustedKey,
  signArchive,
  verifyPackage,
} from '../src/packages/index.js';
import { makeSignature } from '../src/packages/signing.js';

const RUNS = Number(process.argv[3] ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** openssl's CPU time, from bash's `times` (children's user and system time). */
function opensslCpu(archive: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const text = execFileSync(
      'bash',
      ['-c', 'openssl dgst -sha256 "$1" >/dev/null; times', 'bench', archive],
      { encoding: 'utf8' },
    );
    const child = text.trim().split('\n')[1] ?? '';
    const secs = [...child.matchAll(/(\d+)m([\d.]+)s/g)].map(
      (m) => Number(m[1]) * 60 + Number(m[2]),
    );
    out.push((secs.reduce((a, b) => a + b, 0) || Number.NaN) * 1000);
  }
  return out;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 200);
  const dir = mkdtempSync(join(tmpdir(), 'k-bench-pkg-'));
  try {
    const jar = join(dir, 'app.jar');
    const fd = openSync(jar, 'w');
    const block = Buffer.allocUnsafe(1 << 20);
    for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomFillSync(block));
    closeSync(fd);
    writeFileSync(join(dir, 'worker.py'), 'print("bench")\n');
    const keys = await generateSigningKeyPair(dir);
    const archive = join(dir, 'app.tar.gz');
    await buildPackage({
      version: '2.0.0',
      upgradesFrom: ['1.0.0'],
      jarPath: jar,
      pythonPath: join(dir, 'worker.py'),
      outPath: archive,
    });
    const privateKey = await loadPrivateKey(keys.privateKeyPath);
    const { signature } = await signArchive(archive, privateKey);
    // The same archive with a v1 signature (packages signed before v2).
    const v1Sig = join(dir, 'app.tar.gz.v1.sig');
    writeFileSync(
      v1Sig,
      JSON.stringify(makeSignature({ sha256: signature.sha256, size: signature.size }, privateKey)),
    );
    const trusted = await loadTrustedKey(keys.publicKeyPath);
    const bytes = statSync(archive).size;

    // warm the page cache once so neither side pays the first read
    await hashFile(archive);
    const openssl: number[] = [];
    /** openssl on an empty file: its start-up cost, included in every openssl run. */
    const opensslEmpty: number[] = [];
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const verify: number[] = [];
    const nodeHash: number[] = [];
    const verifyCpu: number[] = [];
    const verifyV1: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      openssl.push(await time(() => execFileSync('openssl', ['dgst', '-sha256', archive])));
      const cpu0 = process.cpuUsage(); // every thread of this process, the hashing worker too
      verify.push(
        await time(() => verifyPackage({ archivePath: archive, trustedKeys: [trusted] })),
      );
      const cpu = process.cpuUsage(cpu0);
      verifyCpu.push((cpu.user + cpu.system) / 1000);
      nodeHash.push(await time(() => hashFile(archive)));
      opensslEmpty.push(await time(() => execFileSync('openssl', ['dgst', '-sha256', empty])));
      verifyV1.push(
        await time(() =>
          verifyPackage({ archivePath: archive, sigPath: v1Sig, trustedKeys: [trusted] }),
        ),
      );
    }
    const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
    const row = (name: string, xs: number[]) =>
      `${name.padEnd(34)} median ${median(xs).toFixed(0).padStart(5)} ms  ${mbps(median(xs)).padStart(5)} MB/s  runs ${xs.map((x) => x.toFixed(0)).join(' ')}`;
    console.log(
      `archive ${(bytes / 2 ** 20).toFixed(1)} MiB, ${RUNS} runs each, interleaved; ` +
        `${cpus().length} CPUs, load average ${loadavg()
          .map((l) => l.toFixed(1))
          .join(' ')}`,
    );
    console.log(row('openssl dgst -sha256', openssl));
    console.log(row('openssl dgst -sha256 (empty file)', opensslEmpty));
    console.log(row(`pairshift verify (${signature.format})`, verify));
    console.log(row('pairshift verify (v1 signature)', verifyV1));
    console.log(row('node sha256 of the file (4 MiB reads)', nodeHash));
    console.log(
      `CPU time (user+sys), median: openssl ${median(opensslCpu(archive)).toFixed(0)} ms, ` +
        `pairshift verify ${median(verifyCpu).toFixed(0)} ms`,
    );
    const ratios = openssl.map((o, i) => (o / verify[i]!) * 100);
    console.log(
      `verify / openssl throughput: ${((median(openssl) / median(verify)) * 100).toFixed(0)}% ` +
        `of medians; per round ${ratios.map((r) => r.toFixed(0)).join(' ')} (median ${median(ratios).toFixed(0)}%, ` +
        `min ${Math.min(...ratios).toFixed(0)}%); without openssl's start-up: ` +
        `${(((median(openssl) - median(opensslEmpty)) / median(verify)) * 100).toFixed(0)}%; v1 signature: ${((median(openssl) / median(verifyV1)) * 100).toFixed(0)}%`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
