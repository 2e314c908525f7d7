// The lab's pure parts: addressing plan, rendered files, inventory shape,
// status parsing. Fast; the real lab is exercised in lab.test.ts.
import { parse } from 'yaml';
import { buildInventory, inventoryYaml } from '../../src/lab/inventory.js';
import { labDirs, NODE_MOUNTS, NODE_PATHS } from '../../src/lab/layout.js';
import { chooseSubnetIndex, planLab, SUBNET_COUNT, validateLabName } from '../../src/lab/plan.js';
import { checkPrerequisites } from '../../src/lab/prereq.js';
import { keepalivedConf, pgpass, serviceDefs, syncConf } from '../../src/lab/render.js';
import { parseNodeStatus, problems } from '../../src/lab/status.js';

describe('lab plan', () => {
  it('keeps every address inside 198.18.0.0/15 and gives each name a stable /24', () => {
    for (const name of ['lab', 't1', 'm', 'x-y', 'abcdefghijk']) {
      const idx = chooseSubnetIndex(name, new Set());
      expect(chooseSubnetIndex(name, new Set())).toBe(idx);
      const plan = planLab(name, idx);
      for (const addr of [plan.vip, plan.clientAddress, plan.nodeAddress.a, plan.nodeAddress.b]) {
        expect(addr).toMatch(/^198\.1[89]\.\d{1,3}\.\d{1,3}$/);
        expect(addr.startsWith(`${plan.prefix}.`)).toBe(true);
      }
      expect(plan.vrid).toBeGreaterThanOrEqual(1);
      expect(plan.vrid).toBeLessThanOrEqual(255);
      expect(plan.uplinkIf.length).toBeLessThanOrEqual(15);
    }
    expect(planLab('z', SUBNET_COUNT - 1).prefix).toBe('198.19.255');
    expect(planLab('z', 0).prefix).toBe('198.18.0');
  });

  it('moves to the next free /24 when the preferred one is taken', () => {
    const first = chooseSubnetIndex('t1', new Set());
    const second = chooseSubnetIndex('t1', new Set([first]));
    expect(second).toBe((first + 1) % SUBNET_COUNT);
    const all = new Set(Array.from({ length: SUBNET_COUNT }, (_, i) => i));
    expect(() => chooseSubnetIndex('t1', all)).toThrow(/no free \/24/);
  });

  it('rejects names that cannot become netns and interface names', () => {
    for (const bad of ['', 'A', '1lab', 'lab_1', 'abcdefghijkl', 'lab-', 'la b', '../x']) {
      expect(() => validateLabName(bad)).toThrow(/invalid lab name/);
    }
    expect(validateLabName('t1')).toBe('t1');
  });
});

describe('lab files', () => {
  const plan = planLab('t1', 42);

  it('gives A the higher keepalived priority, a VRRPv3 short advert and the fault file', () => {
    const a = keepalivedConf(plan, 'a');
    const b = keepalivedConf(plan, 'b');
    const prio = (c: string) => Number(/priority (\d+)/.exec(c)?.[1]);
    expect(prio(a)).toBeGreaterThan(prio(b));
    expect(a).toContain('vrrp_version 3');
    expect(a).toMatch(/advert_int 0\.\d+/);
    expect(a).toContain(`virtual_router_id ${plan.vrid}`);
    expect(a).toContain(`${plan.vip}/24 dev eth0`);
    expect(a).toContain(NODE_PATHS.keepalivedFaultFile);
  });

  it("points each node's sync job at the other node", () => {
    expect(syncConf(plan, 'a')).toContain(`PEER=${plan.nodeAddress.b}`);
    expect(syncConf(plan, 'b')).toContain(`PEER=${plan.nodeAddress.a}`);
    expect(syncConf(plan, 'a')).toContain(`VIP=${plan.vip}`);
  });

  it('execs each service so the pid in the pid file is the service itself', () => {
    for (const line of Object.values(serviceDefs({ java: 'java -jar x', python: 'python3 y' }))) {
      expect(line.startsWith('exec ')).toBe(true);
    }
  });

  it('maps node paths to per-node host folders', () => {
    const dirs = labDirs('t1', '/r');
    expect(dirs.node('a').hostPath('/etc/app/root.key')).toBe('/r/t1/nodes/a/etc-app/root.key');
    expect(dirs.node('b').hostPath('/var/lib/app/pgdata')).toBe('/r/t1/nodes/b/var-lib-app/pgdata');
    expect(() => dirs.node('a').hostPath('/usr/bin/x')).toThrow(/not inside a node mount/);
    const targets = NODE_MOUNTS.map((m) => m.target);
    for (const p of [
      NODE_PATHS.appDir,
      NODE_PATHS.configDir,
      NODE_PATHS.dbRoot,
      NODE_PATHS.backupDir,
    ]) {
      expect(targets).toContain(p);
    }
  });
});

