// deploy/: both overlays render with `kubectl kustomize`, every object is
// valid against the Kubernetes schemas (offline, kubernetes-models), and
// the overlays are what docs/deployment.md says: single = one replica on a
// PVC, ha = two replicas, leader election, an external PostgreSQL.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { renderCrdFiles } from '../../src/sources/crd.js';
import {
  find,
  type KubeObject,
  kustomize,
  root,
  schemaProblem,
  schemaProblems,
} from '../support/kustomize.js';

const overlays = {
  single: kustomize('deploy/overlays/single'),
  ha: kustomize('deploy/overlays/ha'),
};
jest.setTimeout(60_000);
const guide = readFileSync(join(root, 'docs', 'deployment.md'), 'utf8');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;

const podSpec = (objs: KubeObject[]) =>
  find(objs, 'Deployment', 'pairshift-operator').spec.template.spec;
const container = (objs: KubeObject[]) => podSpec(objs).containers[0];
const envNamed = (objs: KubeObject[], name: string) =>
  (container(objs).env as KubeObject[]).find((e) => e.name === name);

describe.each(Object.entries(overlays))('overlay %s', (overlay, objs) => {
  test('every object is valid against its Kubernetes schema', async () => {
    const problems = await schemaProblems(objs);
    expect(problems).toEqual([]);
    expect(objs.map((o) => o.kind)).toEqual(
      expect.arrayContaining([
        'Namespace',
        'CustomResourceDefinition',
        'ServiceAccount',
        'Role',
        'RoleBinding',
        'ConfigMap',
        'Deployment',
        'Service',
        'PodDisruptionBudget',
        'NetworkPolicy',
        'ServiceMonitor',
      ]),
    );
  });

  test('the CRDs are the generated ones, and nothing is put outside the namespace by mistake', () => {
    // The base's common labels are the one addition kustomize makes.
    const crds = objs
      .filter((o) => o.kind === 'CustomResourceDefinition')
      .map(({ metadata: { labels, ...metadata }, ...rest }) => ({ ...rest, metadata }));
    const generated = Object.values(renderCrdFiles()).map((t) => parse(t));
    expect(crds).toEqual(expect.arrayContaining(generated));
    expect(crds).toHaveLength(generated.length);
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole']);
    for (const o of objs.filter((x) => !clusterScoped.has(x.kind))) {
      expect(`${o.kind}/${o.metadata.name} in ${o.metadata.namespace}`).toMatch(/ in pairshift$/);
    }
  });

  test('the pod runs as 65532, read-only, no privileges, RuntimeDefault seccomp', () => {
    const pod = podSpec(objs);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(objs).securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(objs).resources.requests).toEqual(
      expect.objectContaining({ cpu: expect.any(String) }),
    );
    expect(container(objs).resources.limits.memory).toBeDefined();
    // Writable only where a volume is mounted: /tmp and /var/lib/pairshift
    // (in ha, its work folder is the shared claim).
    const writable = (container(objs).volumeMounts as KubeObject[])
      .filter((m) => !m.readOnly)
      .map((m) => m.mountPath)
      .sort();
    expect(writable).toEqual(
      overlay === 'ha'
        ? ['/tmp', '/var/lib/pairshift', '/var/lib/pairshift/work']
        : ['/tmp', '/var/lib/pairshift'],
    );
  });

  test('command line, ports, probes, POD_NAME and the image are the shared conventions', () => {
    const c = container(objs);
    expect(c.image).toBe(`ghcr.io/pairshift/pairshift:${version}`);
    expect(c.args).toEqual([
      'operator',
      '--kubernetes',
      '--config',
      '/etc/pairshift/config.yaml',
      '--listen',
      '0.0.0.0:8080',
      '--metrics-listen',
      '0.0.0.0:8081',
      '--shutdown-grace',
      '50s',
    ]);
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 8080 },
      { name: 'metrics', containerPort: 8081 },
    ]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/livez', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    expect(envNamed(objs, 'POD_NAME')).toEqual({
      name: 'POD_NAME',
      valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    expect(podSpec(objs).terminationGracePeriodSeconds).toBe(60);
    expect(podSpec(objs).serviceAccountName).toBe(find(objs, 'ServiceAccount').metadata.name);
  });

  test('no Secret is in the manifests; each one referenced is created by the user as the guide says', () => {
    expect(objs.filter((o) => o.kind === 'Secret')).toEqual([]);
    expect(JSON.stringify(objs)).not.toMatch(/postgres(ql)?:\/\/[^"\s]*:[^"\s@]*@/);
    const pod = podSpec(objs);
    const secrets = new Set<string>();
    for (const v of pod.volumes as KubeObject[]) if (v.secret) secrets.add(v.secret.secretName);
    for (const e of container(objs).env as KubeObject[]) {
      // a literal value may name a file (…_FILE), never be a secret itself
      expect(
        e.value === undefined || /_FILE$/.test(e.name) || !/PASSWORD|URL|TOKEN/.test(e.name),
      ).toBe(true);
      if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name);
    }
    expect(secrets.size).toBeGreaterThan(0);
    for (const s of secrets)
      expect(guide).toContain(`kubectl -n pairshift create secret generic ${s}`);
    // ConfigMaps are generated, never expected from the user.
    for (const v of pod.volumes as KubeObject[]) {
      if (v.configMap) expect(find(objs, 'ConfigMap', v.configMap.name)).toBeDefined();
    }
  });

  test('the config file is valid, and every file it names is in a mounted volume the guide fills', () => {
    const text = find(objs, 'ConfigMap').data['config.yaml'] as string;
    const config = parseConfig(text, 'config.yaml');
    const files = [
      ...(config.packages?.trustedKeys ?? []),
      ...(config.api?.tokens ?? []).map((t) => t.tokenFile),
    ];
    expect(files.length).toBeGreaterThan(2);
    const mounts = container(objs).volumeMounts as KubeObject[];
    const volumes = podSpec(objs).volumes as KubeObject[];
    for (const file of files) {
      const mount = mounts.find((m) => file.startsWith(`${m.mountPath}/`));
      expect(`${file} mounted: ${mount !== undefined}`).toBe(`${file} mounted: true`);
      const secret = volumes.find((v) => v.name === mount!.name)?.secret?.secretName;
      const key = file.slice(mount!.mountPath.length + 1);
      const create =
        guide.split('\n').find((l) => l.includes(`create secret generic ${secret}`)) ?? '';
      const block = guide.slice(guide.indexOf(create), guide.indexOf(create) + 400);
      expect(`${secret}: ${block.includes(`--from-file=${key}=`)}`).toBe(`${secret}: true`);
    }
    expect(config.packages?.workDir).toBe('/var/lib/pairshift/work');
  });
});

