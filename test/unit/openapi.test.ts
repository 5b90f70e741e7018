/**
 * The OpenAPI document (server/openapi.ts): a valid OpenAPI 3.1 document
 * (@seriousme/openapi-schema-validator), every schema in it valid JSON Schema 2020-12 (ajv,
 * strict), every error code and status of hooks/errors.ts in it, the webhook payloads the
 * producer makes accepted by their schemas, and the response checker the e2e tests use.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, type ErrorCode } from '../../hooks/errors.ts';
import { artifactKey, isId, newId } from '../../storage/keys.ts';
import { WEBHOOK_EVENT_TYPES, eventBody, newEvent } from '../../storage/webhook-events.ts';
import { ERROR_CODES, openApiDocument, type JsonObject } from '../../server/openapi.ts';
import { createChecker } from '../support/openapi-check.ts';

const doc = openApiDocument();
const checker = createChecker(doc);

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];

/** Every operation of the document's paths, as [label, operation]. */
function operations(document: JsonObject): Array<[string, JsonObject]> {
  const found: Array<[string, JsonObject]> = [];
  for (const [path, item] of Object.entries(document.paths as JsonObject)) {
    for (const [method, op] of Object.entries(item as JsonObject)) {
      if (METHODS.includes(method) && isObject(op)) found.push([`${method.toUpperCase()} ${path}`, op]);
    }
  }
  return found;
}

/** The codes an error response's body is narrowed to (refusals() in server/openapi.ts). */
function codesOf(response: JsonObject): string[] {
  const content = response.content as JsonObject | undefined;
  const schema = (content?.['application/json'] as JsonObject | undefined)?.schema as JsonObject | undefined;
  const allOf = (schema?.allOf ?? []) as JsonObject[];
  const narrowed = allOf.find((part) => isObject(part.properties));
  const code = ((narrowed?.properties as JsonObject | undefined)?.error as JsonObject | undefined)?.properties as JsonObject | undefined;
  return ((code?.code as JsonObject | undefined)?.enum ?? []) as string[];
}

function every$ref(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const inner of value) every$ref(inner, found);
  else if (isObject(value)) {
    for (const [key, inner] of Object.entries(value)) {
      if (key === '$ref' && typeof inner === 'string') found.push(inner);
      else every$ref(inner, found);
    }
  }
  return found;
}

