import { parseAgentConfig } from '../../src/agent/node/config.js';
import { DATABASE_QUERY, parseDatabaseRow, psqlArgs } from '../../src/agent/node/database.js';
import {
  heartbeat,
  heartbeatWindowMs,
  parseKeepalivedJson,
  roleOf,
  type VrrpSnapshot,
} from '../../src/agent/node/keepalived.js';
import {
  agentConfigFor,
  type HAPairForAgent,
  renderAgentConfig,
  subnetOf,
} from '../../src/agent/render-config.js';
import type { HAPair } from '../../src/inventory/hapair.js';

// compile-time: every validated HAPair can be rendered (npm run typecheck)
const acceptsHAPair = (p: HAPair): HAPairForAgent => p;

const pair = {
  spec: {
    vip: { address: '198.18.7.100', prefixLength: 24 },
    nodes: [
      { name: 'a', address: '198.18.7.11' },
      { name: 'b', address: '198.18.7.12' },
    ],
    keepalived: { instance: 'VI_1', virtualRouterId: 57 },
    services: [{ name: 'java', port: 8080, healthPath: '/health', versionPath: '/version' }],
    database: {
      port: 5432,
      user: 'app',
      superuser: 'postgres',
      osUser: 'postgres',
      binDir: '/usr/lib/postgresql/15/bin',
      socketDir: '/run/postgresql',
    },
    rsync: { status: '/opt/pairshift-node/bin/sync-ctl status' },
  },
};

