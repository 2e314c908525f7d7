// The Role as deployed (deploy/base/rbac.yaml, rendered by kustomize in each
// overlay) grants exactly what the operator uses: every call the Kubernetes
// source and the lease elector make (a full scenario against the test API
// server) is allowed by the Role, and every verb in the Role is used.
import { parse } from 'yaml';
import { conditionsFor } from '../../src/core/conditions.js';
import { KubernetesSource } from '../../src/sources/kubernetes.js';
import { LeaseElector } from '../../src/sources/lease.js';
import type { RequestRecord } from '../support/kube-api-server.js';
import { find, kustomize } from '../support/kustomize.js';
import {
  type Cluster,
  exampleHAPairText,
  HAP,
  NS,
  startCluster,
  UR,
  upgradeRequest,
  waitFor,
} from './support.js';

/** "group resource verb" of one HTTP request, as the API server authorizes it. */
function attributes(r: RequestRecord): string {
  const url = new URL(r.path, 'http://x');
  const parts = url.pathname.split('/').filter(Boolean);
  const nsAt = parts.indexOf('namespaces');
  const group = parts[0] === 'api' ? '' : parts[1]!;
  const resource = parts[nsAt + 2]!;
  const name = parts[nsAt + 3];
  const sub = parts[nsAt + 4];
  const verb =
    r.method === 'GET'
      ? url.searchParams.get('watch') === 'true'
        ? 'watch'
        : name === undefined
          ? 'list'
          : 'get'
      : { POST: 'create', PATCH: 'patch', PUT: 'update', DELETE: 'delete' }[r.method]!;
  return `${group} ${sub ? `${resource}/${sub}` : resource} ${verb}`;
}

let cluster: Cluster;
afterEach(async () => cluster.close());

test('every request the operator makes is allowed by the Role, and every granted verb is used', async () => {
  cluster = await startCluster();
  cluster.server.put(HAP, parse(exampleHAPairText()));
  const elector = new LeaseElector({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    identity: 'operator-0',
    leaseDurationSeconds: 1,
    renewIntervalMs: 100,
    renewDeadlineMs: 500,
  });
  const source = new KubernetesSource({
    kubeConfig: cluster.kubeConfig,
    namespace: NS,
    isLeader$: elector.isLeader$,
  });
  const seen: string[] = [];
  const sub = source.changes$.subscribe((n) => seen.push(n));
  try {
    elector.start();
    await source.start();
    await waitFor('leading', () => elector.isLeader);
    await waitFor('a renewal', () =>
      cluster.server.requests.some((r) => r.method === 'PUT' && r.status === 200),
    );
    await source.createUpgradeRequest(upgradeRequest('u'));
    await waitFor('the watch event', () => seen.includes('u'));
    await source.getHAPair('billing');
    await source.addFinalizer('u');
    await source.patchSpec('u', { cancel: { reason: 'scenario' } });
    const phase = 'PREPARE';
    await source.updateStatus('u', {
      phase,
      progress: 1,
      completedSteps: [],
      conditions: conditionsFor({
        phase,
        generation: 2,
        previous: [],
        now: new Date().toISOString(),
      }),
    });
    await source.recordEvent('u', 'Normal', 'Scenario', 'one event');
    await source.listUpgradeRequests();
  } finally {
    sub.unsubscribe();
    await source.stop();
    await elector.stop({ release: false });
  }
  // The test server's own hook writes (put) are not requests; everything here is the operator.
  const used = new Set(cluster.server.requests.map(attributes));

  for (const overlay of ['deploy/overlays/single', 'deploy/overlays/ha']) {
    const docs = kustomize(overlay);
    const role = find(docs, 'Role');
    const granted = new Set<string>();
    for (const rule of role.rules) {
      for (const g of rule.apiGroups)
        for (const res of rule.resources)
          for (const v of rule.verbs) granted.add(`${g} ${res} ${v}`);
    }
    expect([...used].filter((u) => !granted.has(u))).toEqual([]);
    expect([...granted].filter((g) => !used.has(g))).toEqual([]);
    // The operator's rights stay in its namespace: no ClusterRole is bound to it.
    expect(docs.filter((d) => d.kind === 'ClusterRoleBinding')).toEqual([]);
    const binding = find(docs, 'RoleBinding');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: role.metadata.name,
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'pairshift-operator', namespace: role.metadata.namespace },
    ]);
    // The pod runs as that ServiceAccount.
    expect(find(docs, 'Deployment').spec.template.spec.serviceAccountName).toBe(
      'pairshift-operator',
    );
  }
  expect(UR).toContain(NS);
});
