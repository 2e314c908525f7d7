// One webhook receiver, as the operator's configuration file
// (notifications.receivers) and an HAPair (spec.notifications.receivers)
// declare it. Secrets are never inline: the bearer token, the HMAC signing
// secret, and the URL itself when it carries one (a Slack webhook URL is a
// credential), each come from a file (a mounted Secret in a cluster).
import { z } from 'zod';

/** The kinds of notification a receiver can ask for (receiver.events). */
export const NOTIFY_KINDS = ['phase', 'halted', 'result'] as const;
export type NotifyKind = (typeof NOTIFY_KINDS)[number];

const absPath = z.string().regex(/^\//, { error: 'expected an absolute path' });

export const receiverSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, {
        error: 'expected a DNS-label name (lower case, digits, -)',
      })
      .max(63)
      .describe('The receiver, as the delivery table and logs name it; unique where declared.'),
    // A pattern, not z.url(): the CRD keeps it as a pattern the API server checks.
    url: z
      .string()
      .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/, { error: 'expected an http:// or https:// URL' })
      .max(2048)
      .optional()
      .describe('Where events are POSTed. Give url or urlFile, not both.'),
    urlFile: absPath
      .optional()
      .describe('A file holding the URL, for URLs that are themselves secrets (Slack webhooks).'),
    format: z
      .enum(['cloudevents', 'slack'], { error: 'expected cloudevents or slack' })
      .optional()
      .describe(
        'cloudevents (default): the CloudEvents 1.0 JSON event; slack: a {"text": ...} body.',
      ),
    events: z
      .array(z.enum(NOTIFY_KINDS, { error: `expected one of ${NOTIFY_KINDS.join(', ')}` }))
      .min(1)
      .optional()
      .describe('Which events to send: phase, halted, result (default: all three).'),
    bearerTokenFile: absPath
      .optional()
      .describe('A file holding a token sent as "Authorization: Bearer <token>".'),
    hmacSecretFile: absPath
      .optional()
      .describe(
        'A file holding a secret; each body is signed: X-Pairshift-Signature: sha256=<hex HMAC>.',
      ),
  })
  .strict()
  .refine((r) => (r.url === undefined) !== (r.urlFile === undefined), {
    error: 'give exactly one of url and urlFile',
  });

export type ReceiverConfig = z.output<typeof receiverSchema>;

/** A list of receivers whose names are unique. */
// Bounded: the API server estimates a CEL rule's cost from the list's maxItems.
export const receiverListSchema = z
  .array(receiverSchema)
  .max(20, { error: 'at most 20 receivers' })
  .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, {
    error: 'two receivers have the same name',
  });