describe('agent config', () => {
  it('renders a node config from the HAPair that the agent accepts unchanged', () => {
    const cfg = agentConfigFor(pair, 'b', { root: '/opt/pairshift-node/agent' });
    expect(cfg).toMatchObject({
      node: 'b',
      listen: { host: '0.0.0.0', port: 8090 },
      allow: ['127.0.0.0/8', '::1/128', '198.18.7.0/24'],
      database: {
        psql: '/usr/lib/postgresql/15/bin/psql',
        host: '/run/postgresql',
        user: 'postgres',
        osUser: 'postgres',
      },
      keepalived: { instance: 'VI_1', virtualRouterId: 57, vip: '198.18.7.100', jsonSignal: 36 },
      rsyncStatusCommand: '/opt/pairshift-node/bin/sync-ctl status',
      pidFile: '/opt/pairshift-node/agent/agent.pid',
    });
    const text = renderAgentConfig(cfg);
    expect(text).not.toMatch(/pass(word)?"/i);
    expect(parseAgentConfig(text)).toEqual(JSON.parse(JSON.stringify(cfg)));
  });

  it('takes a validated HAPair as it is', () => {
    expect(typeof acceptsHAPair).toBe('function');
  });

  it('refuses an unknown node', () => {
    expect(() => agentConfigFor(pair, 'c', { root: '/x' })).toThrow(/no node "c".*a, b/);
  });

  it('computes subnets', () => {
    expect(subnetOf('198.18.7.100', 24)).toBe('198.18.7.0/24');
    expect(subnetOf('10.1.2.3', 15)).toBe('10.0.0.0/15');
    expect(subnetOf('10.1.2.3', 32)).toBe('10.1.2.3/32');
  });

  it.each([
    ['{', /not valid JSON/],
    ['[]', /JSON object/],
    ['{}', /node must be/],
    ['{"node":"a","allow":["10/8x"]}', /allow/],
    ['{"node":"a","services":[{"name":"x","port":70000}]}', /services\[0\]\.port/],
    ['{"node":"a","services":[{"name":"x","port":1},{"name":"x","port":2}]}', /appears twice/],
    ['{"node":"a","database":{"psql":"p"}}', /database\.host/],
    ['{"node":"a","checkTimeoutMs":1}', /checkTimeoutMs/],
  ])('refuses %s', (text, msg) => {
    expect(() => parseAgentConfig(text)).toThrow(msg);
  });
});

describe('database facts', () => {
  it('parses a primary and a standby row', () => {
    expect(parseDatabaseRow('f|0/3000148|||15.8\n')).toEqual({
      role: 'primary',
      currentLsn: '0/3000148',
      receiveLsn: null,
      replayLsn: null,
      serverVersion: '15.8',
    });
    expect(parseDatabaseRow('t||0/3000148|0/3000100|15.8')).toMatchObject({
      role: 'standby',
      currentLsn: null,
      receiveLsn: '0/3000148',
      replayLsn: '0/3000100',
    });
    expect(() => parseDatabaseRow('psql: oops')).toThrow(/unexpected answer/);
  });
  it('never prompts and ignores psqlrc', () => {
    const args = psqlArgs({
      psql: 'psql',
      host: '/run/postgresql',
      port: 5432,
      user: 'postgres',
      dbname: 'postgres',
    });
    expect(args).toEqual(expect.arrayContaining(['-X', '-w']));
    expect(args[args.length - 1]).toBe(DATABASE_QUERY);
  });
});

describe('keepalived dump', () => {
  // as keepalived 2.2.7 writes it (trimmed)
  const dump = (state: number, sent: number, rcvd: number) =>
    JSON.stringify([
      {
        data: { iname: 'VI_2', vrid: 9, state: 2, adver_int: 1 },
        stats: { advert_rcvd: 0, advert_sent: 0, become_master: 0 },
      },
      {
        data: {
          iname: 'VI_1',
          vrid: 57,
          state,
          adver_int: 0.1,
          vips: ['198.18.7.100/24 dev eth0 scope global set'],
        },
        stats: { advert_rcvd: rcvd, advert_sent: sent, become_master: 1 },
      },
    ]);

  it('reads our instance and maps the state', () => {
    expect(parseKeepalivedJson(dump(2, 17, 0), 'VI_1', 57)).toMatchObject({
      state: 'MASTER',
      advertSent: 17,
      advertIntervalSeconds: 0.1,
    });
    expect(parseKeepalivedJson(dump(1, 0, 5), 'VI_1').state).toBe('BACKUP');
    expect(parseKeepalivedJson(dump(3, 0, 5), 'VI_1').state).toBe('FAULT');
    expect(parseKeepalivedJson(dump(0, 0, 0), 'VI_1').state).toBe('INIT');
    expect(() => parseKeepalivedJson(dump(2, 1, 1), 'VI_3')).toThrow(/no vrrp_instance VI_3/);
    expect(() => parseKeepalivedJson(dump(2, 1, 1), 'VI_1', 58)).toThrow(
      /virtual_router_id 57, expected 58/,
    );
    expect(() => parseKeepalivedJson('{"a', 'VI_1')).toThrow(SyntaxError);
  });

  it('sees a heartbeat only when counters move', () => {
    const s = (sent: number, rcvd: number): VrrpSnapshot =>
      parseKeepalivedJson(dump(1, sent, rcvd), 'VI_1');
    expect(heartbeat(s(5, 10), s(5, 13), 300)).toEqual({
      flowing: true,
      sent: 0,
      received: 3,
      overMs: 300,
    });
    expect(heartbeat(s(5, 10), s(8, 10), 300).flowing).toBe(true);
    expect(heartbeat(s(5, 10), s(5, 10), 300).flowing).toBe(false);
  });

  it('waits long enough for two adverts, never long enough to miss the 2 s budget', () => {
    expect(heartbeatWindowMs(0.1)).toBe(250);
    expect(heartbeatWindowMs(0.3)).toBe(750);
    expect(heartbeatWindowMs(1)).toBe(1000);
    expect(heartbeatWindowMs(5)).toBe(1000);
  });

  it('maps roles', () => {
    expect(roleOf('INIT')).toBe('UNKNOWN');
    expect(roleOf(undefined)).toBe('UNKNOWN');
    expect(roleOf('FAULT')).toBe('FAULT');
  });
});
