/**
 * The OpenAPI 3.1 description of tusgate's HTTP API, served at GET /openapi.json.
 *
 * Built in code from what it describes, so that it cannot drift:
 * - every error body's `code` is an enum of ERROR_STATUS's keys, and each operation's error
 *   responses are grouped by the status ERROR_STATUS gives their codes;
 * - the webhook payloads are the zod schemas of storage/webhook-events.ts (z.toJSONSchema),
 *   and the artifact's fields are the same schema's (a compile-time check below keeps the
 *   artifact clients see equal to it);
 * - test/unit/openapi.test.ts validates the document (OpenAPI 3.1 and JSON Schema 2020-12),
 *   and test/e2e/api-contract.test.ts checks real responses of a real server against it.
 *
 * The tus endpoint is described by reference to tus 1.0 (externalDocs) and with what tusgate
 * adds: the artifact as the final response body, JSON refusals, the extensions it offers.
 */
import { z } from 'zod';
import { ERROR_STATUS, type ErrorCode } from '../hooks/errors.ts';
import type { Artifact } from '../storage/upload-state.ts';
import {
  WEBHOOK_EVENT_TYPES,
  webhookArtifactSchema,
  webhookErrorSchema,
  webhookEventDataSchema,
  type WebhookArtifact,
  type WebhookEventType,
} from '../storage/webhook-events.ts';
import type { Config } from './config.ts';

/** A JSON object of the document (an OpenAPI object or a JSON Schema). */
export type JsonObject = { [key: string]: unknown };

/** What of the configuration the document mentions (all optional: the document is the same API). */
export type OpenApiConfig = Partial<Pick<Config, 'authMode' | 'MAX_UPLOAD_BYTES' | 'UPLOAD_EXPIRES_AFTER_MS'>>;

/** Set on a response whose body may also be empty (a tus response that is the artifact only when it is the last). */
export const OPTIONAL_BODY = 'x-tusgate-optional-body';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** The artifact clients get (publicView: the record less its storage key) is the webhook artifact, field for field. */
export const ARTIFACT_VIEW_IS_WEBHOOK_ARTIFACT = true satisfies Same<Omit<Artifact, 'key'>, WebhookArtifact>;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

const TUS_SPEC = 'https://tus.io/protocols/resumable-upload';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: JsonObject) => ({ 'application/json': { schema } });

// ------------------------------------------------------------------------- generated schemas

/** Zod's JSON Schema, less what adds nothing here (safe-integer bounds, string property names, zod's date-time regex). */
function tidy(ctx: { jsonSchema: JsonObject }): void {
  const schema = ctx.jsonSchema;
  if (schema.type === 'integer' && schema.minimum === Number.MIN_SAFE_INTEGER) delete schema.minimum;
  if (schema.type === 'integer' && schema.maximum === Number.MAX_SAFE_INTEGER) delete schema.maximum;
  if (schema.format === 'date-time') delete schema.pattern;
  const names = schema.propertyNames;
  if (names && typeof names === 'object' && Object.keys(names).length === 1 && (names as JsonObject).type === 'string') {
    delete schema.propertyNames;
  }
}

const WEBHOOK_SCHEMA_NAMES: Readonly<Record<WebhookEventType, string>> = {
  'upload.created': 'UploadCreatedEvent',
  'upload.refused': 'UploadRefusedEvent',
  'upload.failed': 'UploadFailedEvent',
  'artifact.published': 'ArtifactPublishedEvent',
  'upload.expired': 'UploadExpiredEvent',
  'artifact.deleted': 'ArtifactDeletedEvent',
};

const WEBHOOK_WHEN: Readonly<Record<WebhookEventType, string>> = {
  'upload.created': 'An upload was created.',
  'upload.refused': 'The gate refused the upload (disguised, too large, …); `data.error` says why.',
  'upload.failed': 'The finish could not produce an artifact (corrupt, timeout, original lost); `data.error` says why.',
  'artifact.published': 'The artifact is public: `data.artifact` has its URL, size, format and the original\'s sha256.',
  'upload.expired': 'The sweep removed an unfinished upload.',
  'artifact.deleted': 'The owner deleted the artifact (`DELETE /uploads/{id}`).',
};

/** The `data` of each event type: the fields its producer sends (storage/webhook-events.ts's EventDataFor). */
function webhookDataFor(type: WebhookEventType) {
  const base = webhookEventDataSchema.omit({ artifact: true, error: true });
  switch (type) {
    case 'artifact.published':
      return base.extend({ artifact: webhookArtifactSchema });
    case 'artifact.deleted':
      return base.extend({ artifact: webhookArtifactSchema.optional() });
    case 'upload.refused':
    case 'upload.failed':
      return base.extend({ error: webhookErrorSchema });
    case 'upload.created':
    case 'upload.expired':
      return base;
  }
}

