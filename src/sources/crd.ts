// CustomResourceDefinitions generated from the zod schemas, so the CRD can
// never drift from what the REST API and the standalone source validate.
// Two pure steps:
// - structuralSchema(): JSON Schema (zod's draft 2020-12 output) → a
//   Kubernetes structural schema (every node typed; no $schema, $ref,
//   propertyNames or additionalProperties:false next to properties; const →
//   enum; nullable unions → nullable: true; unions of objects merged into one
//   typed skeleton with the alternatives kept as value validations). A
//   keyword it does not know is an error naming the path, not a silent drop:
//   a new zod feature must be looked at, not lost.
// - haPairCrd() / upgradeRequestCrd(): the CRD objects; renderCrdFiles()
//   the YAML written by `npm run crds` and compared by a test.
// Descriptions and formats come from the zod schemas (.describe, .meta):
// they are about the data. What only the API server understands (list
// types, CEL validation rules) is added here, by path (KUBE_EXTENSIONS).
import { stringify } from 'yaml';
import { z } from 'zod';
import {
  API_GROUP,
  upgradeRequestSpecSchema,
  upgradeRequestStatusSchema,
} from '../core/upgrade-request.js';
import { haPairSchema } from '../inventory/hapair.js';

export const CRD_VERSION = 'v1alpha1';

// biome-ignore lint/suspicious/noExplicitAny: JSON Schema nodes are open-ended
export type JsonSchema = { [key: string]: any };

export class CrdSchemaError extends Error {
  override readonly name = 'CrdSchemaError';
}

/** Value validations Kubernetes accepts as they are (OpenAPI v3.0 subset). */
const PASS_THROUGH = new Set([
  'description',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'uniqueItems',
  'multipleOf',
  'format',
  'default',
  'enum',
  'minProperties',
  'maxProperties',
]);

/**
 * What only the API server understands, added to the converted schema at a
 * path ("spec.nodes"; a path that does not exist is an error, so a renamed
 * field cannot silently lose its rule). The CEL rules are evaluated in
 * test/unit/crd-cel.test.ts on valid and invalid objects and changes.
 */
