// The README's main job: bring up a lab pair, upgrade it from 1.0.0 to a new
// version with the real operator (standalone: a manifests folder and the
// embedded store), show progress live, measure what clients saw with the
// prober from the lab's client namespace, print a summary, and tear the lab
// down. Everything it does is what a user would do by hand (docs/demo.md).
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { formatDuration } from '../config/duration.js';
import { BUILT_IN_DEFAULTS } from '../config/settings.js';
import { isTerminal, type Phase } from '../core/phases.js';
import type { UpgradeRequest } from '../core/upgrade-request.js';
import { loadHAPair } from '../inventory/hapair.js';
import { buildLabPackage, ensureLabSigningKey } from '../lab/app/releases.js';
import { labDown, labUp } from '../lab/index.js';
import { createLogger } from '../log/logger.js';
import { startOperator } from '../operator/operator.js';
import { loadTrustedKey } from '../packages/signing.js';
import type { ProbeReport } from '../prober/prober.js';
import { StandaloneSource } from '../sources/standalone.js';
import { migrate } from '../store/migrate.js';
import { openPglite } from '../store/pglite.js';
import { listHistory } from '../store/upgrades.js';

export interface DemoOptions {
  readonly name: string;
  readonly targetVersion: string;
  readonly broken: boolean;
  readonly keep: boolean;
  readonly say: (line: string) => void;
  /** Phase changes of the upgrade, for tests that stop things at a boundary. */
  readonly onPhase?: (phase: Phase) => void;
  readonly timeoutMs?: number;
}

export interface DemoSummary {
  readonly phase: Phase;
  readonly totalMs: number;
  readonly phases: { phase: Phase; ms: number }[];
  readonly vipSwitchMs: number | null;
  readonly operatorDowntime: UpgradeRequest['status'] extends infer S
    ? S extends { downtime?: infer D }
      ? D | null
      : null
    : null;
  readonly clients: ProbeReport | null;
  readonly versions: Record<string, string | null>;
}

const PAIRSHIFT_BIN = fileURLToPath(new URL('../../bin/pairshift.js', import.meta.url));

export async function runLabUpgrade(o: DemoOptions): Promise<DemoSummary> {
  const started = Date.now();
  const say = o.say;
  const work = mkdtempSync(join(tmpdir(), 'pairshift-demo-'));
  let prober: ChildProcess | null = null;
  say(`bringing up lab ${o.name} (a real pair in network namespaces) ...`);
  const up = await labUp({ name: o.name, log: (l) => say(`  ${l}`) });
  const db = await openPglite(join(work, 'store'));
  try {
    await migrate(db);
    const pair = await loadHAPair(up.inventory);
    const pubKey = pair.metadata.annotations?.['pairshift.io/lab-package-public-key'];
    if (!pubKey) throw new Error('the lab inventory names no package signing key');
    const keys = await ensureLabSigningKey(dirname(pubKey));
    say(`building the signed ${o.broken ? 'BROKEN ' : ''}package ${o.targetVersion} ...`);
    const pkg = await buildLabPackage({
      version: o.targetVersion,
      broken: o.broken,
      outDir: join(work, 'packages'),
      signingKey: keys.privateKeyPath,
    });

    // What a user (or a GitOps tool) would commit: the pair and the request.
    const manifests = join(work, 'manifests');
    mkdirSync(manifests);
    copyFileSync(up.inventory, join(manifests, 'hapair.yaml'));
    const requestName = `${o.name}-to-${o.targetVersion.replaceAll('.', '-')}`;
    writeFileSync(
      join(manifests, 'upgrade.yaml'),
      [
        'apiVersion: pairshift.io/v1alpha1',
        'kind: UpgradeRequest',
        `metadata: {name: ${requestName}}`,
        'spec:',
        `  pairRef: {name: ${pair.metadata.name}}`,
        `  package: {path: ${pkg.packagePath}, version: ${o.targetVersion}}`,
        '',
      ].join('\n'),
    );

    const client = pair.metadata.annotations?.['pairshift.io/lab-client-netns'];
    if (client) prober = startClientProber(client, pair, say);
    await new Promise((r) => setTimeout(r, 1500)); // the prober sees the service up first

    const logger = createLogger({ stream: new PassThrough(), format: 'json' });
    const source = new StandaloneSource({
      db,
      manifestsDir: manifests,
      resyncMs: 5000,
      onProblem: (m) => say(`  ! ${m}`),
    });
    const operator = await startOperator({
      db,
      source,
      settings: { ...BUILT_IN_DEFAULTS, healthCheckInterval: 2000 },
      logger,
      trustedKeys: [await loadTrustedKey(keys.publicKeyPath)],
      workDir: join(work, 'stage'),
    });
    say(`upgrading ${pair.metadata.name} from 1.0.0 to ${o.targetVersion}:`);
    const final = await follow(source, requestName, started, o).finally(() => operator.stop());
    const clients = prober ? await stopClientProber(prober) : null;
    prober = null;

    const history = (await listHistory(db, 1, 100, { upgradeId: requestName })).items.reverse();
    const phases = history.slice(1).map((h, i) => ({
      phase: history[i]!.to,
      ms: h.at.getTime() - history[i]!.at.getTime(),
    }));
    const [vip] = await db.query<{ duration_ms: number }>(
      `SELECT duration_ms FROM vip_switch_record WHERE upgrade_id = $1 AND result = 'SUCCESS' ORDER BY started_at DESC LIMIT 1`,
      [requestName],
    );
    const versions: Record<string, string | null> = {};
    for (const n of pair.spec.nodes) versions[n.name] = await httpVersion(n.address, 8080);
    const summary: DemoSummary = {
      phase: final.status!.phase,
      totalMs: Date.now() - started,
      phases,
      vipSwitchMs: vip ? Number(vip.duration_ms) : null,
      operatorDowntime: final.status?.downtime ?? null,
      clients,
      versions,
    };
    printSummary(summary, say);
    return summary;
  } finally {
    if (prober) prober.kill('SIGKILL');
    await db.close();
    if (o.keep) say(`lab ${o.name} kept: pairshift lab down --name ${o.name} removes it`);
    else {
      say(`tearing down lab ${o.name} ...`);
      await labDown({ name: o.name });
    }
    rmSync(work, { recursive: true, force: true });
  }
}