/** The JSON Schemas made from the zod schemas, by component name. */
export function generatedSchemas(): Record<string, JsonObject> {
  const registry = z.registry<{ id: string; description?: string }>();
  registry.add(webhookArtifactSchema, { id: 'WebhookArtifact', description: 'The published artifact, as in the final response (less `profile`, which `data` carries).' });
  registry.add(webhookErrorSchema, { id: 'WebhookError', description: 'Why the upload was refused or failed: a code of the Error codes, and a message.' });
  for (const type of WEBHOOK_EVENT_TYPES) {
    const body = z.object({ type: z.literal(type), timestamp: z.iso.datetime(), data: webhookDataFor(type) });
    registry.add(body, { id: WEBHOOK_SCHEMA_NAMES[type], description: `The body of a \`${type}\` webhook: ${WEBHOOK_WHEN[type]}` });
  }
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io: 'output',
    uri: (id) => `#/components/schemas/${id}`,
    override: (ctx) => tidy(ctx as { jsonSchema: JsonObject }),
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([name, schema]) => {
      const { $schema: _dialect, $id: _id, ...rest } = schema as JsonObject;
      return [name, rest];
    }),
  );
}

// ------------------------------------------------------------------------------- HTTP bodies

const ID_PATTERN = '^[0-9a-f]{32}$';
const KEY_PATTERN = '^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\\.(webp|avif)$';

const ARTIFACT_FIELD_NOTES: Readonly<Record<string, string>> = {
  id: 'The upload id (the last segment of the upload URL).',
  url: 'Where the re-encoded image is served (PUBLIC_BASE_URL + its server-made key); never the upload id.',
  format: 'The artifact\'s format (OUTPUT_FORMAT, or the profile\'s).',
  width: 'Pixels, after auto-orientation and the fit.',
  height: 'Pixels, after auto-orientation and the fit.',
  bytes: 'Size of the artifact.',
  original: 'What the server received: compare its sha256 with what you sent.',
};

function artifactFields(webhookArtifact: JsonObject): { properties: Record<string, JsonObject>; required: string[] } {
  const properties = webhookArtifact.properties as Record<string, JsonObject>;
  const required = webhookArtifact.required as string[];
  return {
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, schema]) => [name, ARTIFACT_FIELD_NOTES[name] ? { ...schema, description: ARTIFACT_FIELD_NOTES[name] } : schema]),
    ),
    required,
  };
}

const errorSchema = (message: string): JsonObject => ({
  type: 'object',
  required: ['code', 'message'],
  additionalProperties: false,
  properties: { code: ref('ErrorCode'), message: { type: 'string', description: message } },
});

function httpSchemas(generated: Record<string, JsonObject>): Record<string, JsonObject> {
  const webhookArtifact = generated.WebhookArtifact;
  if (!webhookArtifact) throw new Error('the webhook artifact schema was not generated');
  const artifact = artifactFields(webhookArtifact);
  const profile = { type: 'string', description: 'The upload profile (PROFILES_FILE) it was made with.' };
  const id = { type: 'string', pattern: ID_PATTERN, description: 'The upload id.' };
  const record = (state: string, properties: Record<string, JsonObject>, required: string[], description: string): JsonObject => ({
    type: 'object',
    description,
    required: ['id', 'state', ...required],
    additionalProperties: false,
    properties: { id, state: { const: state }, ...properties },
  });
  return {
    ErrorCode: {
      type: 'string',
      enum: ERROR_CODES,
      description: `Every refusal's code, with a fixed status: ${ERROR_CODES.map((code) => `\`${code}\` ${ERROR_STATUS[code]}`).join(', ')}. The README's "Error codes" says when each is given.`,
    },
    Error: {
      type: 'object',
      description: 'The body of every refusal. The message names the limit and its variable.',
      required: ['error'],
      additionalProperties: false,
      properties: { error: errorSchema('For people: names the limit and the variable that sets it.') },
    },
    Artifact: {
      type: 'object',
      description:
        'The body of the final response of an upload (its last PATCH, or a creation-with-upload POST that carries every byte): the server-made artifact.',
      required: artifact.required,
      additionalProperties: false,
      properties: { ...artifact.properties, profile },
    },
    ReceivingRecord: record(
      'receiving',
      {
        offset: { type: 'integer', minimum: 0, description: 'Bytes received (as HEAD\'s Upload-Offset).' },
        size: { type: ['integer', 'null'], minimum: 0, description: 'The declared Upload-Length; null for a deferred length.' },
      },
      ['offset', 'size'],
      'The upload is being received.',
    ),
    ProcessingRecord: record('processing', {}, [], 'Every byte is received and the image is being re-encoded (a finish interrupted by a crash is redone when this is asked).'),
    DoneRecord: {
      type: 'object',
      description: 'The artifact is published: the same record as the final response, with its state.',
      required: ['state', ...artifact.required],
      additionalProperties: false,
      properties: { state: { const: 'done' }, ...artifact.properties, profile },
    },
    FailedRecord: record(
      'failed',
      { profile, error: errorSchema('Why no artifact could be made.') },
      ['error'],
      'The body did not decode (e.g. a truncated file), took too long, or its original was lost; nothing is published.',
    ),
    RefusedRecord: record('refused', { profile, error: errorSchema('Why the gate refused it.') }, ['error'], 'The gate refused the upload; nothing of it is stored.'),
    DeletedRecord: record('deleted', { profile }, [], 'Its owner deleted the artifact (DELETE /uploads/{id}).'),
    UploadRecord: {
      type: 'object',
      description: 'What became of an upload.',
      oneOf: ['Receiving', 'Processing', 'Done', 'Failed', 'Refused', 'Deleted'].map((state) => ref(`${state}Record`)),
      discriminator: {
        propertyName: 'state',
        mapping: Object.fromEntries(['receiving', 'processing', 'done', 'failed', 'refused', 'deleted'].map((state) => [state, `#/components/schemas/${state[0]?.toUpperCase()}${state.slice(1)}Record`])),
      },
    },
    Health: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: { status: { const: 'ok' } },
    },
    Readiness: {
      type: 'object',
      required: ['status'],
      additionalProperties: false,
      properties: {
        status: {
          enum: ['ready', 'starting', 'shutting-down', 'busy'],
          description: '`ready` (200); `starting`, `shutting-down`, or `busy` while the finish queue is full (FINISH_QUEUE_MAX) (503).',
        },
      },
    },
  };
}