export const KUBE_EXTENSIONS: Record<string, Record<string, JsonSchema>> = {
  UpgradeRequest: {
    // Immutable once set: a new pair or package is a new upgrade (a new
    // object); changing it under a running upgrade would leave the journal
    // about something else. Transition rules only run on updates.
    'spec.pairRef': {
      'x-kubernetes-validations': [
        {
          rule: 'self == oldSelf',
          message: 'spec.pairRef cannot change once set; create a new UpgradeRequest',
        },
      ],
    },
    'spec.package': {
      'x-kubernetes-validations': [
        {
          rule: 'self == oldSelf',
          message: 'spec.package cannot change once set; create a new UpgradeRequest',
        },
      ],
    },
    // One entry per condition type, merged by type on server-side apply.
    'status.conditions': {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
  },
  HAPair: {
    // list-type map already makes the API server refuse two nodes with one
    // name; the CEL rule says it in words (and holds for a client that
    // validates with the schema but knows no list types).
    'spec.nodes': {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [
        {
          rule: 'self.all(n, self.exists_one(m, m.name == n.name))',
          message: 'spec.nodes: the two nodes need different names',
        },
      ],
    },
    // The zod schema's refinements, which JSON Schema cannot carry.
    'spec.notifications.receivers': {
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [
        {
          rule: 'self.all(r, has(r.url) != has(r.urlFile))',
          message: 'spec.notifications.receivers: give exactly one of url and urlFile',
        },
      ],
    },
  },
};

/** Adds the extensions at their paths (a copy); throws on a path that is not there. */
export function withKubeExtensions(
  schema: JsonSchema,
  extensions: Record<string, JsonSchema>,
): JsonSchema {
  const out = structuredClone(schema);
  for (const [path, ext] of Object.entries(extensions)) {
    let node = out;
    for (const part of path.split('.')) {
      node = node.properties?.[part];
      if (node === undefined)
        throw new CrdSchemaError(`${path}: no such field for ${Object.keys(ext).join(', ')}`);
    }
    Object.assign(node, structuredClone(ext));
  }
  return out;
}

/** Keywords with no meaning for Kubernetes that carry no constraint here. */
const DROPPED = new Set(['$schema', 'title', 'examples', 'id', '$id']);

const SAFE_INT = Number.MAX_SAFE_INTEGER;

/**
 * Converts one JSON Schema node (zod's output) into a Kubernetes structural
 * schema node. Pure; throws CrdSchemaError naming the path of anything it
 * cannot express.
 */
export function structuralSchema(node: JsonSchema, path = '$'): JsonSchema {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    throw new CrdSchemaError(`${path}: expected a schema object`);
  }
  const union = node.anyOf ?? node.oneOf;
  if (union !== undefined) return convertUnion(node, union, path);
  if (node.allOf !== undefined) {
    throw new CrdSchemaError(`${path}: allOf (zod intersection) is not supported in a CRD schema`);
  }

  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROPPED.has(key)) continue;
    switch (key) {
      case 'type':
        if (Array.isArray(value)) {
          // ["string", "null"]: zod's spelling of a nullable scalar.
          const types = value.filter((t: string) => t !== 'null');
          if (types.length !== 1) {
            throw new CrdSchemaError(
              `${path}: type ${JSON.stringify(value)} has no structural form`,
            );
          }
          out.type = types[0];
          if (types.length < value.length) out.nullable = true;
        } else if (value === 'null') {
          throw new CrdSchemaError(`${path}: type null has no structural form`);
        } else out.type = value;
        break;
      case 'const':
        out.enum = [value];
        break;
      case 'properties': {
        const props: JsonSchema = {};
        for (const [name, child] of Object.entries(value as JsonSchema)) {
          props[name] = structuralSchema(child as JsonSchema, `${path}.${name}`);
        }
        out.properties = props;
        break;
      }
      case 'required':
        if ((value as string[]).length > 0) out.required = [...(value as string[])];
        break;
      case 'items':
        if (Array.isArray(value))
          throw new CrdSchemaError(`${path}: tuple items are not supported`);
        out.items = structuralSchema(value as JsonSchema, `${path}[]`);
        break;
      case 'prefixItems':
        throw new CrdSchemaError(`${path}: tuples (prefixItems) are not supported in a CRD schema`);
      case 'additionalProperties':
        // false: Kubernetes prunes unknown fields anyway, and false may not
        // sit next to properties. A schema: a map (z.record).
        if (value === false || value === true) break;
        out.additionalProperties = structuralSchema(value as JsonSchema, `${path}.*`);
        break;
      case 'propertyNames':
        // z.record(z.string(), …) says "keys are strings": always true in JSON.
        if (value?.type === 'string' && Object.keys(value).length === 1) break;
        throw new CrdSchemaError(`${path}: propertyNames constraints are not supported`);
      case 'exclusiveMinimum':
        // draft 2020-12 numeric form → OpenAPI v3.0 boolean form.
        out.minimum = value;
        out.exclusiveMinimum = true;
        break;
      case 'exclusiveMaximum':
        out.maximum = value;
        out.exclusiveMaximum = true;
        break;
      default:
        if (!PASS_THROUGH.has(key)) {
          throw new CrdSchemaError(`${path}: JSON Schema keyword "${key}" is not supported`);
        }
        out[key] = Array.isArray(value) ? [...value] : value;
    }
  }
  // zod spells "any safe integer" as ±MAX_SAFE_INTEGER bounds: say int64.
  if (out.type === 'integer' && out.minimum === -SAFE_INT && out.maximum === SAFE_INT) {
    delete out.minimum;
    delete out.maximum;
    out.format = 'int64';
  }
  if (out.type === undefined) {
    if (out.enum !== undefined && out.enum.length > 0) out.type = typeOfValue(out.enum[0], path);
    else if (out.properties !== undefined) out.type = 'object';
    else
      throw new CrdSchemaError(
        `${path}: a node without a type (z.any/z.unknown?) is not structural`,
      );
  }
  if (
    out.type === 'object' &&
    out.properties === undefined &&
    out.additionalProperties === undefined
  ) {
    // An object with no declared shape would be pruned to {}: say so.
    throw new CrdSchemaError(`${path}: an object with neither properties nor a value schema`);
  }
  if (out.type === 'array' && out.items === undefined) {
    throw new CrdSchemaError(`${path}: an array without items`);
  }
  return out;
}

