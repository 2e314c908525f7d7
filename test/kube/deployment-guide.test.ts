// docs/deployment.md: every command in its `sh` blocks is run here, or, when
// it needs a live cluster, matched against what the rendered manifests hold
// (names, labels, files), with the reason it cannot run in code. A command
// no rule knows fails the test, so a new command in the guide needs a check.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { loadApiTokens } from '../../src/api/tokens.js';
import { REPLICAS_FOLDER } from '../../src/api/upload-replicas.js';
import { parseHAPair } from '../../src/inventory/hapair.js';
import { find, type KubeObject, kustomize, root, schemaProblems } from '../support/kustomize.js';
import { runCli } from '../support/run-cli.js';

const guide = readFileSync(join(root, 'docs', 'deployment.md'), 'utf8');
// kubectl and the embedded store's first start (initdb in WASM) are slow on a shared machine.
jest.setTimeout(120_000);

/** The commands of every ```sh block: continuations joined, comments dropped. */
function commands(markdown: string): string[] {
  const out: string[] = [];
  for (const m of markdown.matchAll(/^```sh\n([\s\S]*?)^```/gm)) {
    const joined = m[1]!.replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (cmd && !cmd.startsWith('#')) out.push(cmd);
    }
  }
  return out;
}

const rendered = {
  single: kustomize('deploy/overlays/single'),
  ha: kustomize('deploy/overlays/ha'),
};
let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'pairshift-guide-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** kubectl offline: no kubeconfig, so nothing can reach a cluster by accident. */
function kubectl(args: string[]): string {
  return execFileSync('kubectl', args, {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: join(work, 'no-kubeconfig') },
  });
}

// Commands that need a live API server (discovery, Deployments, pods):
// kubectl cannot map a kind to a resource without one, even with
// --dry-run=client (docs/kubernetes.md), and the test API server
// (test/support/kube-api-server.ts) serves only pairshift's resources,
// Events and Leases. What they name is checked against the manifests.
function checkClusterCommand(cmd: string): void {
  const objs = rendered.single;
  const deployment = cmd.match(/deployment\/(\S+)/)?.[1];
  if (deployment) expect(find(objs, 'Deployment', deployment)).toBeDefined();
  const label = cmd.match(/-l (\S+)=(\S+)/);
  if (label) {
    const labels = find(objs, 'Deployment').spec.template.metadata.labels;
    expect(labels[label[1]!]).toBe(label[2]);
  }
  // The Lease is created by the operator (src/sources/lease.ts), not applied.
  if (/ lease /.test(cmd)) expect(cmd).toMatch(/ lease pairshift-operator /);
  const file = cmd.match(/ -f (\S+)/)?.[1];
  if (file) parseHAPair(readFileSync(join(root, file), 'utf8'), file);
  const ur = cmd.match(/upgraderequest\/(\S+)/);
  if (ur) expect(cmd).toMatch(/--for=condition=Ready/);
}