// ------------------------------------------------------------------------------ responses

const header = (description: string, schema: JsonObject = { type: 'string' }, required = false): JsonObject => ({
  description,
  ...(required ? { required: true } : {}),
  schema,
});

const HEADERS = {
  tusResumable: header('The protocol version of the response: `1.0.0`.', { const: '1.0.0' }, true),
  tusVersion: header('The versions this server speaks: `1.0.0`.', { const: '1.0.0' }, true),
  retryAfter: header('Seconds to wait before retrying.', { type: 'string', pattern: '^\\d+$' }),
  wwwAuthenticate: header('`Bearer realm="tusgate"`, with `error="invalid_token"` for a malformed, forged or expired token.', { type: 'string' }, true),
  uploadOffset: header('Bytes of the upload the server has.', { type: 'string', pattern: '^\\d+$' }, true),
  uploadExpires: header('When the unfinished upload stops being resumable (RFC 9110 date); absent with UPLOAD_EXPIRES_AFTER_MS=0 and on a complete upload.'),
  requestId: header('The request id (the request\'s X-Request-Id when it is sane, otherwise made), also in the log line.'),
} as const;

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  423: 'Locked',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** Refused by Node's HTTP parser before any route, on every route (server/client-errors.ts), or a bug. */
const ANY_REQUEST: ErrorCode[] = ['E_BAD_REQUEST', 'E_HEADERS_TOO_LARGE', 'E_REQUEST_TIMEOUT', 'E_INTERNAL'];
/** Who sends it (AUTH_MODE jwt or hook). */
const AUTH: ErrorCode[] = ['E_UNAUTHENTICATED', 'E_FORBIDDEN', 'E_AUTH_UNAVAILABLE'];
/** Every tus method but OPTIONS: the protocol checks, the id, the state store. */
const TUS_ANY: ErrorCode[] = [...ANY_REQUEST, ...AUTH, 'E_TUS_VERSION', 'E_NOT_FOUND', 'E_METADATA_INVALID', 'E_STATE_UNAVAILABLE', 'E_STORAGE_UNAVAILABLE'];
/** The gate's verdicts on the first bytes (and an application's onVerdict). */
const GATE: ErrorCode[] = [
  'E_EMPTY_UPLOAD',
  'E_TYPE_UNKNOWN',
  'E_TYPE_NOT_ALLOWED',
  'E_HEADER_UNREADABLE',
  'E_DIMENSIONS_TOO_LARGE',
  'E_TOO_MANY_PIXELS',
  'E_TOO_MANY_FRAMES',
  'E_TOO_MANY_TOTAL_PIXELS',
  'E_REFUSED_BY_APP',
];
/** The finish, answered on the request that carries the last byte. */
const FINISH: ErrorCode[] = ['E_IMAGE_CORRUPT', 'E_TRANSCODE_TIMEOUT', 'E_ORIGINAL_LOST', 'E_GONE'];
/** Writing bytes: the offset, the lock, the size. */
const WRITE: ErrorCode[] = ['E_CONTENT_TYPE', 'E_UPLOAD_TOO_LARGE', 'E_LOCKED', 'E_LOCK_LOST', ...GATE, ...FINISH];

const CREATE_CODES: ErrorCode[] = [
  ...TUS_ANY,
  ...WRITE,
  'E_PROFILE_NOT_ALLOWED',
  'E_RATE_LIMITED',
  'E_QUOTA_EXCEEDED',
  'E_NOT_IMPLEMENTED',
  'E_SHUTTING_DOWN',
  'E_BUSY',
];
const HEAD_CODES: ErrorCode[] = [...TUS_ANY, 'E_GONE', 'E_UPLOAD_REFUSED', 'E_LOCKED', 'E_LOCK_LOST'];
const PATCH_CODES: ErrorCode[] = [...TUS_ANY, ...WRITE, 'E_OFFSET_MISMATCH', 'E_UPLOAD_REFUSED', 'E_UPLOAD_COMPLETE', 'E_QUOTA_EXCEEDED'];
const TERMINATE_CODES: ErrorCode[] = [...TUS_ANY, 'E_GONE', 'E_UPLOAD_REFUSED', 'E_UPLOAD_COMPLETE', 'E_LOCKED', 'E_LOCK_LOST'];
const STATUS_CODES: ErrorCode[] = [...ANY_REQUEST, ...AUTH, 'E_NOT_FOUND'];
const DELETE_ARTIFACT_CODES: ErrorCode[] = [...ANY_REQUEST, ...AUTH, 'E_NOT_FOUND', 'E_LOCKED'];

interface RefusalOptions {
  /** HEAD: the status and headers only. */
  bodiless?: boolean;
  /** Headers by status, besides the ones every refusal of that status carries. */
  headers?: Partial<Record<number, Record<string, JsonObject>>>;
  /** Said of a status, besides the codes. */
  notes?: Partial<Record<number, string>>;
}

