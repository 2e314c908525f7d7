// GitOps health as files (deploy/gitops/): Argo CD's health.lua and resource
// actions run with Lua 5.1 on every case of their health_test.yaml and
// action_test.yaml, and Flux's healthCheckExprs evaluated with a CEL library,
// both against UpgradeRequests captured from real lab runs (a running, a
// completed, a failed and a halted upgrade; test/lab/status-capture.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate } from '@marcbachmann/cel-js';
import { parse } from 'yaml';
import { upgradeRequestSchema } from '../../src/core/upgrade-request.js';
import { requireLua, runLua } from '../support/lua.js';

const root = join(import.meta.dirname, '..', '..');
const argo = join(root, 'deploy', 'gitops', 'argocd', 'pairshift.io', 'UpgradeRequest');
const read = (path: string) => readFileSync(path, 'utf8');
// JSON round trip: plain objects of this realm (cel-js refuses others).
const load = (path: string) => JSON.parse(JSON.stringify(parse(read(path))));

/** Every empty array or object as null, so the two spellings compare equal. */
function emptiesAlike(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? null : v.map(emptiesAlike);
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v);
    return entries.length === 0
      ? null
      : Object.fromEntries(entries.map(([k, x]) => [k, emptiesAlike(x)]));
  }
  return v;
}

type ArgoStatus = 'Healthy' | 'Progressing' | 'Degraded' | 'Suspended' | 'Missing' | 'Unknown';
type FluxStatus = 'InProgress' | 'Failed' | 'Current';

/** What each fixture must read as, in both tools. */
const VERDICTS: Record<string, { argo: ArgoStatus; flux: FluxStatus | null; lab: boolean }> = {
  'v2-running.yaml': { argo: 'Progressing', flux: 'InProgress', lab: true },
  'v2-final.yaml': { argo: 'Healthy', flux: 'Current', lab: true },
  'broken-final.yaml': { argo: 'Degraded', flux: 'Failed', lab: true },
  'split-brain-halted.yaml': { argo: 'Degraded', flux: 'Failed', lab: true },
  'awaiting-approval.yaml': { argo: 'Suspended', flux: 'InProgress', lab: false },
  'cancelled.yaml': { argo: 'Suspended', flux: 'Current', lab: false },
  'stale-generation.yaml': { argo: 'Progressing', flux: 'InProgress', lab: false },
  // No status at all: Flux's CEL cannot read status.conditions of an object
  // without a status (an evaluation error, which Flux reports as such); the
  // operator writes a status on its first reconcile, so not checked here.
  'no-status.yaml': { argo: 'Progressing', flux: null, lab: false },
};

beforeAll(() => requireLua());