/** Prints progress as it changes; resolves when the upgrade reaches a terminal phase. */
async function follow(
  source: StandaloneSource,
  name: string,
  started: number,
  o: DemoOptions,
): Promise<UpgradeRequest> {
  let last = '';
  let lastPhase: Phase | null = null;
  const deadline = Date.now() + (o.timeoutMs ?? 20 * 60_000);
  for (;;) {
    const req = await source.getUpgradeRequest(name);
    const st = req?.status;
    if (st) {
      if (st.phase !== lastPhase) {
        lastPhase = st.phase;
        o.onPhase?.(st.phase);
      }
      const line = `${String(st.progress).padStart(3)}%  ${st.phase.padEnd(14)} ${st.message ?? ''}`;
      if (line !== last) {
        o.say(
          `  [${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s ${new Date().toISOString().slice(11, 23)}] ${line}`,
        );
        last = line;
      }
      if (isTerminal(st.phase) && st.finishedAt) return req!;
    }
    if (Date.now() > deadline)
      throw new Error(`the upgrade did not finish in ${formatDuration(o.timeoutMs ?? 1_200_000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function startClientProber(
  netns: string,
  pair: {
    spec: {
      vip: { address: string };
      database: { passFile?: string | undefined };
      nodes: { address: string }[];
    };
  },
  say: (l: string) => void,
): ChildProcess {
  const db = (host: string) => `postgres://app@${host}:5432/app`;
  const args = [
    'netns',
    'exec',
    netns,
    'env',
    `PGPASSFILE=${pair.spec.database.passFile ?? ''}`,
    process.execPath,
    PAIRSHIFT_BIN,
    'probe',
    '--http',
    `http://${pair.spec.vip.address}:8080/health`,
    '--db',
    db(pair.spec.vip.address),
    ...pair.spec.nodes.flatMap((n) => ['--verify-db', db(n.address)]),
    '--rate-hz',
    '50',
    '--output',
    'json',
  ];
  say(`probing the VIP from the client namespace (HTTP and database writes at 50 Hz) ...`);
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  (child as ChildProcess & { output: Buffer[] }).output = out;
  return child;
}

async function stopClientProber(child: ChildProcess): Promise<ProbeReport | null> {
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  await done;
  const text = Buffer.concat((child as ChildProcess & { output: Buffer[] }).output).toString(
    'utf8',
  );
  try {
    return JSON.parse(text) as ProbeReport;
  } catch {
    return null;
  }
}

async function httpVersion(host: string, port: number): Promise<string | null> {
  try {
    const r = await fetch(`http://${host}:${port}/version`, { signal: AbortSignal.timeout(2000) });
    return r.ok ? (await r.text()).trim() : null;
  } catch {
    return null;
  }
}

function printSummary(s: DemoSummary, say: (l: string) => void): void {
  const ms = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);
  say('');
  say(`result: ${s.phase} in ${ms(s.totalMs)}`);
  say('phases:');
  for (const p of s.phases) say(`  ${p.phase.padEnd(15)} ${ms(p.ms)}`);
  say(
    `VIP switch (database primary and VIP together): ${s.vipSwitchMs === null ? 'none' : ms(s.vipSwitchMs)}`,
  );
  if (s.operatorDowntime) {
    const d = s.operatorDowntime;
    say(
      `downtime seen by the operator's probe of the VIP: longest ${ms(d.httpLongestMs)}, total ${ms(d.httpTotalMs)}${d.httpBlindMs ? `, blind ${ms(d.httpBlindMs)}` : ''} (budget ${ms(d.budgetMs)}: ${d.withinBudget ? 'within' : 'EXCEEDED'})`,
    );
  }
  if (s.clients) {
    const h = s.clients.http;
    const d = s.clients.db;
    if (h)
      say(
        `clients, HTTP through the VIP: longest outage ${ms(h.longestOutageMs)}, total ${ms(h.totalOutageMs)}`,
      );
    for (const w of h?.outages.slice(0, 5) ?? [])
      say(`  outage ${w.from} .. ${w.to} (${ms(w.durationMs)})`);
    if (d) {
      say(
        `clients, database writes through the VIP: longest outage ${ms(d.longestOutageMs)}, total ${ms(d.totalOutageMs)}; ${d.writes.acked} acknowledged, ${d.writes.unknown} unknown outcome`,
      );
    }
    const v = s.clients.verification;
    if (v && !('error' in v)) say(`acknowledged writes lost: ${v.lostAcknowledged}`);
    else if (v) say(`write verification failed: ${v.error}`);
  }
  say(
    `versions now: ${Object.entries(s.versions)
      .map(([n, v]) => `${n} ${v ?? 'not answering'}`)
      .join(', ')}`,
  );
}