/** The error responses of an operation: its codes grouped by their status, each status's body narrowed to its codes. */
export function refusals(codes: readonly ErrorCode[], options: RefusalOptions = {}): Record<string, JsonObject> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, JsonObject> = {};
  for (const [status, group] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Record<string, JsonObject> = {
      ...(status === 401 ? { 'WWW-Authenticate': HEADERS.wwwAuthenticate } : {}),
      ...(status === 429 ? { 'Retry-After': { ...HEADERS.retryAfter, required: true } } : {}),
      ...(status === 503 ? { 'Retry-After': HEADERS.retryAfter } : {}),
      ...options.headers?.[status],
    };
    const note = options.notes?.[status];
    responses[String(status)] = {
      description: `${STATUS_TEXT[status] ?? 'Refused'}: ${group.map((code) => `\`${code}\``).join(', ')}.${note ? ` ${note}` : ''}`,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      ...(options.bodiless
        ? {}
        : {
            content: json({
              allOf: [
                ref('Error'),
                {
                  type: 'object',
                  properties: { error: { type: 'object', properties: { code: { enum: group } } } },
                },
              ],
            }),
          }),
    };
  }
  return responses;
}

// ------------------------------------------------------------------------------- parameters

const param = (name: string, where: 'header' | 'path' | 'query', description: string, schema: JsonObject, required = false): JsonObject => ({
  name,
  in: where,
  description,
  ...(required || where === 'path' ? { required: true } : {}),
  schema,
});

const PARAMS = {
  uploadId: param('id', 'path', 'The upload id: the last segment of the upload URL (Location).', { type: 'string', pattern: ID_PATTERN }),
  tusResumable: param('Tus-Resumable', 'header', 'Required on every tus request but OPTIONS; anything but `1.0.0` gets 412 `E_TUS_VERSION`.', { const: '1.0.0' }, true),
  uploadOffset: param('Upload-Offset', 'header', 'Where this PATCH\'s bytes go: the upload\'s current offset (HEAD tells it), else 409.', { type: 'string', pattern: '^\\d+$' }, true),
  uploadLength: param(
    'Upload-Length',
    'header',
    "The upload's size in bytes (exactly one of it and Upload-Defer-Length at creation; on a PATCH, declares a deferred length once). At most the profile's maxUploadBytes (MAX_UPLOAD_BYTES at most), else 413; 0 is refused (422 `E_EMPTY_UPLOAD`).",
    { type: 'string', pattern: '^\\d+$' },
  ),
  uploadDeferLength: param('Upload-Defer-Length', 'header', 'creation-defer-length: `1` when the size is not known yet.', { const: '1' }),
  uploadMetadata: param(
    'Upload-Metadata',
    'header',
    'Comma-separated `key base64(value)` pairs, at most MAX_METADATA_BYTES (else 400 `E_METADATA_INVALID`). `filename` and `filetype` only refuse early what is obviously no allowed image; `profile` asks for an upload profile (403 `E_PROFILE_NOT_ALLOWED` when the credential does not grant it); the keys in METADATA_KEYS go to the webhooks. Never a path, a key or a decision.',
    { type: 'string' },
  ),
  offsetStream: param('Content-Type', 'header', '`application/offset+octet-stream` (else 415 `E_CONTENT_TYPE`).', { const: 'application/offset+octet-stream' }, true),
  methodOverride: (methods: string[], required: boolean) =>
    param(
      'X-HTTP-Method-Override',
      'header',
      `Honoured on a POST: the request is then handled as this method, through the same checks, authentication and gate. Any other value gets 400 \`E_BAD_REQUEST\`.`,
      { enum: methods },
      required,
    ),
  requestId: param('X-Request-Id', 'header', 'Up to 64 of `[A-Za-z0-9_.:-]`: echoed in the response and logged; otherwise one is made.', { type: 'string', pattern: '^[\\w.:-]{1,64}$' }),
} as const;