const rules: {
  pattern: RegExp;
  check: (m: RegExpMatchArray, cmd: string) => Promise<void> | void;
}[] = [
  {
    // Needs a running pod: check it names the ha Deployment and lists the
    // markers' folder (src/api/upload-replicas.ts) inside the shared claim's mount.
    pattern: /^kubectl -n pairshift exec deploy\/(\S+) -- ls -l (\S+)$/,
    check: (m) => {
      const d = find(rendered.ha, 'Deployment', m[1]!);
      const mount = (d.spec.template.spec.containers[0].volumeMounts as KubeObject[]).find(
        (v) => v.name === 'packages',
      );
      expect(m[2]).toBe(`${mount!.mountPath}/${REPLICAS_FOLDER}`);
    },
  },
  {
    pattern: /^kubectl kustomize (\S+)$/,
    check: (m) => {
      expect(find(kustomize(m[1]!), 'Deployment', 'pairshift-operator')).toBeDefined();
    },
  },
  {
    // apply needs a server (above): render the same folder and validate it instead.
    pattern: /^kubectl apply -k (\S+)$/,
    check: async (m) => {
      const objs = kustomize(m[1]!);
      const problems = await schemaProblems(objs);
      expect(problems).toEqual([]);
    },
  },
  {
    pattern: /^kubectl create namespace (\S+)$/,
    check: (m) => {
      const ns = parse(kubectl(['create', 'namespace', m[1]!, '--dry-run=client', '-o', 'yaml']));
      expect(ns.metadata.name).toBe(find(rendered.single, 'Namespace').metadata.name);
    },
  },
  {
    // Run as written plus --dry-run=client (offline), with stand-in files.
    pattern: /^kubectl -n pairshift create secret generic (\S+) (.*)$/,
    check: (m, cmd) => {
      const keys: string[] = [];
      for (const f of m[2]!.matchAll(/--from-file=([^=\s]+)=(\S+)/g)) {
        keys.push(f[1]!);
        writeFileSync(join(work, f[2]!), `stand-in for ${f[1]}\n`);
      }
      const args = cmd.split(/\s+/).slice(1);
      const secret = parse(kubectl([...args, '--dry-run=client', '-o', 'yaml']));
      expect(secret).toMatchObject({
        kind: 'Secret',
        metadata: { name: m[1], namespace: 'pairshift' },
      });
      expect(Object.keys(secret.data).sort()).toEqual(keys.sort());
    },
  },
  {
    // Run as written; the token must pass the API's own loader.
    pattern: /^openssl rand -base64 \d+ \| tr -d '\\n' > (\S+)$/,
    check: async (m, cmd) => {
      execFileSync('sh', ['-c', cmd], { cwd: work });
      const tokenFile = join(work, m[1]!);
      const [token] = await loadApiTokens([{ name: m[1]!, role: 'operator', tokenFile }]);
      expect(token?.token).toBe(readFileSync(tokenFile, 'utf8'));
    },
  },
  {
    pattern: /^pairshift config check (\S+)$/,
    check: async (m) => {
      const r = await runCli('config', 'check', join(root, m[1]!));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      // The file checked is the one the ConfigMap is generated from.
      const cm = find(rendered.single, 'ConfigMap');
      expect(cm.data['config.yaml']).toBe(readFileSync(join(root, m[1]!), 'utf8'));
    },
  },
  {
    // A store copy: here a freshly migrated embedded store stands in for the backup.
    pattern: /^pairshift db status --data-dir (\S+)$/,
    check: async (m) => {
      const dir = join(work, m[1]!);
      expect((await runCli('db', 'migrate', '--data-dir', dir)).code).toBe(0);
      const r = await runCli('db', 'status', '--data-dir', dir);
      expect(r.code).toBe(0);
      const migrations = r.stdout.split('\n').filter((l) => /^\S+\s+\d{4}_/.test(l));
      expect(migrations.length).toBeGreaterThan(0);
      for (const l of migrations) expect(l).toMatch(/^applied /);
    },
  },
  {
    pattern:
      /^kubectl (-n pairshift )?(get|rollout status|wait|logs|scale|apply -f)\b|^kubectl -n pairshift (get|rollout status|wait|logs|scale|apply -f)\b/,
    check: (_m, cmd) => checkClusterCommand(cmd),
  },
];

const all = commands(guide);

test('the guide has commands, and every one has a rule', () => {
  expect(all.length).toBeGreaterThan(10);
  expect(all.filter((c) => !rules.some((r) => r.pattern.test(c)))).toEqual([]);
});

test.each(all)('%s', async (cmd) => {
  const rule = rules.find((r) => r.pattern.test(cmd));
  if (!rule) throw new Error(`no rule for: ${cmd}`);
  await rule.check(cmd.match(rule.pattern)!, cmd);
});

test('the reason apply is not run: kubectl apply needs a server even with --dry-run=client', () => {
  let failure = '';
  try {
    // Port 1: refused for sure, whatever else runs on this machine.
    kubectl([
      'apply',
      '-k',
      join(root, 'deploy/overlays/single'),
      '--dry-run=client',
      '--server=http://127.0.0.1:1',
    ]);
  } catch (err) {
    failure = String((err as { stderr?: string }).stderr);
  }
  expect(failure).toMatch(/connection refused|unable to recognize|failed to download openapi/);
});

test("the guide's own overlay renders, and its patch opens SSH to the new subnet only", () => {
  const block = guide.match(/```yaml\n# my-site\/kustomization.yaml\n([\s\S]*?)```/)?.[1];
  expect(block).toBeDefined();
  // Beside deploy/ as in the guide, one level deeper: .pairshift/ is ignored by git.
  const dir = join(root, '.pairshift', 'guide-site', 'my-site');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kustomization.yaml'), block!.replace('../deploy/', '../../../deploy/'));
  try {
    const objs = kustomize('.pairshift/guide-site/my-site');
    const egress = find(objs, 'NetworkPolicy').spec.egress as KubeObject[];
    const ssh = egress.find((r) => r.ports.some((p: KubeObject) => p.port === 22));
    expect(ssh?.to).toEqual([{ ipBlock: { cidr: '10.20.0.0/16' } }]);
    expect(JSON.stringify(objs)).not.toContain('198.18.0.0/15');
  } finally {
    rmSync(join(root, '.pairshift', 'guide-site'), { recursive: true, force: true });
  }
});

test('a command the guide gets wrong is caught', async () => {
  const bad = rules.find((r) => r.pattern.test('kubectl -n pairshift get pods'))!;
  expect(() =>
    bad.check(
      [] as unknown as RegExpMatchArray,
      'kubectl -n pairshift scale deployment/pairshift --replicas=0',
    ),
  ).toThrow();
  expect(existsSync(join(root, 'deploy', 'overlays', 'ha'))).toBe(true);
  expect(rendered.ha.some((o: KubeObject) => o.kind === 'Deployment')).toBe(true);
});
