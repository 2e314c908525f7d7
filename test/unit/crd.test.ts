// The zod → structural schema converter (pure), the committed CRDs against
// the generator, and the examples against both the CRD schema (ajv) and zod.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { z } from 'zod';
import { PHASES } from '../../src/core/phases.js';
import { parseUpgradeRequest } from '../../src/core/upgrade-request.js';
import { haPairSchema, parseHAPair } from '../../src/inventory/hapair.js';
import {
  CrdSchemaError,
  haPairCrd,
  type JsonSchema,
  renderCrdFiles,
  structuralSchema,
  upgradeRequestCrd,
  zodToStructural,
} from '../../src/sources/crd.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Walks a structural schema, calling visit(node, path) on every node. */
function walk(node: JsonSchema, path: string, visit: (n: JsonSchema, p: string) => void): void {
  visit(node, path);
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    walk(child as JsonSchema, `${path}.${name}`, visit);
  }
  if (node.items) walk(node.items, `${path}[]`, visit);
  if (typeof node.additionalProperties === 'object') {
    walk(node.additionalProperties, `${path}.*`, visit);
  }
}

/** Kubernetes' structural rules that a generated schema must obey. */
function structuralViolations(schema: JsonSchema): string[] {
  const problems: string[] = [];
  walk(schema, '$', (n, p) => {
    const typed = typeof n.type === 'string' || n['x-kubernetes-int-or-string'] === true;
    if (!typed) problems.push(`${p}: no type`);
    for (const k of ['$schema', '$ref', 'const', 'propertyNames', 'prefixItems', 'allOf']) {
      if (k in n) problems.push(`${p}: ${k}`);
    }
    if (n.properties && 'additionalProperties' in n) {
      problems.push(`${p}: additionalProperties next to properties`);
    }
    if (n['x-kubernetes-preserve-unknown-fields'] && p !== '$.status') {
      problems.push(`${p}: preserve-unknown-fields`);
    }
    for (const alt of n.anyOf ?? []) if ('type' in alt) problems.push(`${p}: typed anyOf branch`);
  });
  return problems;
}

/** The OpenAPI v3.0 dialect of a CRD → JSON Schema draft 7 for ajv. */
function forAjv(node: JsonSchema): JsonSchema {
  if (Array.isArray(node)) return node.map(forAjv) as unknown as JsonSchema;
  if (typeof node !== 'object' || node === null) return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node)) {
    if (k.startsWith('x-kubernetes-')) continue;
    if (k === 'nullable') continue;
    if (k === 'properties' || k === 'additionalProperties' || k === 'items') {
      out[k] =
        k === 'properties'
          ? Object.fromEntries(Object.entries(v as JsonSchema).map(([n, s]) => [n, forAjv(s)]))
          : forAjv(v);
    } else if (k === 'anyOf') out[k] = (v as JsonSchema[]).map(forAjv);
    else out[k] = v;
  }
  if (node.exclusiveMinimum === true) {
    out.exclusiveMinimum = node.minimum;
    delete out.minimum;
  }
  if (node.exclusiveMaximum === true) {
    out.exclusiveMaximum = node.maximum;
    delete out.maximum;
  }
  if (node.nullable && typeof node.type === 'string') out.type = [node.type, 'null'];
  return out;
}

function validatorFor(crd: JsonSchema) {
  const ajv = new Ajv({ allErrors: true, strict: true });
  ajv.addFormat('int64', true);
  // The formats the CRDs use, checked as the API server does (RFC 3339, dotted quad).
  ajv.addFormat(
    'date-time',
    /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/,
  );
  ajv.addFormat(
    'ipv4',
    /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/,
  );
  return ajv.compile(forAjv(crd.spec.versions[0].schema.openAPIV3Schema));
}

const readExample = (name: string) => readFileSync(join(root, 'examples', name), 'utf8');

