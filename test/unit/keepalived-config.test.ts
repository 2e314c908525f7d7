import fc from 'fast-check';
import {
  KeepalivedConfigError,
  readInstance,
  setPriority,
} from '../../src/drivers/keepalived/config.js';

const CONF = `# keepalived of pairshift lab t1, node a
global_defs {
  router_id t1-a
  vrrp_version 3
}

# Non-zero content -> FAULT
track_file fault {
  file /etc/keepalived/fault
  weight 0
}

vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150   # the master at bring-up
  advert_int 0.1
  track_file {
    fault
  }
  virtual_ipaddress {
    198.18.0.100/24 dev eth0
  }
}

vrrp_instance VI_2 {
  priority 7
  nopreempt
}
`;

test('reads an instance', () => {
  expect(readInstance(CONF, 'VI_1')).toEqual({
    name: 'VI_1',
    state: 'BACKUP',
    interface: 'eth0',
    virtualRouterId: 51,
    priority: 150,
    advertInt: 0.1,
    nopreempt: false,
    virtualIps: ['198.18.0.100/24'],
  });
  expect(readInstance(CONF, 'VI_2')).toMatchObject({
    priority: 7,
    nopreempt: true,
    virtualIps: [],
  });
});

test('changing the priority changes only that number; comments and other instances stay', () => {
  const out = setPriority(CONF, 'VI_1', 90);
  expect(out).toBe(CONF.replace('priority 150   # the master', 'priority 90   # the master'));
  expect(readInstance(out, 'VI_2').priority).toBe(7);
});

test('setting the priority it already has returns the same text (write-if-changed)', () => {
  expect(setPriority(CONF, 'VI_1', 150)).toBe(CONF);
});

test('an instance without a priority line gets one', () => {
  const conf = 'vrrp_instance X {\n  state BACKUP\n}\n';
  expect(readInstance(conf, 'X').priority).toBe(100);
  const out = setPriority(conf, 'X', 42);
  expect(readInstance(out, 'X').priority).toBe(42);
  expect(readInstance(out, 'X').state).toBe('BACKUP');
});

test('clear errors', () => {
  expect(() => readInstance(CONF, 'VI_9')).toThrow(
    new KeepalivedConfigError('no vrrp_instance VI_9 in the keepalived configuration'),
  );
  expect(() => setPriority(CONF, 'VI_1', 0)).toThrow(
    'priority must be a whole number from 1 to 255',
  );
  expect(() => setPriority(CONF, 'VI_1', 256)).toThrow(
    'priority must be a whole number from 1 to 255',
  );
  expect(() => readInstance('vrrp_instance Z {\n priority high\n}\n', 'Z')).toThrow(
    'Z: priority "high" is not a number',
  );
});

test('property: set then read gives the priority back, and nothing else changes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 255 }), fc.constantFrom('VI_1', 'VI_2'), (p, name) => {
      const out = setPriority(CONF, name, p);
      expect(readInstance(out, name).priority).toBe(p);
      const other = name === 'VI_1' ? 'VI_2' : 'VI_1';
      expect(readInstance(out, other)).toEqual(readInstance(CONF, other));
      const { priority: _a, ...restOut } = readInstance(out, name);
      const { priority: _b, ...restIn } = readInstance(CONF, name);
      expect(restOut).toEqual(restIn);
      expect(setPriority(out, name, p)).toBe(out);
    }),
  );
});
