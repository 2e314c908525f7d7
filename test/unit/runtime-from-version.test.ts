// An operator restarted mid-upgrade (one node already on the new version)
// must keep the version the upgrade started from instead of asking the
// nodes, which no longer agree: found when the SIGKILL lab test restarted the
// operator after the backup node was upgraded.
import { fromVersionOf } from '../../src/reconciler/runtime.js';

const spec = {
  pairRef: { name: 'p' },
  package: { path: '/pkg/app-2.0.0.tar.gz', version: '2.0.0' },
};
const mixed = async (): Promise<string> => {
  throw new Error('the nodes do not agree on the version they run (a: 1.0.0, b: 2.0.0)');
};

describe('fromVersionOf', () => {
  it('prefers the request, then the published status, and reads the nodes only for a new upgrade', async () => {
    expect(await fromVersionOf({ spec: { ...spec, fromVersion: '1.2.3' } }, mixed)).toBe('1.2.3');
    const status = {
      phase: 'UPGRADE_BACKUP' as const,
      progress: 30,
      completedSteps: [],
      conditions: [],
      fromVersion: '1.0.0',
    };
    expect(await fromVersionOf({ spec, status }, mixed)).toBe('1.0.0');
    expect(await fromVersionOf({ spec }, async () => '1.0.0')).toBe('1.0.0');
    await expect(fromVersionOf({ spec }, mixed)).rejects.toThrow(/do not agree/);
  });
});