describe('structuralSchema (JSON Schema → Kubernetes structural schema)', () => {
  test('const becomes a one-value enum with its type', () => {
    expect(structuralSchema({ type: 'string', const: 'x' })).toEqual({
      type: 'string',
      enum: ['x'],
    });
    expect(structuralSchema({ const: 3 })).toEqual({ type: 'integer', enum: [3] });
  });

  test('$schema and additionalProperties:false are dropped; a record keeps its value schema', () => {
    const s = structuralSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        a: { type: 'string' },
        m: {
          type: 'object',
          propertyNames: { type: 'string' },
          additionalProperties: { type: 'integer' },
        },
      },
      required: ['a'],
      additionalProperties: false,
    });
    expect(s).toEqual({
      type: 'object',
      properties: {
        a: { type: 'string' },
        m: { type: 'object', additionalProperties: { type: 'integer' } },
      },
      required: ['a'],
    });
  });

  test('exclusive bounds take the OpenAPI v3.0 boolean form; safe-integer bounds become int64', () => {
    expect(structuralSchema({ type: 'number', exclusiveMinimum: 0 })).toEqual({
      type: 'number',
      minimum: 0,
      exclusiveMinimum: true,
    });
    expect(
      structuralSchema({
        type: 'integer',
        minimum: -Number.MAX_SAFE_INTEGER,
        maximum: Number.MAX_SAFE_INTEGER,
      }),
    ).toEqual({ type: 'integer', format: 'int64' });
  });

  test('unions: literals → enum, nullable → nullable, int|string → int-or-string, objects → merged skeleton', () => {
    expect(zodToStructural(z.union([z.literal('a'), z.literal('b')]))).toEqual({
      type: 'string',
      enum: ['a', 'b'],
    });
    expect(zodToStructural(z.string().nullable())).toEqual({ type: 'string', nullable: true });
    expect(zodToStructural(z.union([z.number().int(), z.string()]))).toEqual({
      'x-kubernetes-int-or-string': true,
    });
    const merged = zodToStructural(
      z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('http'), url: z.string() }),
        z.object({ kind: z.literal('tcp'), port: z.number().int().min(1) }),
      ]),
    );
    expect(merged.type).toBe('object');
    expect(Object.keys(merged.properties)).toEqual(['kind', 'url', 'port']);
    expect(merged.properties.kind).toEqual({ type: 'string', enum: ['http', 'tcp'] });
    expect(merged.anyOf).toEqual([
      { required: ['kind', 'url'], properties: { kind: { enum: ['http'] } } },
      { required: ['kind', 'port'], properties: { kind: { enum: ['tcp'] } } },
    ]);
    expect(structuralViolations(merged)).toEqual([]);
  });

  test('what has no structural form is an error naming the path', () => {
    expect(() => zodToStructural(z.object({ a: z.object({ b: z.any() }) }))).toThrow(
      new CrdSchemaError('$.a.b: a node without a type (z.any/z.unknown?) is not structural'),
    );
    expect(() => zodToStructural(z.object({ t: z.tuple([z.string(), z.number()]) }))).toThrow(
      /\$\.t: tuples/,
    );
    expect(() => zodToStructural(z.union([z.string(), z.boolean()]))).toThrow(/no structural form/);
    expect(() => structuralSchema({ type: 'string', contentEncoding: 'base64' })).toThrow(
      '$: JSON Schema keyword "contentEncoding" is not supported',
    );
  });
});

