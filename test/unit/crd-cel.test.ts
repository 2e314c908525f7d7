// The CRDs' CEL validation rules (x-kubernetes-validations), evaluated with
// a CEL library (@marcbachmann/cel-js) the way the API server does: `self`
// is the field's value, `oldSelf` its value before an update (transition
// rules run only on updates where both exist). The rules are read from the
// generated CRDs, not copied, so the test checks what ships.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate } from '@marcbachmann/cel-js';
import { parse } from 'yaml';
import { haPairCrd, type JsonSchema, upgradeRequestCrd } from '../../src/sources/crd.js';

const root = join(import.meta.dirname, '..', '..');
const example = (name: string) => parse(readFileSync(join(root, 'examples', name), 'utf8'));

/** A deep copy in this realm (cel-js refuses objects from another realm, as structuredClone makes under jest). */
const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v));

interface Rule {
  readonly rule: string;
  readonly message: string;
}

/** The rules at a dotted path under the openAPIV3Schema (spec.nodes). */
function rulesAt(crd: JsonSchema, path: string): Rule[] {
  let node = crd.spec.versions[0].schema.openAPIV3Schema;
  for (const part of path.split('.')) node = node.properties[part];
  return node['x-kubernetes-validations'] ?? [];
}

/** Every rule's verdict on a value (and its old value, for transition rules). */
function failures(rules: Rule[], self: unknown, oldSelf?: unknown): string[] {
  return rules
    .filter((r) => oldSelf !== undefined || !/\boldSelf\b/.test(r.rule))
    .filter((r) => evaluate(r.rule, { self, oldSelf }) !== true)
    .map((r) => r.message);
}

describe('UpgradeRequest: spec.pairRef and spec.package cannot change once set', () => {
  const crd = upgradeRequestCrd();
  const spec = example('upgraderequest.yaml').spec;

  test.each(['spec.pairRef', 'spec.package'])('%s has a transition rule', (path) => {
    const rules = rulesAt(crd, path);
    expect(rules.map((r) => r.rule)).toEqual(['self == oldSelf']);
    expect(rules[0]!.message).toMatch(/cannot change once set/);
  });

  test('an unchanged pairRef and package pass (other fields may change)', () => {
    expect(failures(rulesAt(crd, 'spec.pairRef'), spec.pairRef, copy(spec.pairRef))).toEqual([]);
    expect(failures(rulesAt(crd, 'spec.package'), spec.package, copy(spec.package))).toEqual([]);
  });

  test('another pair is refused', () => {
    expect(failures(rulesAt(crd, 'spec.pairRef'), { name: 'other-pair' }, spec.pairRef)).toEqual([
      'spec.pairRef cannot change once set; create a new UpgradeRequest',
    ]);
  });

  test('another version, path or an added signature path is refused', () => {
    const rules = rulesAt(crd, 'spec.package');
    const changes = [
      { ...spec.package, version: '9.9.9' },
      { ...spec.package, path: '/var/lib/pairshift/packages/other.tar.gz' },
      { ...spec.package, signaturePath: '/var/lib/pairshift/packages/other.sig' },
    ];
    for (const changed of changes) {
      expect(failures(rules, changed, spec.package)).toEqual([
        'spec.package cannot change once set; create a new UpgradeRequest',
      ]);
    }
  });

  test('on create (no oldSelf) the transition rules do not apply', () => {
    expect(failures(rulesAt(crd, 'spec.package'), spec.package)).toEqual([]);
  });
});

describe('HAPair: node names unique', () => {
  const crd = haPairCrd();
  const nodes = example('hapair.yaml').spec.nodes as { name: string }[];
  const rules = rulesAt(crd, 'spec.nodes');

  test('the example pair passes', () => {
    expect(nodes.map((n) => n.name)).toHaveLength(2);
    expect(failures(rules, nodes)).toEqual([]);
  });

  test('two nodes with one name are refused with the message', () => {
    const twins = [nodes[0], { ...nodes[1], name: nodes[0]!.name }];
    expect(failures(rules, twins)).toEqual(['spec.nodes: the two nodes need different names']);
  });

  test('the list is also a map keyed by name (the API server refuses duplicate keys itself)', () => {
    const schema = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.nodes;
    expect(schema['x-kubernetes-list-type']).toBe('map');
    expect(schema['x-kubernetes-list-map-keys']).toEqual(['name']);
  });
});

describe('HAPair: notification receivers', () => {
  const crd = haPairCrd();
  const rules = rulesAt(crd, 'spec.notifications.receivers');

  test('url or urlFile, each alone, passes', () => {
    expect(
      failures(rules, [
        { name: 'a', url: 'https://hooks.example.com/x' },
        { name: 'b', urlFile: '/run/secrets/url' },
      ]),
    ).toEqual([]);
  });

  test('both, or neither, is refused with the message', () => {
    const message = 'spec.notifications.receivers: give exactly one of url and urlFile';
    expect(failures(rules, [{ name: 'a', url: 'https://x/y', urlFile: '/u' }])).toEqual([message]);
    expect(failures(rules, [{ name: 'a' }])).toEqual([message]);
  });

  test('the list is a map keyed by name', () => {
    const schema =
      crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.notifications
        .properties.receivers;
    expect(schema['x-kubernetes-list-map-keys']).toEqual(['name']);
  });
});