describe('the overlays differ as documented', () => {
  const { single, ha } = overlays;

  test('single: one replica, Recreate, the embedded store on a PVC, a PDB that never blocks a drain', () => {
    const d = find(single, 'Deployment');
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    const data = (podSpec(single).volumes as KubeObject[]).find((v) => v.name === 'data');
    expect(data).toEqual({ name: 'data', persistentVolumeClaim: { claimName: 'pairshift-data' } });
    expect(find(single, 'PersistentVolumeClaim', 'pairshift-data').spec.accessModes).toEqual([
      'ReadWriteOnce',
    ]);
    expect(envNamed(single, 'PAIRSHIFT_DATA_DIR')?.value).toBe('/var/lib/pairshift/data');
    expect(envNamed(single, 'PAIRSHIFT_DATABASE_URL')).toBeUndefined();
    expect(find(single, 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1 });
    expect(find(single, 'PodDisruptionBudget').spec.minAvailable).toBeUndefined();
  });

  test('ha: two replicas on different nodes, rolling, the store URL from a Secret, PDB minAvailable 1', () => {
    const d = find(ha, 'Deployment');
    expect(d.spec.replicas).toBe(2);
    expect(d.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    const anti =
      podSpec(ha).affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    expect(anti).toEqual([
      {
        topologyKey: 'kubernetes.io/hostname',
        labelSelector: { matchLabels: d.spec.selector.matchLabels },
      },
    ]);
    expect(envNamed(ha, 'PAIRSHIFT_DATABASE_URL')).toEqual({
      name: 'PAIRSHIFT_DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'pairshift-store', key: 'databaseUrl' } },
    });
    // The password as a file from the Secret, mounted where the variable says.
    expect(envNamed(ha, 'PAIRSHIFT_DATABASE_PASSWORD_FILE')).toEqual({
      name: 'PAIRSHIFT_DATABASE_PASSWORD_FILE',
      value: '/etc/pairshift/store/password',
    });
    const storeVolume = podSpec(ha).volumes.find((v: KubeObject) => v.name === 'store-password');
    expect(storeVolume.secret).toMatchObject({
      secretName: 'pairshift-store',
      items: [{ key: 'password', path: 'password' }],
    });
    const mount = podSpec(ha).containers[0].volumeMounts.find(
      (m: KubeObject) => m.name === 'store-password',
    );
    expect(mount).toEqual({
      name: 'store-password',
      mountPath: '/etc/pairshift/store',
      readOnly: true,
    });
    // The base's mounts are still there (a strategic merge, not a replace).
    expect(podSpec(ha).containers[0].volumeMounts.length).toBeGreaterThan(1);
    expect(envNamed(ha, 'PAIRSHIFT_DATA_DIR')).toBeUndefined();
    // The one claim is the shared work folder (next test), never the store.
    expect(
      ha.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name),
    ).toEqual(['pairshift-packages']);
    expect(find(ha, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 });
    expect(find(ha, 'PodDisruptionBudget').spec.maxUnavailable).toBeUndefined();
    // The docs must say why more than one replica needs the external store.
    expect(guide).toMatch(/external PostgreSQL[^.]*required[^.]*more than one replica/i);
  });

  test('ha: both replicas mount one ReadWriteMany claim at the work folder the config names', () => {
    // Where uploads land: packages.workDir, unless a flag or the environment overrides it.
    const config = parseConfig(find(ha, 'ConfigMap').data['config.yaml'] as string, 'config.yaml');
    const workDir = config.packages?.workDir;
    expect(workDir).toBe('/var/lib/pairshift/work');
    expect(container(ha).args).not.toContain('--work-dir');
    expect(envNamed(ha, 'PAIRSHIFT_WORK_DIR')).toBeUndefined();
    // The mount that holds workDir is the deepest one containing it: the claim.
    const mounts = (container(ha).volumeMounts as KubeObject[]).filter(
      (m) => workDir === m.mountPath || workDir!.startsWith(`${m.mountPath}/`),
    );
    const holder = mounts.sort((x, y) => y.mountPath.length - x.mountPath.length)[0]!;
    expect(holder).toEqual({ name: 'packages', mountPath: workDir });
    expect(holder.readOnly).toBeUndefined();
    const volume = (podSpec(ha).volumes as KubeObject[]).find((v) => v.name === holder.name);
    expect(volume).toEqual({
      name: 'packages',
      persistentVolumeClaim: { claimName: 'pairshift-packages' },
    });
    const claim = find(ha, 'PersistentVolumeClaim', 'pairshift-packages');
    expect(claim.metadata.namespace).toBe('pairshift');
    expect(claim.spec.accessModes).toEqual(['ReadWriteMany']);
    // One pod template for both replicas: the same claim at the same path in each.
    expect(find(ha, 'Deployment').spec.replicas).toBe(2);
    // single keeps its work folder on its one RWO data claim, no second claim.
    const singleHolder = (container(single).volumeMounts as KubeObject[]).filter((m) =>
      workDir!.startsWith(`${m.mountPath}/`),
    );
    expect(singleHolder.map((m) => m.name)).toEqual(['data']);
    // The guide says what the claim is for and what it needs.
    expect(guide).toMatch(/ReadWriteMany/);
    expect(guide).toContain('pairshift-packages');
  });

  test('NetworkPolicy: the ports the operator uses, PostgreSQL only in ha', () => {
    const egressPorts = (objs: KubeObject[]) =>
      (find(objs, 'NetworkPolicy').spec.egress as KubeObject[])
        .flatMap((r) => r.ports as KubeObject[])
        .map((p) => p.port);
    for (const p of [53, 443, 6443, 22, 8090]) expect(egressPorts(single)).toContain(p);
    expect(egressPorts(single)).not.toContain(5432);
    expect(egressPorts(ha)).toContain(5432);
    // SSH is open to the pairs' subnet, not to the world.
    const ssh = (find(single, 'NetworkPolicy').spec.egress as KubeObject[]).find((r) =>
      r.ports.some((p: KubeObject) => p.port === 22),
    );
    expect(ssh?.to.map((t: KubeObject) => t.ipBlock?.cidr)).toEqual(['198.18.0.0/15']);
    expect(ssh?.to.map((t: KubeObject) => t.ipBlock?.cidr)).not.toContain('0.0.0.0/0');
    const ingressPorts = (find(single, 'NetworkPolicy').spec.ingress as KubeObject[]).flatMap((r) =>
      r.ports.map((p: KubeObject) => p.port),
    );
    expect(ingressPorts.sort()).toEqual(['http', 'metrics']);
  });

  test('apart from the store, replicas and their consequences, the overlays are the same', () => {
    const kinds = (objs: KubeObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(kinds(single).filter((k) => k !== 'PersistentVolumeClaim/pairshift-data')).toEqual(
      kinds(ha).filter((k) => k !== 'PersistentVolumeClaim/pairshift-packages'),
    );
    for (const kind of [
      'Role',
      'RoleBinding',
      'ServiceAccount',
      'Service',
      'ServiceMonitor',
      'ConfigMap',
    ]) {
      expect(find(single, kind)).toEqual(find(ha, kind));
    }
  });
});

test('a broken object is refused by the schema check (it can fail)', async () => {
  const d = structuredClone(find(overlays.ha, 'Deployment'));
  d.spec.replicas = 'two';
  expect(await schemaProblem(d)).toMatch(/replicas must be integer/);
  // The CRD and ServiceMonitor checks are real too, not a pass-through.
  const crd = structuredClone(
    find(overlays.ha, 'CustomResourceDefinition', 'hapairs.pairshift.io'),
  );
  crd.spec.names = 'hapairs';
  expect(await schemaProblem(crd)).toMatch(/names must be object/);
  const sm = structuredClone(find(overlays.ha, 'ServiceMonitor'));
  sm.spec.endpoints = [{ port: 8081 }];
  expect(await schemaProblem(sm)).toMatch(/port must be string/);
  expect(
    await schemaProblem({ apiVersion: 'example.com/v1', kind: 'Nope', metadata: { name: 'x' } }),
  ).toMatch(/no schema/);
});