describe('the CRDs', () => {
  test.each([
    ['UpgradeRequest', upgradeRequestCrd()],
    ['HAPair', haPairCrd()],
  ])('%s: structural, namespaced, status subresource, short name, category', (kind, crd) => {
    const v = crd.spec.versions[0];
    expect(crd.spec.group).toBe('pairshift.io');
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names.kind).toBe(kind);
    expect(crd.spec.names.categories).toEqual(['pairshift']);
    expect(v.name).toBe('v1alpha1');
    expect(v.subresources).toEqual({ status: {} });
    expect(structuralViolations(v.schema.openAPIV3Schema)).toEqual([]);
  });

  test('UpgradeRequest: printer columns, short name ur, phase enum from phases.ts', () => {
    const crd = upgradeRequestCrd();
    const v = crd.spec.versions[0];
    expect(crd.spec.names.shortNames).toEqual(['ur']);
    expect(v.additionalPrinterColumns.map((c: JsonSchema) => c.name)).toEqual([
      'Pair',
      'Phase',
      'Progress',
      'Version',
      'Ready',
      'Age',
      'Message',
    ]);
    // Ready and Message read the Ready condition; Message only with -o wide.
    const col = (name: string) =>
      v.additionalPrinterColumns.find((c: JsonSchema) => c.name === name);
    expect(col('Ready').jsonPath).toBe('.status.conditions[?(@.type=="Ready")].status');
    expect(col('Ready').priority).toBeUndefined();
    expect(col('Message').jsonPath).toBe('.status.conditions[?(@.type=="Ready")].message');
    expect(col('Message').priority).toBe(1);
    expect(v.schema.openAPIV3Schema.properties.status.properties.phase.enum).toEqual([...PHASES]);
    // Status conditions carry observedGeneration as an integer.
    expect(
      v.schema.openAPIV3Schema.properties.status.properties.conditions.items.properties
        .observedGeneration,
    ).toEqual({
      type: 'integer',
      format: 'int64',
      description: 'metadata.generation of the spec this verdict is about.',
    });
  });

  test('list types: conditions a map keyed by type, nodes a map keyed by name (keys required)', () => {
    const ur = upgradeRequestCrd().spec.versions[0].schema.openAPIV3Schema;
    const conditions = ur.properties.status.properties.conditions;
    expect(conditions['x-kubernetes-list-type']).toBe('map');
    expect(conditions['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(conditions.items.required).toContain('type');
    const nodes =
      haPairCrd().spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.nodes;
    expect(nodes['x-kubernetes-list-type']).toBe('map');
    expect(nodes['x-kubernetes-list-map-keys']).toEqual(['name']);
    expect(nodes.items.required).toContain('name');
  });

  test('formats: date-time on every time the status holds and on requestedAt; ipv4 on addresses', () => {
    const paths = (crd: JsonSchema, format: string) => {
      const out: string[] = [];
      walk(crd.spec.versions[0].schema.openAPIV3Schema, '', (n, p) => {
        if (n.format === format) out.push(p);
      });
      return out.sort();
    };
    expect(paths(upgradeRequestCrd(), 'date-time')).toEqual(
      [
        '.spec.cancel.requestedAt',
        '.spec.rollback.requestedAt',
        '.status.backups[].verifiedAt',
        '.status.completedSteps[].at',
        '.status.conditions[].lastTransitionTime',
        '.status.estimatedCompletionTime',
        '.status.finishedAt',
        '.status.startedAt',
        '.status.vipSwitch.at',
      ].sort(),
    );
    expect(paths(haPairCrd(), 'ipv4')).toEqual(['.spec.nodes[].address', '.spec.vip.address']);
  });

  test.each([
    ['UpgradeRequest', upgradeRequestCrd],
    ['HAPair', haPairCrd],
  ])('%s: every field under spec and status has a description (kubectl explain)', (_kind, make) => {
    const root = make().spec.versions[0].schema.openAPIV3Schema;
    const missing: string[] = [];
    let seen = 0;
    for (const top of ['spec', 'status']) {
      walk(root.properties[top], `.${top}`, (n, p) => {
        seen++;
        // An array's items and a map's values are explained by the field itself.
        if (p.endsWith('[]') || p.endsWith('.*')) return;
        if (typeof n.description !== 'string' || n.description.trim() === '') missing.push(p);
      });
    }
    expect(missing).toEqual([]);
    expect(seen).toBeGreaterThan(10); // the walk did reach the fields
  });

  test('UpgradeRequest status: only measured downtime; the step, problems, backups and VIP switch it writes', () => {
    const st = upgradeRequestCrd().spec.versions[0].schema.openAPIV3Schema.properties.status;
    // The operator measures HTTP on the VIP, not writes: no write figure in the status.
    expect(Object.keys(st.properties.downtime.properties).sort()).toEqual([
      'budgetMs',
      'httpBlindMs',
      'httpLongestMs',
      'httpTotalMs',
      'withinBudget',
    ]);
    expect(st.properties.currentStep.type).toBe('string');
    expect(st.properties.problems.type).toBe('array');
    expect(st.properties.problems.items).toEqual({ type: 'string' });
    // A backup is where it is and its checksums, never its content.
    expect(Object.keys(st.properties.backups.items.properties).sort()).toEqual([
      'kind',
      'md5',
      'node',
      'path',
      'sha256',
      'verifiedAt',
    ]);
    // A switch that did not finish has no duration.
    expect(st.properties.vipSwitch.required).toEqual(['from', 'to', 'result', 'attempt', 'at']);
  });

  test('HAPair: VIP and Age columns, short name hap, defaults kept from zod', () => {
    const crd = haPairCrd();
    expect(crd.spec.names.shortNames).toEqual(['hap']);
    expect(crd.spec.versions[0].additionalPrinterColumns.map((c: JsonSchema) => c.name)).toEqual([
      'VIP',
      'Age',
    ]);
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.ssh.properties.port.default).toBe(22);
    expect(spec.properties.nodes).toMatchObject({ minItems: 2, maxItems: 2 });
    expect(spec.properties.ssh.required).toEqual(['user', 'privateKeyPath']);
    expect(z.toJSONSchema(haPairSchema.shape.spec, { io: 'input' })).toBeDefined();
  });

  test('the committed crds/ files are exactly what `npm run crds` generates', () => {
    for (const [name, text] of Object.entries(renderCrdFiles())) {
      const committed = readFileSync(join(root, 'crds', name), 'utf8');
      if (committed !== text) {
        throw new Error(`crds/${name} differs from the generator: run \`npm run crds\``);
      }
    }
    // kustomization.yaml is hand-written (deploy/base takes the CRDs through it).
    const yamls = readdirSync(join(root, 'crds')).filter(
      (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
    );
    expect(yamls.sort()).toEqual(Object.keys(renderCrdFiles()).sort());
  });
});

describe('examples/ against the CRD schema (ajv) and zod', () => {
  const urValid = validatorFor(upgradeRequestCrd());
  const hapValid = validatorFor(haPairCrd());

  test.each(['upgraderequest.yaml', 'upgraderequest-cancel.yaml'])('%s is valid', (file) => {
    const doc = parse(readExample(file));
    expect(urValid(doc) ? [] : urValid.errors).toEqual([]);
    const parsed = parseUpgradeRequest(doc, file);
    expect(parsed.spec.pairRef.name).toBe('billing');
    if (file.includes('cancel')) expect(parsed.spec.cancel?.reason).toMatch(/change freeze/);
  });

  test('hapair.yaml is valid and the requests point at it', () => {
    const text = readExample('hapair.yaml');
    expect(hapValid(parse(text)) ? [] : hapValid.errors).toEqual([]);
    expect(parseHAPair(text, 'hapair.yaml').metadata.name).toBe('billing');
  });

  test('a malformed request is refused by both, naming the field', () => {
    const doc = parse(readExample('upgraderequest.yaml'));
    doc.spec.package.version = 'two';
    expect(urValid(doc)).toBe(false);
    expect(urValid.errors?.map((e) => e.instancePath)).toContain('/spec/package/version');
    expect(() => parseUpgradeRequest(doc, 'bad.yaml')).toThrow(
      'bad.yaml: spec.package.version: expected a version MAJOR.MINOR.PATCH',
    );
  });

  test('a malformed pair is refused by both, naming the field', () => {
    const doc = parse(readExample('hapair.yaml'));
    doc.spec.nodes.pop();
    doc.spec.keepalived.advertIntervalSeconds = 0;
    expect(hapValid(doc)).toBe(false);
    const paths = hapValid.errors?.map((e) => e.instancePath);
    expect(paths).toEqual(
      expect.arrayContaining(['/spec/nodes', '/spec/keepalived/advertIntervalSeconds']),
    );
    doc.spec.keepalived.advertIntervalSeconds = 1;
    expect(() => parseHAPair(JSON.stringify(doc), 'bad.yaml')).toThrow(
      'bad.yaml: spec.nodes: a pair has exactly two nodes',
    );
  });

  test('a missing required field is named', () => {
    const doc = parse(readExample('upgraderequest.yaml'));
    delete doc.spec.pairRef;
    expect(urValid(doc)).toBe(false);
    expect(urValid.errors?.[0]).toMatchObject({
      instancePath: '/spec',
      params: { missingProperty: 'pairRef' },
    });
  });
});
