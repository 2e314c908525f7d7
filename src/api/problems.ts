// The catalogue of API errors (task list 5.3): every error the API returns
// is one of these, as RFC 9457 problem+json with a stable code, a message a
// person understands and the suggested next step. Codes never change
// meaning once published; new cases get new codes. Stack traces never reach
// a response (5.3.2): the error handler logs them on the server only.
import { z } from 'zod';
import { apiRegistry } from './registry.js';

export const SUGGESTIONS = [
  'retry',
  'rollback',
  'cancel',
  'wait',
  'fix-package',
  'fix-request',
  'authenticate',
  'contact-admin',
] as const;
export type Suggestion = (typeof SUGGESTIONS)[number];

interface ProblemType {
  readonly status: number;
  readonly title: string;
  readonly suggestion: Suggestion;
}

/** Stable code -> what it means. The URI of each is PROBLEM_BASE + slug of the code. */
export const PROBLEMS = {
  'PS-1001': { status: 400, title: 'The request is not valid', suggestion: 'fix-request' },
  'PS-1002': {
    status: 400,
    title: 'The request body is not valid JSON',
    suggestion: 'fix-request',
  },
  'PS-1003': { status: 400, title: 'The upgrade id is not valid', suggestion: 'fix-request' },
  'PS-1004': { status: 400, title: 'A query parameter is not valid', suggestion: 'fix-request' },
  'PS-1005': { status: 400, title: 'The package upload is not valid', suggestion: 'fix-request' },
  'PS-1101': { status: 401, title: 'Authentication is required', suggestion: 'authenticate' },
  'PS-1102': { status: 401, title: 'The bearer token is not valid', suggestion: 'authenticate' },
  'PS-1201': { status: 403, title: 'This token may only read', suggestion: 'contact-admin' },
  'PS-1202': {
    status: 403,
    title: 'Requests from this address are not allowed',
    suggestion: 'contact-admin',
  },
  'PS-1301': { status: 404, title: 'No such endpoint', suggestion: 'fix-request' },
  'PS-1302': { status: 404, title: 'No such upgrade', suggestion: 'fix-request' },
  'PS-1303': { status: 404, title: 'No such HA pair', suggestion: 'fix-request' },
  'PS-1401': {
    status: 405,
    title: 'Method not allowed on this endpoint',
    suggestion: 'fix-request',
  },
  'PS-1501': {
    status: 409,
    title: 'An upgrade is already active on this pair',
    suggestion: 'wait',
  },
  'PS-1502': { status: 409, title: 'The upgrade has already finished', suggestion: 'fix-request' },
  'PS-1503': {
    status: 409,
    title: 'Nothing to roll back to yet: no verified backup',
    suggestion: 'cancel',
  },
  'PS-1504': { status: 409, title: 'A rollback is already under way', suggestion: 'wait' },
  'PS-1505': {
    status: 409,
    title: 'The upgrade changed meanwhile',
    suggestion: 'retry',
  },
  'PS-1506': { status: 409, title: 'A cancel is already under way', suggestion: 'wait' },
  'PS-1601': { status: 413, title: 'The request body is too large', suggestion: 'fix-request' },
  'PS-1602': {
    status: 415,
    title: 'Unsupported media type',
    suggestion: 'fix-request',
  },
  'PS-1701': { status: 429, title: 'Too many requests', suggestion: 'retry' },
  'PS-1702': {
    status: 431,
    title: 'Request headers too large',
    suggestion: 'fix-request',
  },
  'PS-1801': {
    status: 422,
    title: 'The package was refused',
    suggestion: 'fix-package',
  },
  'PS-1901': { status: 500, title: 'Internal error', suggestion: 'retry' },
  'PS-1902': { status: 503, title: 'The operator is not ready', suggestion: 'retry' },
  'PS-1903': {
    status: 503,
    title: 'An upload here cannot reach the replica that runs upgrades',
    suggestion: 'contact-admin',
  },
} as const satisfies Record<string, ProblemType>;

export type ProblemCode = keyof typeof PROBLEMS;

export const PROBLEM_BASE = 'https://pairshift.io/problems/';
export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

export function problemTypeUri(code: ProblemCode): string {
  return `${PROBLEM_BASE}${code.toLowerCase()}`;
}

export const problemSchema = z
  .object({
    type: z.string().describe('A URI naming the kind of problem; stable per code'),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().describe('What went wrong in this case, for a person'),
    instance: z.string().describe('The path of the request that failed'),
    code: z.enum(Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]]),
    suggestion: z.enum(SUGGESTIONS),
    reason: z
      .string()
      .optional()
      .describe('A finer stable reason, e.g. package-signature-untrusted for PS-1801'),
    errors: z
      .array(z.object({ field: z.string(), message: z.string() }))
      .optional()
      .describe('Per-field problems of a request that did not validate'),
  })
  .register(apiRegistry, { id: 'Problem' });
export type Problem = z.output<typeof problemSchema>;

/** An error the API answers with as a problem; thrown anywhere in a handler. */
export class ApiProblem extends Error {
  override readonly name = 'ApiProblem';
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: {
      errors?: { field: string; message: string }[];
      reason?: string;
      headers?: Record<string, string>;
      cause?: unknown;
    } = {},
  ) {
    super(detail, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.status = PROBLEMS[code].status;
  }
}

export function toProblem(p: ApiProblem, instance: string): Problem {
  const t = PROBLEMS[p.code];
  return {
    type: problemTypeUri(p.code),
    title: t.title,
    status: t.status,
    detail: p.detail,
    instance,
    code: p.code,
    suggestion: t.suggestion,
    ...(p.extra.reason ? { reason: p.extra.reason } : {}),
    ...(p.extra.errors ? { errors: p.extra.errors } : {}),
  };
}

/** The code for an error another module threw with an HTTP status (body-parser, upload). */
export function codeForStatus(status: number): ProblemCode {
  switch (status) {
    case 400:
      return 'PS-1001';
    case 401:
      return 'PS-1101';
    case 403:
      return 'PS-1201';
    case 404:
      return 'PS-1301';
    case 405:
      return 'PS-1401';
    case 409:
      return 'PS-1505';
    case 413:
      return 'PS-1601';
    case 415:
      return 'PS-1602';
    case 422:
      return 'PS-1801';
    case 429:
      return 'PS-1701';
    case 431:
      return 'PS-1702';
    case 503:
      return 'PS-1902';
    default:
      return 'PS-1901';
  }
}
