/**
 * The OpenAPI document (server/openapi.ts, served at /openapi.json) against a real server:
 * real requests (tus-js-client and raw HTTP on 127.0.0.1), and every response's status,
 * body and headers checked with checkResponse (test/support/openapi-check.ts), which fails
 * on anything the document does not describe. Two servers: AUTH_MODE=none (the default on
 * loopback) and AUTH_MODE=jwt with METRICS_TOKEN, for the 401s.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { request, TUS, type RawResponse } from '../support/http.ts';
import { bearer, signHs256 } from '../support/identity.ts';
import { checkResponse, createChecker } from '../support/openapi-check.ts';
import { startServer, type RunningServer } from '../support/server.ts';
import { upload, type UploadOutcome } from '../support/tus.ts';
import { openApiDocument, type JsonObject } from '../../server/openapi.ts';

const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };
const UNKNOWN_ID = '0'.repeat(32);

/** Every (method, path, status) checked, to see at the end that the interesting ones were. */
const seen = new Set<string>();

interface Call {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

/** A raw request whose response is checked against the document for `template` (the method sent on the wire). */
async function call(template: string, url: string, options: Call = {}): Promise<RawResponse> {
  const method = options.method ?? 'GET';
  const res = await request(url, { method, headers: options.headers, body: options.body });
  checkResponse(method, template, res.status, res.body, res.headers);
  seen.add(`${method} ${template} ${res.status}`);
  return res;
}

/** The last response tus-js-client saw, checked against the document (the client gives its status and body only). */
function checkOutcome(method: string, template: string, outcome: UploadOutcome): void {
  if (outcome.status === null) throw new Error(`the upload got no response: ${String(outcome.error)}`);
  const body = outcome.body === null ? '' : typeof outcome.body === 'string' ? outcome.body : JSON.stringify(outcome.body);
  checkResponse(method, template, outcome.status, body);
  seen.add(`${method} ${template} ${outcome.status}`);
}

const idOf = (url: string | null): string => {
  const id = url?.split('/').pop();
  if (!id) throw new Error('the upload was not created');
  return id;
};

async function until<T>(what: string, get: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopAndClean(server: RunningServer | undefined): Promise<void> {
  if (!server) return;
  await server.stop();
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}

describe('AUTH_MODE=none', () => {
  let server: RunningServer;
  let image: Buffer;
  const uploads = (id: string) => `${server.url}/uploads/${id}`;

  beforeAll(async () => {
    server = await startServer();
    image = await fixtures.jpeg(640, 480);
  });

  afterAll(async () => {
    await stopAndClean(server);
  });

  it('serves the document it is checked against, valid against itself', async () => {
    const res = await call('/openapi.json', `${server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const served = res.json<JsonObject>();
    const local = openApiDocument();
    // the same API: only the description of this server's configuration differs
    expect(served.paths).toEqual(local.paths);
    expect(served.components).toEqual(local.components);
    expect(served.webhooks).toEqual(local.webhooks);
    expect((served.info as JsonObject).description).toContain('AUTH_MODE=none');
    // what a client that only has the served document would check
    const fromServed = createChecker(served);
    fromServed.checkResponse('GET', '/healthz', 200, '{"status":"ok"}');
    // POST is not described on /openapi.json
    expect(() => checkResponse('POST', '/openapi.json', 200, '{}')).toThrow(/describes no POST/);
  });

  it('answers /healthz, /readyz and /metrics as described', async () => {
    expect((await call('/healthz', `${server.url}/healthz`)).status).toBe(200);
    const ready = await until('ready', async () => {
      const res = await call('/readyz', `${server.url}/readyz`);
      return res.status === 200 ? res : undefined;
    });
    expect(ready.json()).toEqual({ status: 'ready' });
    const metrics = await call('/metrics', `${server.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('tusgate_');
  });

  it('describes OPTIONS /files/: the extensions offered', async () => {
    const res = await call('/files/', server.endpoint, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers['tus-extension']).toBe('creation,creation-with-upload,creation-defer-length,termination,expiration');
  });

  it('a completed upload with tus-js-client: the final PATCH is the artifact, and so is the record', async () => {
    const outcome = await upload(server.endpoint, image, { chunkSize: 16 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    checkOutcome('PATCH', '/files/{id}', outcome);
    const id = idOf(outcome.url);
    const record = await call('/uploads/{id}', uploads(id));
    expect(record.json()).toMatchObject({ state: 'done', id, profile: 'default' });
    expect((await call('/uploads/{id}', uploads(id), { method: 'HEAD' })).status).toBe(200);
    // HEAD after completion: Upload-Offset = Upload-Length
    const head = await call('/files/{id}', `${server.endpoint}${id}`, { method: 'HEAD', headers: TUS });
    expect([head.status, head.headers['upload-offset']]).toEqual([200, String(image.length)]);

    // the artifact, conditional GET, HEAD; an unknown key
    const url = (outcome.body as { url: string }).url;
    const key = new URL(url).pathname.slice('/media/'.length);
    const media = await call('/media/{key}', url);
    expect([media.status, media.headers['content-type']]).toEqual([200, 'image/webp']);
    expect((await call('/media/{key}', url, { headers: { 'If-None-Match': String(media.headers.etag) } })).status).toBe(304);
    expect((await call('/media/{key}', url, { method: 'HEAD' })).status).toBe(200);
    const missing = await call('/media/{key}', `${server.url}/media/${key.replace(/[0-9a-f]{32}/, UNKNOWN_ID)}`);
    expect(missing.status).toBe(404);

    // a complete upload cannot be terminated; its artifact is deleted on /uploads/{id}
    const terminate = await call('/files/{id}', `${server.endpoint}${id}`, { method: 'DELETE', headers: TUS });
    expect([terminate.status, terminate.json()]).toEqual([400, { error: expect.objectContaining({ code: 'E_UPLOAD_COMPLETE' }) }]);
    expect((await call('/uploads/{id}', uploads(id), { method: 'DELETE' })).status).toBe(204);
    expect((await call('/uploads/{id}', uploads(id))).json()).toMatchObject({ state: 'deleted', id });
    expect((await call('/uploads/{id}', uploads(id), { method: 'DELETE' })).status).toBe(204);
    expect((await call('/media/{key}', url)).status).toBe(404);
  });

  it('raw tus: creation, a PATCH, HEAD and the receiving record, the final PATCH', async () => {
    const created = await call('/files/', server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(image.length), 'Upload-Metadata': `filename ${Buffer.from('a.jpg').toString('base64')}` },
    });
    expect(created.status).toBe(201);
    const url = String(created.headers.location);
    const id = idOf(url);
    const half = Math.floor(image.length / 2);
    const first = await call('/files/{id}', url, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': '0' }, body: image.subarray(0, half) });
    expect(first.status).toBe(204);
    const head = await call('/files/{id}', url, { method: 'HEAD', headers: TUS });
    expect(head.headers['upload-offset']).toBe(String(half));
    const receiving = await call('/uploads/{id}', uploads(id));
    expect(receiving.json()).toEqual({ id, state: 'receiving', offset: half, size: image.length });
    // an upload still receiving has no artifact to delete
    expect((await call('/uploads/{id}', uploads(id), { method: 'DELETE' })).status).toBe(400);
    const wrongOffset = await call('/files/{id}', url, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': '0' }, body: image.subarray(0, 10) });
    expect(wrongOffset.status).toBe(409);
    const last = await call('/files/{id}', url, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': String(half) }, body: image.subarray(half) });
    expect(last.status).toBe(200);
    expect(last.json()).toMatchObject({ id, format: 'webp', width: 640, height: 480 });
  });

  it('creation-with-upload: a POST with every byte answers 201 with the artifact; with some, 201 and no body', async () => {
    const whole = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, ...OCTETS, 'Upload-Length': String(image.length) }, body: image });
    expect(whole.status).toBe(201);
    expect(whole.json()).toMatchObject({ format: 'webp', id: idOf(String(whole.headers.location)) });
    const some = await call('/files/', server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...OCTETS, 'Upload-Length': String(image.length) },
      body: image.subarray(0, 1000),
    });
    expect([some.status, some.body, some.headers['upload-offset']]).toEqual([201, '', '1000']);
    // and a deferred length, terminated while unfinished
    const deferred = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1' } });
    const deferredUrl = String(deferred.headers.location);
    expect((await call('/uploads/{id}', uploads(idOf(deferredUrl)))).json()).toMatchObject({ state: 'receiving', offset: 0, size: null });
    expect((await call('/files/{id}', deferredUrl, { method: 'DELETE', headers: TUS })).status).toBe(204);
    expect((await call('/files/{id}', deferredUrl, { method: 'HEAD', headers: TUS })).status).toBe(404);
  });

  it('X-HTTP-Method-Override: a POST stands for HEAD, PATCH and DELETE', async () => {
    const url = String((await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } })).headers.location);
    const asHead = await call('/files/{id}', url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'HEAD' } });
    expect([asHead.status, asHead.headers['upload-offset']]).toEqual([200, '0']);
    const asPatch = await call('/files/{id}', url, {
      method: 'POST',
      headers: { ...TUS, ...OCTETS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '0' },
      body: image,
    });
    expect(asPatch.status).toBe(200);
    expect(asPatch.json()).toMatchObject({ format: 'webp' });
    const other = String((await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '100' } })).headers.location);
    expect((await call('/files/{id}', other, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } })).status).toBe(204);
    const bogus = await call('/files/{id}', other, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'TRACE' } });
    expect(bogus.json()).toMatchObject({ error: { code: 'E_BAD_REQUEST' } });
    // a POST to an upload URL without the override
    expect((await call('/files/{id}', other, { method: 'POST', headers: TUS })).status).toBe(404);
  });

  it('a refused upload with tus-js-client: the gate\'s refusal, the refused record, 410 afterwards', async () => {
    const junk = fixtures.randomBytesOf(300_000);
    const outcome = await upload(server.endpoint, junk, { metadata: { filename: 'holiday.jpg', filetype: 'image/jpeg' } });
    expect(outcome.status).toBe(415);
    checkOutcome('PATCH', '/files/{id}', outcome);
    const id = idOf(outcome.url);
    const record = await until('the refused record', async () => {
      const res = await call('/uploads/{id}', uploads(id));
      return res.json<{ state: string }>().state === 'refused' ? res : undefined;
    });
    expect(record.json()).toMatchObject({ id, state: 'refused', error: { code: 'E_TYPE_UNKNOWN' } });
    expect((await call('/files/{id}', `${server.endpoint}${id}`, { method: 'HEAD', headers: TUS })).status).toBe(410);
    const again = await call('/files/{id}', `${server.endpoint}${id}`, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': '0' }, body: junk.subarray(0, 100) });
    expect(again.json()).toMatchObject({ error: { code: 'E_UPLOAD_REFUSED' } });
    // a refused upload has no artifact to delete
    expect((await call('/uploads/{id}', uploads(id), { method: 'DELETE' })).status).toBe(400);

    // refused at creation by its declared type; a pixel bomb by the gate
    const html = await upload(server.endpoint, fixtures.htmlPage(), { metadata: { filename: 'page.html', filetype: 'text/html' } });
    expect(html.status).toBe(415);
    checkOutcome('POST', '/files/', html);
    const bomb = await upload(server.endpoint, fixtures.pngBomb(65535, 65535, 4), { metadata: { filename: 'bomb.png' } });
    expect(bomb.status).toBe(422);
    checkOutcome('PATCH', '/files/{id}', bomb);
  });

  it('a failed upload: the finish\'s refusal on the last PATCH, and the failed record', async () => {
    const outcome = await upload(server.endpoint, fixtures.truncated(await fixtures.jpeg(1200, 900), 0.6), { metadata: { filename: 'cut.jpg' } });
    expect(outcome.status).toBe(422);
    checkOutcome('PATCH', '/files/{id}', outcome);
    const record = await call('/uploads/{id}', uploads(idOf(outcome.url)));
    expect(record.json()).toMatchObject({ state: 'failed', error: { code: 'E_IMAGE_CORRUPT' } });
  });

  it('unknown and malformed ids', async () => {
    expect((await call('/uploads/{id}', uploads(UNKNOWN_ID))).status).toBe(404);
    expect((await call('/uploads/{id}', uploads(UNKNOWN_ID), { method: 'DELETE' })).status).toBe(404);
    expect((await call('/uploads/{id}', uploads(UNKNOWN_ID), { method: 'HEAD' })).status).toBe(404);
    expect((await call('/uploads/{id}', uploads(UNKNOWN_ID), { method: 'OPTIONS' })).status).toBe(204);
    // a malformed id is checked as the template (the document's pattern does not match it)
    expect((await call('/uploads/{id}', uploads('not-an-id'))).status).toBe(404);
    expect((await call('/files/{id}', `${server.endpoint}${UNKNOWN_ID}`, { method: 'HEAD', headers: TUS })).status).toBe(404);
    const patched = await call('/files/{id}', `${server.endpoint}${UNKNOWN_ID}`, { method: 'PATCH', headers: { ...TUS, ...OCTETS, 'Upload-Offset': '0' }, body: 'x' });
    expect(patched.json()).toMatchObject({ error: { code: 'E_NOT_FOUND' } });
  });

  it('tus refusal bodies: version, content type, metadata, size, empty, concatenation', async () => {
    const noVersion = await call('/files/', server.endpoint, { method: 'POST', headers: { 'Upload-Length': '10' } });
    expect([noVersion.status, noVersion.headers['tus-version']]).toEqual([412, '1.0.0']);
    const url = String((await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } })).headers.location);
    const wrongType = await call('/files/{id}', url, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'image/jpeg' }, body: 'x' });
    expect(wrongType.json()).toMatchObject({ error: { code: 'E_CONTENT_TYPE' } });
    const noOffset = await call('/files/{id}', url, { method: 'PATCH', headers: { ...TUS, ...OCTETS }, body: 'x' });
    expect(noOffset.json()).toMatchObject({ error: { code: 'E_BAD_REQUEST' } });
    const badMetadata = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Metadata': 'a b c d,,' } });
    expect(badMetadata.json()).toMatchObject({ error: { code: 'E_METADATA_INVALID' } });
    const tooLarge = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(2 ** 40) } });
    expect(tooLarge.json()).toMatchObject({ error: { code: 'E_UPLOAD_TOO_LARGE' } });
    const empty = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '0' } });
    expect(empty.json()).toMatchObject({ error: { code: 'E_EMPTY_UPLOAD' } });
    const both = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Defer-Length': '1' } });
    expect(both.status).toBe(400);
    const concat = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Upload-Concat': 'partial' } });
    expect(concat.json()).toMatchObject({ error: { code: 'E_NOT_IMPLEMENTED' } });
  });

  it('fails for a response the document does not describe', async () => {
    const res = await request(`${server.url}/nothing-here`);
    expect(res.status).toBe(404);
    expect(() => checkResponse('GET', '/nothing-here', res.status, res.body, res.headers)).toThrow(/describes no path/);
    const put = await request(`${server.url}/uploads/${UNKNOWN_ID}`, { method: 'PUT' });
    expect(() => checkResponse('PUT', '/uploads/{id}', put.status, put.body, put.headers)).toThrow(/describes no PUT/);
  });
});

