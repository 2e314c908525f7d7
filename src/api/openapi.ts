// The OpenAPI 3.1 document, generated from the zod schemas that validate
// requests and shape responses (schemas.ts, problems.ts), so it says what
// the server does. OpenAPI 3.1 uses JSON Schema 2020-12 as is.
import { z } from 'zod';
import { PROBLEM_MEDIA_TYPE } from './problems.js';
import { apiRegistry } from './registry.js';
import { historyQuerySchema, logsQuerySchema, UPGRADE_ID_PATTERN } from './schemas.js';

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
const problem = (description: string) => ({
  description,
  content: { [PROBLEM_MEDIA_TYPE]: { schema: ref('Problem') } },
});

/** Problem responses every protected endpoint may give. */
const COMMON = {
  '401': problem('No bearer token, or one that is not valid (WWW-Authenticate says which)'),
  '403': problem('The client address is not on the allowlist, or the token may only read'),
  '405': problem('Another method is allowed on this path (see Allow)'),
  '429': problem('Rate limit exceeded (see Retry-After)'),
  '500': problem('Internal error; details are in the server log only'),
};
const BODY_ERRORS = {
  '400': problem('Malformed JSON or a request that does not validate'),
  '413': problem('The body is larger than the limit'),
  '415': problem('The body is not application/json'),
};

const idParam = {
  name: 'upgrade_id',
  in: 'path',
  required: true,
  schema: { type: 'string', maxLength: 253, pattern: UPGRADE_ID_PATTERN.source },
};

function queryParams(schema: z.ZodObject): object[] {
  const js = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }) as {
    properties: Record<string, object>;
  };
  return Object.entries(js.properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: false,
    schema: s,
  }));
}

function components(): Record<string, unknown> {
  const out = z.toJSONSchema(apiRegistry, {
    target: 'draft-2020-12',
    io: 'output',
    uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  const schemas: Record<string, unknown> = {};
  for (const [id, s] of Object.entries(out.schemas)) {
    const { $schema: _drop, id: _id, ...rest } = s;
    schemas[id] = rest;
  }
  return schemas;
}

export function buildOpenApi(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'pairshift REST compatibility API',
      version: '1.0.0',
      description:
        'Drives rolling upgrades of HA pairs. Every endpoint acts on the same UpgradeRequest objects as kubectl and the reconciler. Errors are RFC 9457 problem+json with stable codes.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    components: {
      schemas: components(),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearer: [] }],
    paths: {
      '/health': {
        get: {
          summary: "The operator's own health: store, resource source, reconciler",
          security: [],
          responses: {
            '200': { description: 'All checks pass', content: json('HealthResponse') },
            '503': { description: 'A check fails', content: json('HealthResponse') },
            '400': problem('Not a valid HTTP request'),
            '403': COMMON['403'],
            '429': COMMON['429'],
          },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          summary: 'This document',
          security: [],
          responses: {
            '200': { description: 'The OpenAPI 3.1 document', content: { 'application/json': {} } },
            '400': problem('Not a valid HTTP request'),
            '403': COMMON['403'],
            '429': COMMON['429'],
          },
        },
      },
      '/api/v1/upgrade/trigger': {
        post: {
          summary: 'Start an upgrade of a pair (operator role)',
          requestBody: {
            required: true,
            content: {
              ...json('TriggerRequest'),
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['package', 'signature', 'pair'],
                  properties: {
                    package: {
                      type: 'string',
                      contentMediaType: 'application/gzip',
                      description: 'The signed package (.tar.gz)',
                    },
                    signature: {
                      type: 'string',
                      contentMediaType: 'application/octet-stream',
                      description: 'Its detached signature',
                    },
                    pair: { type: 'string', maxLength: 253 },
                    reason: { type: 'string', maxLength: 1000 },
                    options: {
                      type: 'string',
                      contentMediaType: 'application/json',
                      maxLength: 4000,
                      description:
                        'The trigger options as a JSON object, as in the JSON request (e.g. {"dry_run": true})',
                    },
                  },
                },
              },
            },
          },
          responses: {
            '201': {
              description: 'The UpgradeRequest was created; follow status_url',
              headers: { Location: { schema: { type: 'string' } } },
              content: json('TriggerResponse'),
            },
            ...BODY_ERRORS,
            '404': problem('No HA pair of that name'),
            '409': problem('An upgrade is already active on the pair'),
            '422': problem(
              'The uploaded package was refused (signature, format, contents or version); see reason',
            ),
            '503': problem(
              'PS-1903: an upload to this replica cannot reach the leader (the upload folder is not shared with it)',
            ),
            ...COMMON,
          },
        },
      },
      '/api/v1/upgrade/progress/{upgrade_id}': {
        get: {
          summary: 'Phase, progress, completed steps, message, estimate and downtime',
          parameters: [idParam],
          responses: {
            '200': { description: 'The progress', content: json('ProgressResponse') },
            '400': problem('The upgrade id is not valid'),
            '404': problem('No such upgrade'),
            ...COMMON,
          },
        },
      },
      '/api/v1/upgrade/rollback/{upgrade_id}': {
        post: {
          summary: 'Roll the upgrade back to the old version (operator role)',
          parameters: [idParam],
          requestBody: { required: false, content: json('RollbackRequest') },
          responses: {
            '200': { description: 'The rollback was requested', content: json('ActionResponse') },
            ...BODY_ERRORS,
            '404': problem('No such upgrade'),
            '409': problem(
              'Cannot roll back: finished, already rolling back or cancelling, or no verified backup yet (cancel instead)',
            ),
            ...COMMON,
          },
        },
      },
      '/api/v1/upgrade/cancel/{upgrade_id}': {
        post: {
          summary: 'Stop the upgrade at a safe point (operator role)',
          parameters: [idParam],
          requestBody: { required: false, content: json('CancelRequest') },
          responses: {
            '200': { description: 'The cancel was requested', content: json('ActionResponse') },
            ...BODY_ERRORS,
            '404': problem('No such upgrade'),
            '409': problem('Finished already, rolling back, or already cancelling'),
            ...COMMON,
          },
        },
      },
      '/api/v1/upgrade/history': {
        get: {
          summary: 'State transitions, newest first, paged, with the total count',
          parameters: queryParams(historyQuerySchema),
          responses: {
            '200': { description: 'A page of history', content: json('HistoryResponse') },
            '400': problem('A query parameter is not valid'),
            ...COMMON,
          },
        },
      },
      '/api/v1/upgrade/logs/{upgrade_id}': {
        get: {
          summary: "An upgrade's log lines, newest first, paged, optionally of one level",
          parameters: [idParam, ...queryParams(logsQuerySchema)],
          responses: {
            '200': { description: 'A page of log lines', content: json('LogsResponse') },
            '400': problem('The upgrade id or a query parameter is not valid'),
            '404': problem('No such upgrade'),
            ...COMMON,
          },
        },
      },
    },
  };
}
