/**
 * The webhook events: what a receiver gets, in the Standard Webhooks shape. The body is
 * `{ type, timestamp, data }` (the event's time, ISO 8601); the event's id travels in the
 * `webhook-id` header and is the same on every retry, so a receiver de-duplicates on it.
 *
 * One schema serves the producer (newEvent parses what it is given: an artifact's storage
 * key, or any field the schema does not name, is dropped) and the outbox, which parses every
 * stored event on read.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const WEBHOOK_EVENT_TYPES = [
  'upload.created',
  'upload.refused',
  'upload.failed',
  'artifact.published',
  'upload.expired',
  'artifact.deleted',
] as const;

export const webhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);
export type WebhookEventType = z.infer<typeof webhookEventTypeSchema>;

/** `msg_` and 1 to 64 letters or digits: safe as a file name and a Redis key part. */
const EVENT_ID = /^msg_[0-9A-Za-z]{1,64}$/;

export function isEventId(value: string): boolean {
  return EVENT_ID.test(value);
}

export const webhookArtifactSchema = z.object({
  id: z.string(),
  url: z.string(),
  format: z.enum(['webp', 'avif']),
  width: z.number().int(),
  height: z.number().int(),
  bytes: z.number().int(),
  /** What the server received. */
  original: z.object({ bytes: z.number().int(), sha256: z.string() }),
});

export const webhookErrorSchema = z.object({ code: z.string(), message: z.string() });

export const webhookEventDataSchema = z.object({
  uploadId: z.string(),
  /** Who uploaded, and under which profile; null when the server does not know (no auth). */
  owner: z.string().nullable(),
  profile: z.string().nullable(),
  /** Server-side facts about the upload. */
  meta: z.record(z.string(), z.string()),
  /** The client's tus metadata that the operator lets through. */
  metadata: z.record(z.string(), z.string()),
  /** `artifact.published` (required), `artifact.deleted` (optional). */
  artifact: webhookArtifactSchema.optional(),
  /** `upload.refused` and `upload.failed` (required). */
  error: webhookErrorSchema.optional(),
});

export const webhookEventSchema = z
  .object({
    id: z.string().refine(isEventId, 'not a webhook event id'),
    type: webhookEventTypeSchema,
    timestamp: z.iso.datetime(),
    data: webhookEventDataSchema,
  })
  .superRefine((event, context) => {
    if (event.type === 'artifact.published' && !event.data.artifact) {
      context.addIssue({ code: 'custom', path: ['data', 'artifact'], message: 'artifact.published needs data.artifact' });
    }
    if ((event.type === 'upload.refused' || event.type === 'upload.failed') && !event.data.error) {
      context.addIssue({ code: 'custom', path: ['data', 'error'], message: `${event.type} needs data.error` });
    }
  });

export type WebhookEvent = z.infer<typeof webhookEventSchema>;
export type WebhookEventData = z.infer<typeof webhookEventDataSchema>;
/** The same, under the shorter name server/hooks-module.ts uses. */
export type EventData = WebhookEventData;
export type WebhookArtifact = z.infer<typeof webhookArtifactSchema>;

type BaseData = Omit<z.input<typeof webhookEventDataSchema>, 'artifact' | 'error'>;

/** What `newEvent` takes for each type: the fields a type requires are required here too. */
export type EventDataFor<T extends WebhookEventType> = T extends 'artifact.published'
  ? BaseData & { artifact: z.input<typeof webhookArtifactSchema> }
  : T extends 'upload.refused' | 'upload.failed'
    ? BaseData & { error: z.input<typeof webhookErrorSchema> }
    : T extends 'artifact.deleted'
      ? BaseData & { artifact?: z.input<typeof webhookArtifactSchema> }
      : BaseData;

/**
 * An event's id: its type and its upload's, hashed. Each type happens at most once to an
 * upload, so the id names the fact, and telling it again (a finish redone after a crash,
 * a restart between the outbox write and the state's) sends the same `webhook-id`, which
 * a receiver already de-duplicates on.
 */
function eventIdFor(type: WebhookEventType, uploadId: string): string {
  return `msg_${createHash('sha256').update(`${type}\n${uploadId}`).digest('hex').slice(0, 32)}`;
}

/** A new event, validated (a ZodError for data the schema refuses), stamped with `at`. */
export function newEvent<T extends WebhookEventType>(type: T, data: EventDataFor<T>, at: Date = new Date()): WebhookEvent {
  return webhookEventSchema.parse({ id: eventIdFor(type, data.uploadId), type, timestamp: at.toISOString(), data });
}

/** The exact bytes sent (and signed) on every attempt: the same for one event, always. */
export function eventBody(event: WebhookEvent): string {
  const { type, timestamp, data } = event;
  return JSON.stringify({ type, timestamp, data });
}