describe('the fixtures', () => {
  test.each(Object.entries(VERDICTS).filter(([, v]) => v.lab))(
    '%s was captured from a real lab run and is a valid UpgradeRequest',
    (file) => {
      const text = read(join(argo, 'testdata', file));
      expect(text).toMatch(/^# Captured from a real lab run on \d{4}-\d\d-\d\d: /);
      expect(upgradeRequestSchema.safeParse(parse(text)).success).toBe(true);
    },
  );

  test('they are what their names say: running, completed, failed, halted', () => {
    const phase = (f: string) => load(join(argo, 'testdata', f)).status.phase;
    const stalled = load(join(argo, 'testdata', 'split-brain-halted.yaml')).status.conditions.find(
      (c: { type: string }) => c.type === 'Stalled',
    );
    expect(phase('v2-running.yaml')).toBe('UPGRADE_BACKUP');
    expect(phase('v2-final.yaml')).toBe('COMPLETE');
    expect(phase('broken-final.yaml')).toBe('FAILED');
    // the failed upgrade is a rolled-back one (a node changed, then put back),
    // not one that failed before touching anything
    const broken = load(join(argo, 'testdata', 'broken-final.yaml')).status;
    expect(broken.conditions.find((c: { type: string }) => c.type === 'RolledBack')).toMatchObject({
      status: 'True',
    });
    const steps = broken.completedSteps.map((s: { step: string }) => s.step);
    expect(steps.some((s: string) => s.startsWith('UPGRADE_BACKUP/'))).toBe(true);
    expect(steps.some((s: string) => s.startsWith('ROLLBACK/'))).toBe(true);
    expect(stalled).toMatchObject({ status: 'True', reason: 'SplitBrain' });
  });
});

describe('Argo CD: health.lua', () => {
  const script = read(join(argo, 'health.lua'));
  const cases = load(join(argo, 'health_test.yaml')).tests as {
    healthStatus: { status: string; message: string };
    inputPath: string;
  }[];

  test('health_test.yaml covers every fixture', () => {
    expect(cases.map((c) => c.inputPath.replace('testdata/', '')).sort()).toEqual(
      Object.keys(VERDICTS).sort(),
    );
  });

  test.each(cases.map((c) => [c.inputPath, c] as const))('%s', (_path, c) => {
    const got = runLua(script, load(join(argo, c.inputPath)));
    expect(got).toEqual(c.healthStatus);
    expect(c.healthStatus.status).toBe(VERDICTS[c.inputPath.replace('testdata/', '')]!.argo);
  });
});

describe('Argo CD: resource actions', () => {
  const dir = join(argo, 'actions');
  const tests = load(join(dir, 'action_test.yaml')) as {
    discoveryTests: { inputPath: string; result: { name: string; disabled: boolean }[] }[];
    actionTests: { action: string; inputPath: string; expectedOutputPath: string }[];
  };
  const discovery = read(join(dir, 'discovery.lua'));

  test.each(tests.discoveryTests.map((t) => [t.inputPath, t] as const))(
    'discovery on %s',
    (_p, t) => {
      const got = runLua(discovery, load(join(dir, t.inputPath))) as Record<
        string,
        { disabled: boolean }
      >;
      const asList = Object.entries(got)
        .map(([name, a]) => ({ name, disabled: a.disabled }))
        .sort((a, b) => a.name.localeCompare(b.name));
      expect(asList).toEqual(t.result);
    },
  );

  test.each(tests.actionTests.map((t) => [t.action, t] as const))('%s', (_a, t) => {
    const script = read(join(dir, t.action, 'action.lua'));
    const input = load(join(dir, t.inputPath));
    const got = runLua(script, input) as Record<string, unknown>;
    // An empty Lua table has no JSON type (gopher-lua's neither): [] and {} compare equal.
    expect(emptiesAlike(got)).toEqual(emptiesAlike(load(join(dir, t.expectedOutputPath))));
    // What it asks for is a spec the operator accepts.
    expect(upgradeRequestSchema.safeParse(load(join(dir, t.expectedOutputPath))).success).toBe(
      true,
    );
    expect(got).not.toEqual(input);
  });
});

describe('Flux: healthCheckExprs', () => {
  const kustomization = load(join(root, 'deploy', 'gitops', 'flux', 'kustomization-health.yaml'));
  const exprs = kustomization.spec.healthCheckExprs.find(
    (e: { kind: string }) => e.kind === 'UpgradeRequest',
  ) as { apiVersion: string; inProgress: string; failed: string; current: string };

  /** Flux's order: inProgress, failed, current; none true: still in progress. */
  function fluxVerdict(obj: Record<string, unknown>): FluxStatus {
    const vars = { metadata: obj.metadata, spec: obj.spec, status: obj.status };
    if (evaluate(exprs.inProgress, vars) === true) return 'InProgress';
    if (evaluate(exprs.failed, vars) === true) return 'Failed';
    if (evaluate(exprs.current, vars) === true) return 'Current';
    return 'InProgress';
  }

  test('for pairshift.io/v1alpha1 UpgradeRequest, all three expressions', () => {
    expect(exprs.apiVersion).toBe('pairshift.io/v1alpha1');
    expect(kustomization.spec.wait).toBe(true);
    for (const k of ['inProgress', 'failed', 'current'] as const) expect(exprs[k]).toMatch(/\S/);
  });

  test.each(Object.entries(VERDICTS).filter(([, v]) => v.flux !== null))('%s', (file, v) => {
    expect(fluxVerdict(load(join(argo, 'testdata', file)))).toBe(v.flux);
  });
});
