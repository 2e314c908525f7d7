// The standalone resource source on both stores: a manifests folder and the
// API feed one set of resources; bad manifests lose nothing.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { firstValueFrom, take, toArray } from 'rxjs';
import { ResourceConflictError } from '../../src/reconciler/source.js';
import { StandaloneSource } from '../../src/sources/standalone.js';
import type { SqlClient } from '../../src/store/sql-client.js';
import { hapairYaml } from '../support/manifests.js';
import { backends, migratedStore } from './backends.js';

jest.setTimeout(120_000);

const upgrade = (name: string, version: string) => `apiVersion: pairshift.io/v1alpha1
kind: UpgradeRequest
metadata: {name: ${name}}
spec:
  pairRef: {name: lab}
  package: {path: /pkgs/app-${version}.tar.gz, version: ${version}}
`;

describe.each(backends)('standalone source on %s', (_name, makeBackend) => {
  const backend = makeBackend();
  let db: SqlClient;
  let dir: string;
  let source: StandaloneSource;
  const problems: string[] = [];

  beforeAll(async () => {
    db = await migratedStore(backend);
    dir = mkdtempSync(join(tmpdir(), 'pairshift-manifests-'));
    writeFileSync(join(dir, 'pair.yaml'), hapairYaml('lab'));
    writeFileSync(join(dir, 'up.yaml'), upgrade('to-v2', '2.0.0'));
    source = new StandaloneSource({
      db,
      manifestsDir: dir,
      resyncMs: 60_000,
      onProblem: (m) => problems.push(m),
    });
  });
  afterAll(async () => {
    await source.stop();
    rmSync(dir, { recursive: true, force: true });
    await backend.teardown();
  });

  test('manifests become resources; a spec change bumps the generation and triggers', async () => {
    const first = firstValueFrom(source.changes$.pipe(take(1)));
    await source.start();
    expect(await first).toBe('to-v2');
    expect((await source.getHAPair('lab'))?.spec.nodes.map((n) => n.name)).toEqual(['a', 'b']);
    const r1 = await source.getUpgradeRequest('to-v2');
    expect(r1?.metadata.generation).toBe(1);
    expect(r1?.spec.package.version).toBe('2.0.0');

    const next = firstValueFrom(source.changes$.pipe(take(1)));
    writeFileSync(join(dir, 'up.yaml'), upgrade('to-v2', '2.1.0'));
    await source.scan();
    expect(await next).toBe('to-v2');
    const r2 = await source.getUpgradeRequest('to-v2');
    expect(r2?.metadata.generation).toBe(2);
    expect(r2?.spec.package.version).toBe('2.1.0');

    // Re-reading an unchanged folder changes nothing.
    await source.scan();
    expect((await source.getUpgradeRequest('to-v2'))?.metadata.generation).toBe(2);
  });

  test('a bad manifest is reported by file and field, and the last good spec stays', async () => {
    problems.length = 0;
    writeFileSync(join(dir, 'up.yaml'), upgrade('to-v2', 'two'));
    writeFileSync(join(dir, 'junk.yaml'), 'kind: [unclosed');
    await source.scan();
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/junk\.yaml: not valid YAML/),
        expect.stringMatching(
          /up\.yaml: spec\.package\.version: expected a version MAJOR\.MINOR\.PATCH/,
        ),
      ]),
    );
    expect((await source.getUpgradeRequest('to-v2'))?.spec.package.version).toBe('2.1.0');
    unlinkSync(join(dir, 'junk.yaml'));
    writeFileSync(join(dir, 'up.yaml'), upgrade('to-v2', '2.1.0'));
  });

  test('status writes do not bump the generation; API create, conflict and spec patch', async () => {
    await source.updateStatus('to-v2', {
      phase: 'PREPARE',
      progress: 5,
      completedSteps: [],
      conditions: [],
    });
    const r = await source.getUpgradeRequest('to-v2');
    expect(r?.status?.phase).toBe('PREPARE');
    expect(r?.metadata.generation).toBe(2);

    const created = await source.createUpgradeRequest({
      metadata: { name: 'api-made' },
      spec: { pairRef: { name: 'lab' }, package: { path: '/p/x.tar.gz', version: '3.0.0' } },
    });
    expect(created.metadata.generation).toBe(1);
    await expect(
      source.createUpgradeRequest({ metadata: { name: 'api-made' }, spec: created.spec }),
    ).rejects.toBeInstanceOf(ResourceConflictError);
    const patched = await source.patchSpec('api-made', { cancel: { reason: 'window closed' } });
    expect(patched.metadata.generation).toBe(2);
    expect(patched.spec.cancel?.reason).toBe('window closed');
    expect((await source.listUpgradeRequests()).map((x) => x.metadata.name).sort()).toEqual([
      'api-made',
      'to-v2',
    ]);
  });

  test('a removed manifest keeps a running upgrade and drops a finished one', async () => {
    problems.length = 0;
    unlinkSync(join(dir, 'up.yaml'));
    await source.scan();
    expect(await source.getUpgradeRequest('to-v2')).not.toBeNull();
    expect(problems.join('\n')).toMatch(/removed while upgrade to-v2 is PREPARE/);
    await source.updateStatus('to-v2', {
      phase: 'COMPLETE',
      progress: 100,
      completedSteps: [],
      conditions: [],
    });
    const gone = firstValueFrom(source.changes$.pipe(take(1), toArray()));
    await source.scan();
    expect(await gone).toEqual(['to-v2']);
    expect(await source.getUpgradeRequest('to-v2')).toBeNull();
  });
});