const OFFSET_STREAM_BODY = (required: boolean, description: string): JsonObject => ({
  required,
  description,
  content: { 'application/offset+octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
});

// ---------------------------------------------------------------------------------- document

const UPLOAD_SECURITY = [{ bearerJwt: [] }, { authHookBearer: [] }, { authHookCookie: [] }, {}];

export function openApiDocument(config: OpenApiConfig = {}): JsonObject {
  const generated = generatedSchemas();
  const schemas = { ...httpSchemas(generated), ...generated };
  const tusTag = ['tus'];
  const tusHeaders = { 'Tus-Resumable': HEADERS.tusResumable, 'X-Request-Id': HEADERS.requestId };
  const tusRefusals = (codes: ErrorCode[], { bodiless = false, lastByte = false } = {}) =>
    refusals(codes, {
      bodiless,
      headers: { 412: { 'Tus-Version': HEADERS.tusVersion } },
      notes: lastByte
        ? {
            410: '`E_GONE` and `E_ORIGINAL_LOST` on the request that carries the last byte: the artifact was deleted, or the staged original lost.',
            422: 'On the request that carries the last byte: the finish\'s verdict (`E_IMAGE_CORRUPT`, `E_TRANSCODE_TIMEOUT`).',
            500: 'On the request that carries the last byte: every byte is received and the finish is retried on its own; ask GET /uploads/{id}.',
          }
        : {},
    });
  const here = [
    config.authMode ? `AUTH_MODE=${config.authMode}` : undefined,
    config.MAX_UPLOAD_BYTES ? `MAX_UPLOAD_BYTES=${config.MAX_UPLOAD_BYTES}` : undefined,
    config.UPLOAD_EXPIRES_AFTER_MS !== undefined ? `UPLOAD_EXPIRES_AFTER_MS=${config.UPLOAD_EXPIRES_AFTER_MS}` : undefined,
  ].filter((part) => part !== undefined);

  const finalArtifact = (status: number, also: string): JsonObject => ({
    description: `${also} When this request carried the last byte, the body is the artifact (application/json); otherwise there is none.`,
    [OPTIONAL_BODY]: true,
    headers: {
      ...tusHeaders,
      'Upload-Offset': status === 201 ? { ...HEADERS.uploadOffset, required: false, description: 'creation-with-upload: the bytes received.' } : HEADERS.uploadOffset,
      'Upload-Expires': HEADERS.uploadExpires,
      ...(status === 201 ? { Location: header('The upload URL (`/files/{id}`, absolute; honours X-Forwarded-Host/Proto with TRUST_PROXY).', { type: 'string', format: 'uri' }, true) } : {}),
    },
    content: json(ref('Artifact')),
  });

  const headResponse = (description: string): JsonObject => ({
    description,
    headers: {
      ...tusHeaders,
      'Upload-Offset': { ...HEADERS.uploadOffset, description: 'Bytes received. After the upload completes it stays equal to Upload-Length: a client that lost the final response learns that the upload is complete, and asks GET /uploads/{id}.' },
      'Upload-Length': header('The declared size (absent while deferred).', { type: 'string', pattern: '^\\d+$' }),
      'Upload-Defer-Length': header('`1` while the size is deferred.', { const: '1' }),
      'Upload-Metadata': header('The metadata given at creation.'),
      'Upload-Expires': HEADERS.uploadExpires,
      'Cache-Control': header('`no-store`.', { const: 'no-store' }, true),
    },
  });

  const terminated: JsonObject = { description: 'termination: the unfinished upload and its bytes are removed; later requests get 404 or 410.', headers: tusHeaders };

  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'tusgate',
      version: '0.1.0',
      summary: 'A tus 1.0 resumable upload server for user images that gates every upload on its first bytes and publishes only server-made re-encodes.',
      description: [
        'Upload at `/files/` with any tus 1.0 client. The final PATCH (or a creation-with-upload POST that carries every byte) answers with the artifact; `GET /uploads/{id}` tells what became of an upload, for a client whose final response was lost.',
        'Every refusal has the status of its code (`ErrorCode`) and a JSON body `{ "error": { "code", "message" } }`, on every route and from every layer.',
        'Every request that touches an upload (each tus method but OPTIONS, also through X-HTTP-Method-Override, and /uploads/{id}) is authenticated by AUTH_MODE: `none` (no credential), `jwt` (Authorization: Bearer, HS256 or a JWKS) or `hook` (the Authorization and Cookie headers are sent to the application\'s AUTH_HOOK_URL). An upload belongs to its creator: another subject gets 404, as for an unknown id.',
        'Responses carry CORS headers (ALLOWED_ORIGINS, CORS_ALLOW_CREDENTIALS) and X-Request-Id.',
        ...(here.length > 0 ? [`This server: ${here.join(', ')}.`] : []),
      ].join('\n\n'),
    },
    externalDocs: { description: 'tus 1.0: the resumable upload protocol', url: TUS_SPEC },
    servers: [{ url: '/', description: 'Where this document is served from.' }],
    tags: [
      { name: 'tus', description: 'The tus 1.0 endpoint, with tusgate\'s additions.', externalDocs: { url: TUS_SPEC } },
      { name: 'uploads', description: 'The status and deletion of an upload.' },
      { name: 'media', description: 'The artifacts, when the app serves the public store (PUBLIC_STORE=file).' },
      { name: 'operations', description: 'Health, readiness, metrics and this document.' },
    ],
    paths: {
      '/files/': {
        summary: 'The tus upload collection.',
        description:
          'tus 1.0 core, with the extensions creation, creation-with-upload, creation-defer-length, termination and expiration (concatenation is not offered: 501 `E_NOT_IMPLEMENTED`). Where bare @tus/server departs from tus 1.0, tusgate follows the spec: 412 with Tus-Version for a missing or unsupported Tus-Resumable, 415 for a PATCH without the offset+octet-stream Content-Type, X-HTTP-Method-Override honoured.',
        options: {
          tags: tusTag,
          operationId: 'tusOptions',
          summary: 'What the server offers (no credential).',
          externalDocs: { url: `${TUS_SPEC}#options` },
          security: [{}],
          responses: {
            '204': {
              description: 'The protocol versions, extensions and largest upload.',
              headers: {
                'Tus-Resumable': HEADERS.tusResumable,
                'Tus-Version': HEADERS.tusVersion,
                'Tus-Extension': header('The extensions offered.', { const: 'creation,creation-with-upload,creation-defer-length,termination,expiration' }, true),
                'Tus-Max-Size': header('The default profile\'s maxUploadBytes (MAX_UPLOAD_BYTES unless a profile lowers it).', { type: 'string', pattern: '^\\d+$' }, true),
              },
            },
            ...refusals(ANY_REQUEST),
          },
        },
        post: {
          tags: tusTag,
          operationId: 'tusCreate',
          summary: 'Creates an upload (creation), optionally with its first bytes or all of them (creation-with-upload).',
          description:
            'The profile is chosen (the credential\'s, or the `profile` metadata key when granted), the declared length is checked against it (413), and the account\'s rate limit and quotas are charged (429). `filename` and `filetype` in the metadata refuse early what is obviously no allowed image (415). Bytes sent with the creation go through the gate (415, 422) like a PATCH\'s. X-HTTP-Method-Override is honoured here too (see POST /files/{id}); an unknown value gets 400 `E_BAD_REQUEST`.',
          externalDocs: { url: `${TUS_SPEC}#creation` },
          security: UPLOAD_SECURITY,
          parameters: [
            PARAMS.tusResumable,
            PARAMS.uploadLength,
            PARAMS.uploadDeferLength,
            PARAMS.uploadMetadata,
            param('Content-Type', 'header', 'creation-with-upload: `application/offset+octet-stream` when the request carries bytes.', { const: 'application/offset+octet-stream' }),
            PARAMS.requestId,
          ],
          requestBody: OFFSET_STREAM_BODY(false, 'creation-with-upload: the first bytes of the upload, or all of them.'),
          responses: {
            '201': finalArtifact(201, 'Created: the upload URL is in Location.'),
            ...tusRefusals(CREATE_CODES, { lastByte: true }),
          },
        },
      },
      '/files/{id}': {
        summary: 'One upload (its URL is the Location of its creation).',
        parameters: [PARAMS.uploadId],
        head: {
          tags: tusTag,
          operationId: 'tusHead',
          summary: 'The upload\'s offset, to resume from.',
          externalDocs: { url: `${TUS_SPEC}#head` },
          security: UPLOAD_SECURITY,
          parameters: [PARAMS.tusResumable, PARAMS.requestId],
          responses: {
            '200': headResponse('The offset to resume from.'),
            ...tusRefusals(HEAD_CODES, { bodiless: true }),
          },
        },
        patch: {
          tags: tusTag,
          operationId: 'tusPatch',
          summary: 'Appends bytes at the offset; the first bytes go through the gate.',
          description:
            'The gate holds back the first bytes (at most GATE_WINDOW_BYTES), learns the real type and the image size, and refuses a disguised file (415) or a pixel bomb (422) before the rest is accepted; the connection is then closed. The offset reported meanwhile includes the held bytes. The request that carries the last byte waits for the re-encode and answers 200 with the artifact, or the finish\'s refusal (422, 410). A refused upload answers 410 `E_UPLOAD_REFUSED` afterwards.',
          externalDocs: { url: `${TUS_SPEC}#patch` },
          security: UPLOAD_SECURITY,
          parameters: [PARAMS.tusResumable, PARAMS.uploadOffset, PARAMS.offsetStream, PARAMS.uploadLength, PARAMS.requestId],
          requestBody: OFFSET_STREAM_BODY(true, 'The bytes from Upload-Offset on.'),
          responses: {
            '200': {
              description: 'The last byte: the upload is complete and its artifact published.',
              headers: { ...tusHeaders, 'Upload-Offset': HEADERS.uploadOffset, 'Cache-Control': header('`no-store`.', { const: 'no-store' }, true) },
              content: json(ref('Artifact')),
            },
            '204': {
              description: 'The bytes are received (some may be held by the gate until its verdict); resume from Upload-Offset.',
              headers: { ...tusHeaders, 'Upload-Offset': HEADERS.uploadOffset, 'Upload-Expires': HEADERS.uploadExpires },
            },
            ...tusRefusals(PATCH_CODES, { lastByte: true }),
          },
        },
        delete: {
          tags: tusTag,
          operationId: 'tusTerminate',
          summary: 'Terminates an unfinished upload (termination).',
          description: 'A complete upload cannot be terminated (400 `E_UPLOAD_COMPLETE`): delete its artifact with DELETE /uploads/{id}.',
          externalDocs: { url: `${TUS_SPEC}#termination` },
          security: UPLOAD_SECURITY,
          parameters: [PARAMS.tusResumable, PARAMS.requestId],
          responses: {
            '204': terminated,
            ...tusRefusals(TERMINATE_CODES),
          },
        },
        post: {
          tags: tusTag,
          operationId: 'tusMethodOverride',
          summary: 'HEAD, PATCH or DELETE, sent as a POST with X-HTTP-Method-Override.',
          description:
            'For clients and networks that only let GET and POST through. The request is handled as the method it names, with that method\'s headers and body, checks, authentication and gate; its responses are that method\'s (a HEAD\'s have no body). A POST to an upload URL without the header gets 404.',
          security: UPLOAD_SECURITY,
          parameters: [
            PARAMS.methodOverride(['HEAD', 'PATCH', 'DELETE'], true),
            PARAMS.tusResumable,
            param('Upload-Offset', 'header', 'PATCH: as on a PATCH.', { type: 'string', pattern: '^\\d+$' }),
            param('Content-Type', 'header', 'PATCH: `application/offset+octet-stream`.', { const: 'application/offset+octet-stream' }),
            PARAMS.uploadLength,
            PARAMS.requestId,
          ],
          requestBody: OFFSET_STREAM_BODY(false, 'PATCH: the bytes from Upload-Offset on.'),
          responses: {
            '200': {
              ...headResponse('HEAD: the offset (no body). PATCH: the last byte, the body is the artifact.'),
              [OPTIONAL_BODY]: true,
              content: json(ref('Artifact')),
            },
            '204': { description: 'PATCH: the bytes are received. DELETE: the upload is terminated.', headers: tusHeaders },
            ...tusRefusals([...HEAD_CODES, ...PATCH_CODES, ...TERMINATE_CODES], { lastByte: true }),
          },
        },
      },
      '/uploads/{id}': {
        summary: 'What became of an upload, for its owner.',
        parameters: [PARAMS.uploadId],
        get: {
          tags: ['uploads'],
          operationId: 'getUpload',
          summary: 'The upload\'s record.',
          description:
            'For a client whose final response was lost (any tus client: the id is the last segment of the upload URL). A complete upload whose finish is not running (a crash) is finished when this is asked. An unknown id, a malformed one and another subject\'s upload get the same 404.',
          security: UPLOAD_SECURITY,
          responses: {
            '200': {
              description: 'The record: receiving, processing, done (the artifact), failed, refused or deleted. Records of finished uploads carry their profile.',
              headers: { 'Cache-Control': header('`no-store`.', { const: 'no-store' }, true) },
              content: json(ref('UploadRecord')),
            },
            ...refusals(STATUS_CODES),
          },
        },
        head: {
          tags: ['uploads'],
          operationId: 'headUpload',
          summary: 'As GET, without the body.',
          security: UPLOAD_SECURITY,
          responses: {
            '200': { description: 'The upload exists and is the caller\'s.', headers: { 'Cache-Control': header('`no-store`.', { const: 'no-store' }, true) } },
            ...refusals(STATUS_CODES, { bodiless: true }),
          },
        },
        delete: {
          tags: ['uploads'],
          operationId: 'deleteArtifact',
          summary: 'Deletes the artifact from the public store (the owner only); the record then says `deleted`.',
          description:
            'Idempotent: a deleted artifact answers 204 again. An upload without an artifact (unfinished, failed, refused) gets 400; an unfinished upload is terminated with DELETE on its upload URL. Sends `artifact.deleted`.',
          security: UPLOAD_SECURITY,
          responses: {
            '204': { description: 'The artifact is deleted.' },
            ...refusals(DELETE_ARTIFACT_CODES, {
              headers: { 423: { 'Retry-After': { ...HEADERS.retryAfter, required: true } } },
              notes: { 400: '`E_BAD_REQUEST` also when the upload has no artifact to delete.', 423: 'The upload is being processed: retry in a moment.' },
            }),
          },
        },
        options: {
          tags: ['uploads'],
          operationId: 'preflightUpload',
          summary: 'CORS preflight (no credential).',
          security: [{}],
          responses: {
            '204': {
              description: 'Allowed methods GET, HEAD, DELETE; headers Authorization, Content-Type, X-Request-Id.',
              headers: {
                'Access-Control-Allow-Methods': header('`GET, HEAD, DELETE`.', { const: 'GET, HEAD, DELETE' }, true),
                'Access-Control-Max-Age': header('`86400`.', { const: '86400' }, true),
              },
            },
            ...refusals(ANY_REQUEST),
          },
        },
      },
      '/media/{key}': {
        summary: 'An artifact, served by the app when PUBLIC_STORE=file (otherwise PUBLIC_BASE_URL\'s origin serves them and this path answers 404).',
        description: 'Other methods get 400 `E_BAD_REQUEST` with `Allow: GET, HEAD`.',
        parameters: [
          param(
            'key',
            'path',
            'The artifact\'s server-made key, as in its URL: `ab/cd/<32 hex>.webp` (it contains two `/`, not to be encoded).',
            { type: 'string', pattern: KEY_PATTERN },
          ),
        ],
        get: {
          tags: ['media'],
          operationId: 'getMedia',
          summary: 'The re-encoded image: static, immutable, script-free.',
          security: [{}],
          parameters: [
            param('If-None-Match', 'header', 'A conditional GET: 304 when the ETag matches.', { type: 'string' }),
            param('If-Modified-Since', 'header', 'A conditional GET: 304 when not modified since.', { type: 'string' }),
          ],
          responses: {
            '200': {
              description: 'The image.',
              headers: {
                'Cache-Control': header('`public, max-age=<MEDIA_MAX_AGE_SECONDS>, immutable`.', { type: 'string' }, true),
                'X-Content-Type-Options': header('`nosniff`.', { const: 'nosniff' }, true),
                'Content-Security-Policy': header("`default-src 'none'; sandbox`.", { const: "default-src 'none'; sandbox" }, true),
                'Cross-Origin-Resource-Policy': header('`cross-origin`.', { const: 'cross-origin' }, true),
                'Access-Control-Allow-Origin': header('`*`.', { const: '*' }, true),
                ETag: header('A strong validator.', { type: 'string' }, true),
                'Last-Modified': header('When it was written.', { type: 'string' }, true),
              },
              content: {
                'image/webp': { schema: { type: 'string', contentMediaType: 'image/webp' } },
                'image/avif': { schema: { type: 'string', contentMediaType: 'image/avif' } },
              },
            },
            '304': { description: 'Not modified (If-None-Match or If-Modified-Since).' },
            ...refusals([...ANY_REQUEST, 'E_NOT_FOUND']),
          },
        },
        head: {
          tags: ['media'],
          operationId: 'headMedia',
          summary: 'As GET, without the body.',
          security: [{}],
          responses: {
            '200': { description: 'The image exists (Content-Type, Content-Length, ETag, Last-Modified).' },
            '304': { description: 'Not modified.' },
            ...refusals([...ANY_REQUEST, 'E_NOT_FOUND'], { bodiless: true }),
          },
        },
      },
      '/healthz': {
        get: {
          tags: ['operations'],
          operationId: 'health',
          summary: 'The process answers (no credential).',
          security: [{}],
          responses: { '200': { description: 'Alive.', content: json(ref('Health')) }, ...refusals(ANY_REQUEST) },
        },
      },
      '/readyz': {
        get: {
          tags: ['operations'],
          operationId: 'readiness',
          summary: 'Whether to send it traffic (no credential).',
          security: [{}],
          responses: {
            '200': { description: 'Ready.', content: json(ref('Readiness')) },
            '503': {
              description: 'Starting, shutting down, or busy (the finish queue is full, FINISH_QUEUE_MAX): not a refusal, the body is the status.',
              content: json(ref('Readiness')),
            },
            ...refusals(ANY_REQUEST),
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['operations'],
          operationId: 'metrics',
          summary: 'Prometheus metrics.',
          description:
            'Served here with METRICS_TOKEN (then required as a bearer token), or without it on a loopback HOST only; with METRICS_PORT it is served on that port only, and here answers 404, as it does on a non-loopback HOST without METRICS_TOKEN.',
          security: [{ metricsToken: [] }, {}],
          responses: {
            '200': {
              description: 'The Prometheus text exposition format: refusals by code and stage, gate verdicts and bytes seen, artifacts published, finish durations, locks lost, webhook attempts, HTTP requests, process.',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...refusals([...ANY_REQUEST, 'E_UNAUTHENTICATED', 'E_NOT_FOUND'], {
              headers: { 401: { 'WWW-Authenticate': header('`Bearer realm="tusgate metrics"`.', { const: 'Bearer realm="tusgate metrics"' }, true) } },
              notes: { 401: 'METRICS_TOKEN is set and was not sent.', 404: '/metrics is not served on this port.' },
            }),
          },
        },
      },
      '/openapi.json': {
        get: {
          tags: ['operations'],
          operationId: 'openApi',
          summary: 'This document.',
          security: [{}],
          responses: {
            '200': { description: 'The OpenAPI 3.1 description of this API.', content: json({
                type: 'object',
                required: ['openapi', 'info', 'paths'],
                properties: { openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' }, info: { type: 'object' }, paths: { type: 'object' } },
              }),
            },
            ...refusals(ANY_REQUEST),
          },
        },
      },
    },
    webhooks: Object.fromEntries(
      WEBHOOK_EVENT_TYPES.map((type) => [
        type,
        {
          post: {
            operationId: `webhook_${type.replace('.', '_')}`,
            summary: WEBHOOK_WHEN[type],
            description:
              'A signed POST to WEBHOOK_URL (Standard Webhooks: verify with the `standardwebhooks` package or any Svix library and WEBHOOK_SECRET). Every event is stored in an outbox before the request that caused it is answered, and delivered at least once: retried with exponential backoff and jitter for WEBHOOK_RETRY_FOR_MS with the same webhook-id (dedupe on it). An event\'s id is made from its upload and type (each happens at most once to an upload), so a finish redone after a crash that tells `artifact.published` again sends the same webhook-id.',
            externalDocs: { url: 'https://www.standardwebhooks.com/' },
            security: [{}],
            parameters: [
              param('webhook-id', 'header', 'The event\'s id (`msg_…`), the same on every attempt.', { type: 'string', pattern: '^msg_[0-9A-Za-z]{1,64}$' }, true),
              param('webhook-timestamp', 'header', 'The attempt\'s time, in seconds since the epoch (signed).', { type: 'string', pattern: '^\\d+$' }, true),
              param('webhook-signature', 'header', '`v1,<base64 HMAC-SHA256>` of `<id>.<timestamp>.<body>` with the secret\'s bytes.', { type: 'string', pattern: '^v1,' }, true),
            ],
            requestBody: { required: true, content: json(ref(WEBHOOK_SCHEMA_NAMES[type])) },
            responses: {
              '2XX': { description: 'Delivered.' },
              default: { description: 'Anything else (or no answer within WEBHOOK_TIMEOUT_MS): retried.' },
            },
          },
        },
      ]),
    ),
    components: {
      schemas,
      securitySchemes: {
        bearerJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'AUTH_MODE=jwt: a JWT verified with AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL (RS256, ES256, EdDSA); `exp` required; `sub` is the owner, `profile` selects an upload profile, `meta` is attached to the upload. A fresh token for the same `sub` resumes an upload.',
        },
        authHookBearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'AUTH_MODE=hook: the Authorization header is sent to AUTH_HOOK_URL, which says whose it is (200 `{ sub, profile?, meta? }`), or refuses (401 → 401, 403 → 403); a hook that is down → 503.',
        },
        authHookCookie: {
          type: 'apiKey',
          in: 'cookie',
          name: 'session',
          description: 'AUTH_MODE=hook: the Cookie header (whatever the application\'s session cookie is called) is sent to AUTH_HOOK_URL, which says whose it is.',
        },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, when it is set.' },
      },
    },
  };
}
