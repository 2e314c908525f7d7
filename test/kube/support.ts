// Shared set-up for the Kubernetes tests: a test API server, a kubeconfig
// file pointing at it (http + bearer token, as client-node reads it), and
// small waiting helpers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../src/sources/kubernetes.js';
import { type KubeApiServer, startKubeApiServer } from '../support/kube-api-server.js';

export const NS = 'ops';
export const UR = `/apis/pairshift.io/v1alpha1/namespaces/${NS}/upgraderequests`;
export const HAP = `/apis/pairshift.io/v1alpha1/namespaces/${NS}/hapairs`;
export const EVENTS = `/api/v1/namespaces/${NS}/events`;
export const LEASES = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

export interface Cluster {
  readonly server: KubeApiServer;
  readonly kubeConfig: KubeConfig;
  readonly kubeconfigPath: string;
  close(): Promise<void>;
}

export async function startCluster(): Promise<Cluster> {
  const server = await startKubeApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'pairshift-kube-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  writeFileSync(kubeconfigPath, server.kubeconfig(NS), { mode: 0o600 });
  return {
    server,
    kubeConfig: loadKubeConfig({ kubeconfigPath }),
    kubeconfigPath,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function upgradeRequest(name: string, version = '2.0.0') {
  return {
    apiVersion: 'pairshift.io/v1alpha1',
    kind: 'UpgradeRequest',
    metadata: { name, namespace: NS },
    spec: {
      pairRef: { name: 'billing' },
      package: { path: `/var/lib/pairshift/packages/app-${version}.tar.gz`, version },
    },
  };
}

export function exampleHAPairText(): string {
  return readFileSync(
    join(import.meta.dirname ?? '.', '..', '..', 'examples', 'hapair.yaml'),
    'utf8',
  );
}

export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