describe('AUTH_MODE=jwt, METRICS_TOKEN', () => {
  const secret = 'openapi-contract-secret-0123456789abcdef';
  const metricsToken = 'metrics-token-0123456789abcdef';
  let server: RunningServer;
  let owned: string;

  beforeAll(async () => {
    server = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret, METRICS_TOKEN: metricsToken } });
    const token = await signHs256(secret, { sub: 'owner' });
    const created = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, ...bearer(token), 'Upload-Length': '1000' } });
    owned = idOf(String(created.headers.location));
  });

  afterAll(async () => {
    await stopAndClean(server);
  });

  it('401 without a credential or with an expired one; 404 for another subject\'s upload', async () => {
    const missing = await call('/uploads/{id}', `${server.url}/uploads/${owned}`);
    expect([missing.status, missing.headers['www-authenticate']]).toEqual([401, 'Bearer realm="tusgate"']);
    const expired = await call('/files/', server.endpoint, { method: 'POST', headers: { ...TUS, ...bearer(await signHs256(secret, { expIn: -600 })), 'Upload-Length': '10' } });
    expect(expired.status).toBe(401);
    expect((await call('/files/{id}', `${server.endpoint}${owned}`, { method: 'HEAD', headers: TUS })).status).toBe(401);
    const other = bearer(await signHs256(secret, { sub: 'someone-else' }));
    expect((await call('/uploads/{id}', `${server.url}/uploads/${owned}`, { headers: other })).status).toBe(404);
    expect((await call('/uploads/{id}', `${server.url}/uploads/${owned}`, { method: 'DELETE', headers: other })).status).toBe(404);
    const mine = bearer(await signHs256(secret, { sub: 'owner' }));
    expect((await call('/uploads/{id}', `${server.url}/uploads/${owned}`, { headers: mine })).json()).toMatchObject({ state: 'receiving' });
    // a profile the token does not grant
    const profile = await call('/files/', server.endpoint, {
      method: 'POST',
      headers: { ...TUS, ...mine, 'Upload-Length': '10', 'Upload-Metadata': `profile ${Buffer.from('avatar').toString('base64')}` },
    });
    expect(profile.json()).toMatchObject({ error: { code: 'E_PROFILE_NOT_ALLOWED' } });
  });

  it('/metrics needs METRICS_TOKEN', async () => {
    expect((await call('/metrics', `${server.url}/metrics`)).status).toBe(401);
    expect((await call('/metrics', `${server.url}/metrics`, { headers: { Authorization: `Bearer ${metricsToken}` } })).status).toBe(200);
  });
});

