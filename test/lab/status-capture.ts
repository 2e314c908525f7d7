// The capture switch for status fixtures (issue 13, GitOps health): with
// PAIRSHIFT_CAPTURE_STATUS=DIR a lab test writes the UpgradeRequest as the
// source publishes it (spec, metadata.generation, the status the reconciler
// wrote) to DIR/<label>.yaml at the moments it names (running, completed,
// failed, halted). The Argo CD and Flux health tests
// (test/unit/gitops-health.test.ts) read those files, so the verdicts are
// checked against what a real upgrade published, not a hand-written status.
// While capturing, the lab gets a "cr" prefix, so a capture run never
// collides with the same test run by someone else on its usual lab name.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { UpgradeRequest } from '../../src/core/upgrade-request.js';

const DIR = process.env.PAIRSHIFT_CAPTURE_STATUS;

export const capturing = DIR !== undefined && DIR !== '';

/** The lab name to use: the test's own, or "cr"+it while capturing. */
export function captureLabName(name: string): string {
  return capturing ? `cr${name}` : name;
}

/** Writes the object to DIR/<label>.yaml when capturing; a no-op otherwise. */
export function captureObject(
  label: string,
  obj: UpgradeRequest | null | undefined,
  how: string,
): void {
  if (!capturing || !obj) return;
  mkdirSync(DIR!, { recursive: true });
  const header =
    `# Captured from a real lab run on ${new Date().toISOString().slice(0, 10)}: ${how}.\n` +
    `# Made with PAIRSHIFT_CAPTURE_STATUS=<dir> (test/lab/status-capture.ts); do not edit by hand.\n`;
  writeFileSync(join(DIR!, `${label}.yaml`), header + stringify(obj, { lineWidth: 0 }));
  console.log(`captured ${label} (${obj.status?.phase ?? 'no status'}) into ${DIR}`);
}