function pointer(document: JsonObject, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let at: unknown = document;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~');
    at = isObject(at) ? at[key] : undefined;
  }
  return at;
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('is plain JSON: what GET /openapi.json sends is the object itself', () => {
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('has only schemas that are valid JSON Schema 2020-12 (ajv, strict), every $ref resolving', () => {
    // the OpenAPI validator does not look into Schema Objects: ajv checks each against the meta-schema
    expect(checker.compileAll()).toBeGreaterThan(100);
    for (const ref of every$ref(doc)) expect(pointer(doc, ref), ref).toBeDefined();
  });

  it('enumerates every error code of hooks/errors.ts, and no other', () => {
    const schemas = (doc.components as JsonObject).schemas as JsonObject;
    expect((schemas.ErrorCode as JsonObject).enum).toEqual(Object.keys(ERROR_STATUS));
    expect(ERROR_CODES).toEqual(Object.keys(ERROR_STATUS));
  });

  it('documents every status of ERROR_STATUS as a response, each narrowed to codes of that status, every code somewhere', () => {
    const statuses = new Set<string>();
    const codes = new Set<string>();
    for (const [label, op] of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses as JsonObject)) {
        statuses.add(status);
        for (const code of codesOf(response as JsonObject)) {
          expect(String(ERROR_STATUS[code as ErrorCode]), `${label} ${status} lists ${code}`).toBe(status);
          codes.add(code);
        }
      }
    }
    for (const status of new Set(Object.values(ERROR_STATUS))) expect(statuses, `status ${status}`).toContain(String(status));
    expect([...codes].sort()).toEqual(Object.keys(ERROR_STATUS).sort());
  });

  it('describes the routes of the app, and the tus endpoint by reference to tus 1.0', () => {
    const paths = doc.paths as JsonObject;
    expect(Object.keys(paths).sort()).toEqual(['/files/', '/files/{id}', '/healthz', '/media/{key}', '/metrics', '/openapi.json', '/readyz', '/uploads/{id}']);
    expect(Object.keys(paths['/files/'] as JsonObject)).toEqual(expect.arrayContaining(['post', 'options']));
    expect(Object.keys(paths['/files/{id}'] as JsonObject)).toEqual(expect.arrayContaining(['head', 'patch', 'delete', 'post']));
    expect(doc.externalDocs).toMatchObject({ url: 'https://tus.io/protocols/resumable-upload' });
    const options = (paths['/files/'] as JsonObject).options as JsonObject;
    const extension = (((options.responses as JsonObject)['204'] as JsonObject).headers as JsonObject)['Tus-Extension'] as JsonObject;
    expect((extension.schema as JsonObject).const).toBe('creation,creation-with-upload,creation-defer-length,termination,expiration');
    const get = (paths['/uploads/{id}'] as JsonObject).get as JsonObject;
    expect(get.security).toEqual([{ bearerJwt: [] }, { authHookBearer: [] }, { authHookCookie: [] }, {}]);
  });

  it('takes the id and media key patterns the server uses', () => {
    const id = newId();
    checker.operation('GET', `/uploads/${id}`);
    checker.operation('HEAD', `/files/${id}`);
    checker.operation('GET', `/media/${artifactKey(newId(), 'webp')}`);
    checker.operation('GET', `/media/${artifactKey(newId(), 'avif')}`);
    for (const bad of ['ABCDEF0123456789abcdef0123456789', `${id}0`, 'nope']) {
      expect(isId(bad)).toBe(false);
      expect(() => checker.operation('GET', `/uploads/${bad}`)).toThrow(/describes no path/);
    }
  });

  it('mentions the configuration it is given, and is otherwise the same', () => {
    const here = openApiDocument({ authMode: 'jwt', MAX_UPLOAD_BYTES: 1024, UPLOAD_EXPIRES_AFTER_MS: 0 });
    expect((here.info as JsonObject).description).toContain('AUTH_MODE=jwt, MAX_UPLOAD_BYTES=1024, UPLOAD_EXPIRES_AFTER_MS=0');
    expect(here.paths).toEqual(doc.paths);
    expect(here.components).toEqual(doc.components);
    expect(here.webhooks).toEqual(doc.webhooks);
  });
});

describe('the webhooks', () => {
  const webhooks = doc.webhooks as JsonObject;
  const artifact = {
    id: newId(),
    url: 'http://127.0.0.1:1080/media/ab/cd/abcd.webp',
    key: 'ab/cd/abcd.webp', // a storage key: newEvent drops it
    format: 'webp' as const,
    width: 10,
    height: 20,
    bytes: 300,
    original: { bytes: 4000, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
  };
  const base = { uploadId: newId(), owner: 'user-a', profile: 'default', meta: { team: 'x' }, metadata: { filename: 'a.jpg' } };
  const error = { code: 'E_TYPE_UNKNOWN', message: 'no' };

  /** Validates a webhook body against its documented request body schema (through a throw-away operation). */
  function validateWebhook(type: string, body: unknown): void {
    const post = (webhooks[type] as JsonObject).post as JsonObject;
    const schema = ((((post.requestBody as JsonObject).content as JsonObject)['application/json'] as JsonObject).schema) as JsonObject;
    const probe = createChecker({
      ...doc,
      paths: { '/probe': { post: { responses: { '200': { description: 'probe', content: { 'application/json': { schema } } } } } } },
    });
    probe.checkResponse('POST', '/probe', 200, body);
  }

  it('are the six event types, each a POST with the Standard Webhooks headers', () => {
    expect(Object.keys(webhooks)).toEqual([...WEBHOOK_EVENT_TYPES]);
    for (const type of WEBHOOK_EVENT_TYPES) {
      const post = (webhooks[type] as JsonObject).post as JsonObject;
      expect((post.parameters as JsonObject[]).map((parameter) => parameter.name)).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-signature']);
    }
  });

  it('accept the bodies the producer makes (newEvent, eventBody), and refuse what a type lacks', () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    const bodies = {
      'upload.created': newEvent('upload.created', base, at),
      'upload.refused': newEvent('upload.refused', { ...base, error }, at),
      'upload.failed': newEvent('upload.failed', { ...base, owner: null, profile: null, error }, at),
      'artifact.published': newEvent('artifact.published', { ...base, artifact }, at),
      'upload.expired': newEvent('upload.expired', base, at),
      'artifact.deleted': newEvent('artifact.deleted', { ...base, artifact }, at),
    };
    for (const [type, event] of Object.entries(bodies)) validateWebhook(type, eventBody(event));
    validateWebhook('artifact.deleted', eventBody(newEvent('artifact.deleted', base, at)));
    expect(() => validateWebhook('artifact.published', eventBody(newEvent('upload.created', base, at)))).toThrow(/does not match/);
    expect(() => validateWebhook('upload.refused', JSON.stringify({ type: 'upload.refused', timestamp: at.toISOString(), data: base }))).toThrow(/error/);
    expect(() => validateWebhook('upload.created', JSON.stringify({ type: 'upload.created', timestamp: 'yesterday', data: base }))).toThrow(/date-time/);
  });
});