function typeOfValue(v: unknown, path: string): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  throw new CrdSchemaError(`${path}: enum value ${JSON.stringify(v)} has no structural type`);
}

function convertUnion(node: JsonSchema, branches: JsonSchema[], path: string): JsonSchema {
  const { anyOf: _a, oneOf: _o, ...rest } = node;
  const nonNull = branches.filter((b) => b.type !== 'null');
  const nullable = nonNull.length < branches.length;
  const converted = nonNull.map((b, i) => structuralSchema({ ...rest, ...b }, `${path}|${i}`));
  let out: JsonSchema;
  if (converted.length === 1) {
    out = converted[0]!;
  } else if (converted.every((c) => isPlainEnum(c))) {
    // z.union of literals / enums of one type → one enum.
    const types = new Set(converted.map((c) => c.type));
    if (types.size !== 1) {
      throw new CrdSchemaError(`${path}: a union of values of different types is not structural`);
    }
    out = { type: converted[0]!.type, enum: converted.flatMap((c) => c.enum) };
  } else if (sameTypes(converted, ['integer', 'string'])) {
    out = { 'x-kubernetes-int-or-string': true };
  } else if (converted.every((c) => c.type === 'object' && c.properties !== undefined)) {
    out = mergeObjectBranches(converted, path);
  } else {
    throw new CrdSchemaError(
      `${path}: a union of ${converted.map((c) => c.type).join(', ')} has no structural form`,
    );
  }
  if (nullable) out.nullable = true;
  return out;
}

function isPlainEnum(c: JsonSchema): boolean {
  return Object.keys(c).every((k) => k === 'type' || k === 'enum') && c.enum !== undefined;
}

function sameTypes(converted: JsonSchema[], types: string[]): boolean {
  const seen = new Set(converted.map((c) => c.type));
  return seen.size === types.length && types.every((t) => seen.has(t));
}

/**
 * A union of objects (z.union / z.discriminatedUnion): the structural
 * skeleton is every property of every branch (a property in two branches
 * must have the same schema), and which properties each branch requires is
 * kept as an anyOf of value validations (no types inside, as the rules ask).
 */
function mergeObjectBranches(branches: JsonSchema[], path: string): JsonSchema {
  const properties: JsonSchema = {};
  for (const b of branches) {
    for (const [name, schema] of Object.entries(b.properties as JsonSchema)) {
      const prev = properties[name];
      if (prev === undefined) properties[name] = schema;
      else if (prev.type === schema.type && prev.enum && schema.enum) {
        properties[name] = { ...prev, enum: [...new Set([...prev.enum, ...schema.enum])] };
      } else if (JSON.stringify(prev) !== JSON.stringify(schema)) {
        throw new CrdSchemaError(
          `${path}.${name}: differs between union branches; no structural form`,
        );
      }
    }
  }
  const alternatives = branches.map((b) => {
    const alt: JsonSchema = {};
    if (b.required) alt.required = b.required;
    const props: JsonSchema = {};
    for (const [name, schema] of Object.entries(b.properties as JsonSchema)) {
      if (schema.enum) props[name] = { enum: schema.enum };
    }
    if (Object.keys(props).length > 0) alt.properties = props;
    return alt;
  });
  const out: JsonSchema = { type: 'object', properties };
  if (alternatives.some((a) => Object.keys(a).length > 0)) out.anyOf = alternatives;
  return out;
}

/** The JSON Schema of a zod schema as a user writes it (defaults optional). */
export function zodToStructural(schema: z.ZodType, path = '$'): JsonSchema {
  return structuralSchema(z.toJSONSchema(schema, { io: 'input' }) as JsonSchema, path);
}

/**
 * The CRD's top-level schema: apiVersion, kind and metadata are the API
 * server's (it only allows restrictions on metadata.name); spec and status
 * come from zod.
 */
function resourceSchema(
  description: string,
  spec: JsonSchema,
  status: JsonSchema | null,
): JsonSchema {
  const properties: JsonSchema = {
    apiVersion: {
      type: 'string',
      description: 'APIVersion defines the versioned schema of this representation of an object.',
    },
    kind: { type: 'string', description: 'Kind is the REST resource this object represents.' },
    metadata: { type: 'object' },
    spec,
  };
  if (status) properties.status = status;
  return { type: 'object', description, required: ['spec'], properties };
}