describe('lab inventory', () => {
  const plan = planLab('t1', 42);
  const key = (n: string) => ({
    type: 'ssh-ed25519',
    fingerprint: `SHA256:${n}`,
    publicKey: `ssh-ed25519 AAAA${n}`,
  });
  const secrets = { postgres: 'pw-super-1', app: 'pw-app-2', replicator: 'pw-repl-3' };
  const yamlText = inventoryYaml(
    buildInventory({
      plan,
      hostKeys: { a: key('aaa'), b: key('bbb') },
      privateKeyPath: '/k/id',
      knownHostsPath: '/k/known',
      pgpassPath: '/k/pgpass',
      pgBinDir: '/usr/lib/postgresql/15/bin',
      version: '1.0.0',
    }),
  );

  it('is a HAPair manifest with addresses, pinned host keys and commands', () => {
    const doc = parse(yamlText);
    expect(doc.apiVersion).toBe('pairshift.io/v1alpha1');
    expect(doc.kind).toBe('HAPair');
    expect(doc.spec.vip.address).toBe(plan.vip);
    expect(doc.spec.nodes.map((n: { address: string }) => n.address)).toEqual([
      plan.nodeAddress.a,
      plan.nodeAddress.b,
    ]);
    expect(doc.spec.nodes[0].ssh.hostKey.fingerprint).toBe('SHA256:aaa');
    expect(doc.spec.ssh.privateKeyPath).toBe('/k/id');
    expect(doc.spec.services.map((s: { name: string }) => s.name)).toEqual(['java', 'python']);
    expect(doc.spec.rsync.pause).toMatch(/sync-ctl pause$/);
    expect(doc.spec.paths.rootKey).toBe('/etc/app/root.key');
    expect(doc.spec.database.dataDir).toBe(NODE_PATHS.dataDir);
  });

  it('holds no password (they are in the pgpass file it names)', () => {
    for (const pw of Object.values(secrets)) expect(yamlText).not.toContain(pw);
    expect(pgpass(plan, secrets)).toContain(secrets.replicator);
  });
});

describe('lab status', () => {
  const healthyNode = (db: string, vip: string) =>
    parseNodeStatus(
      [
        'svc.sshd=running',
        'svc.keepalived=running',
        'svc.java=running',
        'svc.python=running',
        'svc.config-sync=running',
        `vip=${vip}`,
        `db=${db}`,
        ...(db === 'primary'
          ? ['replica=t1-b streaming 00:00:00.0002']
          : ['walreceiver=streaming']),
        'sync={"job":"config-sync","paused":false}',
      ].join('\n'),
    );

  it('parses node-status output', () => {
    const s = healthyNode('primary', 'held');
    expect(s.services?.java).toBe('running');
    expect(s.vip).toBe(true);
    expect(s.database).toBe('primary');
    expect(s.replicas).toEqual(['t1-b streaming 00:00:00.0002']);
    expect((s.sync as { paused: boolean }).paused).toBe(false);
  });

  it('names what is wrong', () => {
    const node = (id: 'a' | 'b', db: string, vip: string, java = 200) => ({
      node: id,
      address: 'x',
      reachable: true,
      replicas: [],
      services: {},
      vip: false,
      database: 'down' as const,
      ...healthyNode(db, vip),
      http: { javaHealth: java, pythonHealth: 200 },
    });
    const status = {
      name: 't1',
      exists: true,
      vipHolder: 'a' as const,
      netns: { 't1-a': true },
      nodes: [node('a', 'primary', 'held'), node('b', 'standby', 'none')],
    };
    expect(problems(status)).toEqual([]);
    const broken = { ...status, nodes: [node('a', 'primary', 'held', 503), status.nodes[1]!] };
    expect(problems(broken)).toEqual(['java /health on a: 503']);
    expect(problems({ ...status, vipHolder: null })).toContain('nobody holds the VIP');
  });
});

describe('lab prerequisites', () => {
  const everything = (path: string) => path !== '/nonexistent';
  const without = (name: string) => (path: string) => !path.endsWith(`/${name}`);

  it('passes on a machine that has everything, as root', () => {
    expect(() => checkPrerequisites(everything, 0)).not.toThrow();
  });

  it('says in one line what to run for each missing piece', () => {
    expect(() => checkPrerequisites(everything, 1000)).toThrow(/^lab needs root/);
    expect(() => checkPrerequisites(without('keepalived'), 0)).toThrow(
      'lab needs keepalived: apt-get install -y keepalived',
    );
    expect(() => checkPrerequisites(without('sshd'), 0)).toThrow(
      'lab needs sshd: apt-get install -y openssh-server',
    );
    expect(() => checkPrerequisites(without('rsync'), 0)).toThrow(
      'lab needs rsync: apt-get install -y rsync',
    );
    expect(() => checkPrerequisites(without('postgresql.jar'), 0)).toThrow(
      /libpostgresql-jdbc-java/,
    );
  });
});