describe('coverage of the document by this file', () => {
  it('checked the responses the issue names', () => {
    const wanted = [
      'GET /openapi.json 200',
      'GET /healthz 200',
      'GET /readyz 200',
      'GET /metrics 200',
      'GET /metrics 401',
      'OPTIONS /files/ 204',
      'POST /files/ 201',
      'POST /files/ 400',
      'POST /files/ 401',
      'POST /files/ 403',
      'POST /files/ 412',
      'POST /files/ 413',
      'POST /files/ 415',
      'POST /files/ 422',
      'POST /files/ 501',
      'HEAD /files/{id} 200',
      'HEAD /files/{id} 401',
      'HEAD /files/{id} 404',
      'HEAD /files/{id} 410',
      'PATCH /files/{id} 200',
      'PATCH /files/{id} 204',
      'PATCH /files/{id} 400',
      'PATCH /files/{id} 404',
      'PATCH /files/{id} 409',
      'PATCH /files/{id} 410',
      'PATCH /files/{id} 415',
      'PATCH /files/{id} 422',
      'DELETE /files/{id} 204',
      'DELETE /files/{id} 400',
      'POST /files/{id} 200',
      'POST /files/{id} 204',
      'POST /files/{id} 400',
      'POST /files/{id} 404',
      'GET /uploads/{id} 200',
      'GET /uploads/{id} 401',
      'GET /uploads/{id} 404',
      'HEAD /uploads/{id} 200',
      'HEAD /uploads/{id} 404',
      'DELETE /uploads/{id} 204',
      'DELETE /uploads/{id} 400',
      'DELETE /uploads/{id} 404',
      'OPTIONS /uploads/{id} 204',
      'GET /media/{key} 200',
      'GET /media/{key} 304',
      'GET /media/{key} 404',
      'HEAD /media/{key} 200',
    ];
    expect(wanted.filter((key) => !seen.has(key))).toEqual([]);
  });
});