describe('the response checker', () => {
  const id = newId();
  const done = {
    state: 'done',
    id,
    url: 'http://x/media/a.webp',
    format: 'webp',
    width: 1,
    height: 2,
    bytes: 3,
    original: { bytes: 4, sha256: 'ab' },
    profile: 'default',
  };

  it('accepts what the document describes', () => {
    expect(checker.checkResponse('GET', '/uploads/{id}', 200, JSON.stringify(done), { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })).toEqual(done);
    checker.checkResponse('GET', `/uploads/${id}`, 200, { id, state: 'receiving', offset: 0, size: null });
    checker.checkResponse('GET', '/uploads/{id}', 404, { error: { code: 'E_NOT_FOUND', message: 'There is no upload with this id.' } });
    checker.checkResponse('PATCH', '/files/{id}', 204, '');
    checker.checkResponse('POST', '/files/', 201, '');
    checker.checkResponse('HEAD', '/files/{id}', 410, '');
    checker.checkResponse('GET', '/readyz', 503, { status: 'busy' });
  });

  it('throws for what it does not describe', () => {
    expect(() => checker.checkResponse('GET', '/healthz', 418, { status: 'ok' })).toThrow(/does not describe this status/);
    expect(() => checker.checkResponse('GET', '/nowhere', 404, {})).toThrow(/describes no path/);
    expect(() => checker.checkResponse('PUT', '/uploads/{id}', 200, {})).toThrow(/describes no PUT/);
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 200, { ...done, key: 'ab/cd/x.webp' })).toThrow(/does not match/);
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 200, { id, state: 'lost' })).toThrow(/does not match/);
    // a code of another status, or none of the codes
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 404, { error: { code: 'E_GONE', message: 'x' } })).toThrow(/does not match/);
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 404, { error: { code: 'E_NOPE', message: 'x' } })).toThrow(/does not match/);
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 200, '')).toThrow(/none came/);
    expect(() => checker.checkResponse('PATCH', '/files/{id}', 204, 'text')).toThrow(/describes no body/);
    expect(() => checker.checkResponse('GET', '/healthz', 200, '<html>')).toThrow(/not JSON/);
    expect(() => checker.checkResponse('GET', '/healthz', 200, '{"status":"ok"}', { 'content-type': 'text/html' })).toThrow(/Content-Type/);
    expect(() => checker.checkResponse('GET', '/uploads/{id}', 200, done, { 'content-type': 'application/json' })).toThrow(/Cache-Control is missing/);
    expect(() => checker.checkResponse('POST', '/files/', 412, { error: { code: 'E_TUS_VERSION', message: 'x' } }, { 'content-type': 'application/json' })).toThrow(
      /Tus-Version is missing/,
    );
  });
});
