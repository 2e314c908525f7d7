// Where ensureAgents finds the compiled agent, and where it puts it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_AGENT_ROOT } from '../../src/drivers/agent/install.js';
import type { HAPair } from '../../src/inventory/hapair.js';
import { agentRootFor, agentSourceDir, LAB_AGENT_ROOT } from '../../src/reconciler/agents.js';

let dir: string;
const saved = process.env.PAIRSHIFT_AGENT_DIR;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'agents-unit-'));
  delete process.env.PAIRSHIFT_AGENT_DIR;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  if (saved === undefined) delete process.env.PAIRSHIFT_AGENT_DIR;
  else process.env.PAIRSHIFT_AGENT_DIR = saved;
});

const agentIn = (name: string) => {
  const d = join(dir, name);
  mkdirSync(d);
  writeFileSync(join(d, 'main.js'), '// agent\n');
  return d;
};

describe('agentSourceDir', () => {
  it('takes the folder it is given, then $PAIRSHIFT_AGENT_DIR, each only if it holds main.js', () => {
    const given = agentIn('given');
    const env = agentIn('env');
    process.env.PAIRSHIFT_AGENT_DIR = env;
    expect(agentSourceDir(given)).toBe(given);
    expect(agentSourceDir(join(dir, 'empty'))).toBe(env);
    expect(agentSourceDir()).toBe(env);
  });

  it('run from src/ it falls back to the checkout dist/agent/node, or names every place it looked', () => {
    let found: string | undefined;
    let error: string | undefined;
    try {
      found = agentSourceDir(join(dir, 'nothing'));
    } catch (err) {
      error = (err as Error).message;
    }
    if (found !== undefined) expect(found).toMatch(/\/dist\/agent\/node\/$/);
    else
      expect(error).toMatch(
        /no compiled node agent found \(looked in .*nothing.*dist\/agent\/node.*run npm run build/,
      );
  });
});

describe('agentRootFor', () => {
  it("puts the agent in the lab's per-node folder on lab pairs, else /opt/pairshift-agent", () => {
    const pair = (labels?: Record<string, string>) =>
      ({ metadata: { name: 'p', ...(labels ? { labels } : {}) } }) as unknown as HAPair;
    expect(agentRootFor(pair({ 'pairshift.io/lab': 'x1' }))).toBe(LAB_AGENT_ROOT);
    expect(agentRootFor(pair())).toBe(DEFAULT_AGENT_ROOT);
  });
});
