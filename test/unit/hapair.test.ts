import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sshEndpoints } from '../../src/drivers/ssh/endpoints.js';
import { InventoryError, parseHAPair, peerOf } from '../../src/inventory/hapair.js';
import { buildInventory, inventoryYaml } from '../../src/lab/inventory.js';
import { planLab } from '../../src/lab/plan.js';

const FP_A = 'SHA256:Q1b9c2m0yNnYQm9m8R5m2zj9y7t8H1o6hXq3x4K5v6w';
const FP_B = 'SHA256:Z9y8x7w6v5u4t3s2r1q0p9o8n7m6l5k4j3i2h1g0f9e';

function labYaml(dir: string): string {
  const keyPath = join(dir, 'id_ed25519');
  writeFileSync(keyPath, 'not-really-a-key', { mode: 0o600 });
  return inventoryYaml(
    buildInventory({
      plan: planLab('t9', 7),
      hostKeys: {
        a: { type: 'ssh-ed25519', fingerprint: FP_A, publicKey: 'ssh-ed25519 AAAA' },
        b: { type: 'ssh-ed25519', fingerprint: FP_B, publicKey: 'ssh-ed25519 BBBB' },
      },
      privateKeyPath: keyPath,
      knownHostsPath: join(dir, 'known_hosts'),
      pgpassPath: join(dir, 'pgpass'),
      pgBinDir: '/usr/lib/postgresql/15/bin',
      version: '1.0.0',
    }),
  );
}

test('the inventory the lab writes is a valid HAPair, read unchanged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-inv-'));
  const pair = parseHAPair(labYaml(dir), 'hapair.yaml');
  expect(pair.metadata.name).toBe('t9');
  expect(pair.spec.nodes.map((n) => n.name)).toEqual(['a', 'b']);
  expect(peerOf(pair, 'a').name).toBe('b');
  const endpoints = await sshEndpoints(pair);
  expect(endpoints.map((e) => [e.node, e.hostKeyFingerprints])).toEqual([
    ['a', [FP_A]],
    ['b', [FP_B]],
  ]);
  expect(endpoints[0]!.privateKey.toString()).toBe('not-really-a-key');
});

test.each([
  [
    (y: string) => y.replace('kind: HAPair', 'kind: Pair'),
    'hapair.yaml: kind: expected kind HAPair',
  ],
  [
    (y: string) => y.replace(FP_A, 'MD5:aa:bb'),
    'hapair.yaml: spec.nodes.0.ssh.hostKey.fingerprint: expected an OpenSSH SHA256 fingerprint',
  ],
  [
    (y: string) => y.replace(/appJar: .*/, 'appJar: opt/app/app.jar'),
    'hapair.yaml: spec.paths.appJar: expected an absolute path',
  ],
  [
    (y: string) => y.replace(/name: b\n/, 'name: a\n'),
    'hapair.yaml: spec.nodes: the two nodes need different names',
  ],
  [() => 'spec: [', 'hapair.yaml: not valid YAML'],
])('a bad inventory names the field (%#)', (mutate, message) => {
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-inv-'));
  let err: unknown;
  try {
    parseHAPair(mutate(labYaml(dir)), 'hapair.yaml');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InventoryError);
  expect((err as Error).message.startsWith(message)).toBe(true);
});