export interface CrdNames {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: string[];
}

function crd(
  names: CrdNames,
  schema: JsonSchema,
  columns: JsonSchema[],
  hasStatus: boolean,
): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      scope: 'Namespaced',
      names: {
        kind: names.kind,
        listKind: `${names.kind}List`,
        plural: names.plural,
        singular: names.singular,
        shortNames: names.shortNames,
        categories: ['pairshift'],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          ...(hasStatus ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: columns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

const AGE = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export const UPGRADE_REQUEST_NAMES: CrdNames = {
  kind: 'UpgradeRequest',
  plural: 'upgraderequests',
  singular: 'upgraderequest',
  shortNames: ['ur'],
};

export const HAPAIR_NAMES: CrdNames = {
  kind: 'HAPair',
  plural: 'hapairs',
  singular: 'hapair',
  shortNames: ['hap'],
};

export function upgradeRequestOpenApiSchema(): JsonSchema {
  const schema = resourceSchema(
    'UpgradeRequest: move one HAPair to a signed package, step by step, with zero downtime.',
    {
      ...zodToStructural(upgradeRequestSpecSchema, '$.spec'),
      description: 'What is asked: the pair, the package, how, and cancel or rollback requests.',
    },
    {
      ...zodToStructural(upgradeRequestStatusSchema, '$.status'),
      description: "The operator's view: phase, progress, steps, conditions, backups, downtime.",
    },
  );
  return withKubeExtensions(schema, KUBE_EXTENSIONS.UpgradeRequest!);
}

export function haPairOpenApiSchema(): JsonSchema {
  const spec = zodToStructural(haPairSchema.shape.spec, '$.spec');
  // The HAPair's observed state (versions, VIP holder, roles, lag) has no
  // zod schema yet; the status subresource is there so an observer can
  // write it without spec rights. This is the one place unknown fields are
  // kept, and it should become a zod schema when the observer lands.
  const status = {
    type: 'object',
    description: 'Observed state of the pair (not written yet; free-form until it has a schema).',
    'x-kubernetes-preserve-unknown-fields': true,
  };
  const schema = resourceSchema(
    'HAPair: the inventory of one high-availability pair of servers.',
    { ...spec, description: 'The two nodes and how to reach and run them.' },
    status,
  );
  return withKubeExtensions(schema, KUBE_EXTENSIONS.HAPair!);
}

export function upgradeRequestCrd(): JsonSchema {
  return crd(
    UPGRADE_REQUEST_NAMES,
    upgradeRequestOpenApiSchema(),
    [
      { name: 'Pair', type: 'string', jsonPath: '.spec.pairRef.name' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Progress', type: 'integer', jsonPath: '.status.progress' },
      { name: 'Version', type: 'string', jsonPath: '.spec.package.version' },
      {
        name: 'Ready',
        type: 'string',
        description: "The Ready condition's status: True only on COMPLETE.",
        jsonPath: '.status.conditions[?(@.type=="Ready")].status',
      },
      AGE,
      {
        // Wide only (-o wide): long. Ready's message is the status message,
        // which while halted carries the halt's text (Stalled's cause).
        name: 'Message',
        type: 'string',
        priority: 1,
        description: "What is happening or why it stopped (the Ready condition's message).",
        jsonPath: '.status.conditions[?(@.type=="Ready")].message',
      },
    ],
    true,
  );
}

export function haPairCrd(): JsonSchema {
  return crd(
    HAPAIR_NAMES,
    haPairOpenApiSchema(),
    [{ name: 'VIP', type: 'string', jsonPath: '.spec.vip.address' }, AGE],
    true,
  );
}

const HEADER =
  '# GENERATED by `npm run crds` from the zod schemas (src/sources/crd.ts).\n' +
  '# Do not edit: change the zod schema and regenerate; a test compares.\n';

/** File name (under crds/) → YAML text. */
export function renderCrdFiles(): Record<string, string> {
  return {
    'hapair.yaml': HEADER + stringify(haPairCrd(), { lineWidth: 0 }),
    'upgraderequest.yaml': HEADER + stringify(upgradeRequestCrd(), { lineWidth: 0 }),
  };
}
