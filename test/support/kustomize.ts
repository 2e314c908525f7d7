// Renders deploy/overlays/* with `kubectl kustomize` (offline: kustomize is
// built into kubectl) and validates objects against the Kubernetes OpenAPI
// schemas shipped by the kubernetes-models packages, so no cluster and no
// network is needed. Shared by test/kube/kustomize.test.ts, rbac.test.ts and
// the deployment guide's command test.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const root = join(import.meta.dirname ?? '.', '..', '..');

/** A rendered object, loosely typed: the tests read what they assert on. */
// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML; the schemas check them.
export type KubeObject = Record<string, any>;

/** `kubectl kustomize DIR` (relative to the repository), parsed. */
export function kustomize(dir: string): KubeObject[] {
  let text: string;
  try {
    text = execFileSync('kubectl', ['kustomize', join(root, dir)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      // Not a skip: without kubectl the deploy/ folder is untested.
      throw new Error(
        'kubectl is not on PATH: it renders deploy/ (kubectl kustomize) in this test',
      );
    }
    throw new Error(`kubectl kustomize ${dir} failed: ${e.stderr ?? e.message}`);
  }
  return parseAllDocuments(text).map((d) => d.toJS() as KubeObject);
}

/** The one object of a kind (and name, when several could match). */
export function find(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const hits = objects.filter((o) => o.kind === kind && (!name || o.metadata?.name === name));
  if (hits.length !== 1)
    throw new Error(`expected one ${kind} ${name ?? ''}, found ${hits.length}`);
  return hits[0]!;
}

/** The module of kubernetes-models (or the prometheus-operator's) holding a kind's model. */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion === 'monitoring.coreos.com/v1') {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  }
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['v1', ''];
  return version ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/v1/${kind}`;
}

interface Model {
  validate(): void;
}

/**
 * Validates one object against its kind's OpenAPI schema; returns the
 * problem as text, or null. A kind no package knows is a problem too,
 * never a silent pass.
 */
export async function schemaProblem(o: KubeObject): Promise<string | null> {
  const where = `${o.kind}/${o.metadata?.name}`;
  let mod: Record<string, new (data: KubeObject) => Model>;
  try {
    mod = await import(modelModule(o.apiVersion, o.kind));
  } catch (err) {
    return `${where}: no schema for ${o.apiVersion} ${o.kind} (${(err as Error).message})`;
  }
  const Model = mod[o.kind];
  if (!Model) return `${where}: no schema for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o).validate();
    return null;
  } catch (err) {
    return `${where}: ${(err as Error).message}`;
  }
}

/**
 * Every object's problem, in order. One import at a time: jest's ESM loader
 * fails ("request for './model.js' is not in cache") when several imports
 * of the same shared module race.
 */
export async function schemaProblems(objects: KubeObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objects) {
    const p = await schemaProblem(o);
    if (p !== null) problems.push(p);
  }
  return problems;
}
