/**
 * tus 1.0 where bare @tus/server departs from it, ids, metadata bounds, termination,
 * discovery: raw HTTP requests, so every header is the test's own.
 */
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch, request, TUS } from '../support/http.ts';
import { startServer, type RunningServer } from '../support/server.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});

const code = (res: { json<T>(): T }) => res.json<{ error: { code: string } }>().error.code;

describe('Tus-Resumable', () => {
  it.each([
    ['POST', undefined],
    ['POST', '0.2.2'],
    ['PATCH', undefined],
    ['HEAD', '2.0.0'],
    ['DELETE', undefined],
  ])('%s with Tus-Resumable %s gets 412 with Tus-Version', async (method, version) => {
    const url = method === 'POST' ? server.endpoint : `${server.endpoint}${'a'.repeat(32)}`;
    const res = await request(url, { method, headers: version ? { 'Tus-Resumable': version, 'Upload-Length': '10' } : { 'Upload-Length': '10' } });
    expect(res.status).toBe(412);
    expect(res.headers['tus-version']).toBe('1.0.0');
    if (method !== 'HEAD') expect(code(res)).toBe('E_TUS_VERSION');
  });

  it('OPTIONS needs no Tus-Resumable and advertises the server', async () => {
    const res = await request(server.endpoint, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers['tus-version']).toBe('1.0.0');
    expect(res.headers['tus-max-size']).toBe(String(50 * 1024 * 1024));
    expect(res.headers['tus-extension']).toContain('creation');
    expect(res.headers['tus-extension']).toContain('termination');
    expect(res.headers['tus-extension']).toContain('expiration');
  });
});

describe('PATCH Content-Type', () => {
  it.each([[undefined], ['application/octet-stream'], ['text/plain']])('Content-Type %s gets 415', async (type) => {
    const url = await create(server.endpoint, 100);
    const headers: Record<string, string> = { ...TUS, 'Upload-Offset': '0' };
    if (type) headers['Content-Type'] = type;
    const res = await request(url, { method: 'PATCH', headers, body: Buffer.alloc(100) });
    expect(res.status).toBe(415);
    expect(code(res)).toBe('E_CONTENT_TYPE');
    expect((await head(url)).headers['upload-offset']).toBe('0');
  });
});

describe('X-HTTP-Method-Override', () => {
  it('a POST overridden to PATCH goes through the same gate', async () => {
    const image = await fixtures.png(64, 64);
    const url = await create(server.endpoint, image.length);
    const headers = { ...TUS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' };
    const res = await request(url, { method: 'POST', headers, body: image });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ format: 'webp', width: 64, height: 64 });

    const junk = fixtures.randomBytesOf(20_000);
    const other = await create(server.endpoint, junk.length);
    const refused = await request(other, { method: 'POST', headers, body: junk });
    expect(refused.status).toBe(415);
    expect(code(refused)).toBe('E_TYPE_UNKNOWN');
  });

  it('an overridden PATCH still needs the right Content-Type, and HEAD/DELETE overrides work', async () => {
    const url = await create(server.endpoint, 1000);
    const wrongType = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '0' }, body: Buffer.alloc(10) });
    expect(wrongType.status).toBe(415);
    const viaHead = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'HEAD' } });
    expect(viaHead.status).toBe(200);
    expect(viaHead.headers['upload-offset']).toBe('0');
    const viaDelete = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } });
    expect(viaDelete.status).toBe(204);
    expect((await head(url)).status).toBe(404);
    const bogus = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'TRACE' } });
    expect(bogus.status).toBe(400);
  });

  it('a refused POST overridden to HEAD still gets the whole JSON body its headers announce (the wire method is POST)', async () => {
    const asHead = { ...TUS, 'X-HTTP-Method-Override': 'HEAD' };
    for (const url of [server.endpoint, `${server.endpoint}${'0'.repeat(32)}`]) {
      const res = await request(url, { method: 'POST', headers: asHead });
      expect(res.status).toBe(404);
      expect(code(res)).toBe('E_NOT_FOUND');
      if (res.headers['content-length'] !== undefined) expect(Buffer.byteLength(res.body)).toBe(Number(res.headers['content-length']));
    }
  });
});

describe('ids and urls', () => {
  it('an unknown id gets 404 with a JSON body', async () => {
    const res = await head(`${server.endpoint}${'0'.repeat(32)}`);
    expect(res.status).toBe(404);
    const patched = await patch(`${server.endpoint}${'0'.repeat(32)}`, 0, Buffer.alloc(10));
    expect(patched.status).toBe(404);
    expect(code(patched)).toBe('E_NOT_FOUND');
    const status = await request(`${server.url}/uploads/${'0'.repeat(32)}`);
    expect(status.status).toBe(404);
  });

  it.each(['..%2F..%2Fetc%2Fpasswd', 'ABC', 'a'.repeat(33), '%00', 'x/y'])('a malformed id (%s) is refused before any store is touched', async (id) => {
    const res = await request(`${server.endpoint}${id}`, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: Buffer.alloc(4) });
    expect(res.status).toBe(404);
    expect(code(res)).toBe('E_NOT_FOUND');
  });

  it('an upload URL cannot be downloaded', async () => {
    const url = await create(server.endpoint, 10);
    const res = await request(url);
    expect([res.status, code(res)]).toEqual([404, 'E_NOT_FOUND']);
  });

  it('ids are server-made: 128 random bits in hex', async () => {
    const urls = await Promise.all([1, 2, 3].map(() => create(server.endpoint, 10)));
    for (const url of urls) expect(url).toMatch(/\/files\/[0-9a-f]{32}$/);
    expect(new Set(urls).size).toBe(3);
  });
});

describe('creation', () => {
  it('bounds Upload-Metadata', async () => {
    const big = `filename ${Buffer.from('x'.repeat(5000)).toString('base64')}`;
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '100', 'Upload-Metadata': big } });
    expect(res.status).toBe(400);
    expect(code(res)).toBe('E_METADATA_INVALID');
    expect(res.json<{ error: { message: string } }>().error.message).toContain('MAX_METADATA_BYTES');
    const malformed = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '100', 'Upload-Metadata': 'a b c d,,' } });
    expect(malformed.status).toBe(400);
    expect(code(malformed)).toBe('E_METADATA_INVALID');
  });

  it('a deferred length is capped by the maximum', async () => {
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1' } });
    expect(res.status).toBe(201);
    const url = String(res.headers.location);
    const declare = await patch(url, 0, Buffer.alloc(0), { 'Upload-Length': String(50 * 1024 * 1024 + 1) });
    expect(declare.status).toBe(413);
    expect(code(declare)).toBe('E_UPLOAD_TOO_LARGE');
  });

  it('creation-with-upload that completes in the POST answers 201 with the Location and the artifact', async () => {
    const image = await fixtures.jpeg(200, 100);
    const res = await request(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(image.length), 'Content-Type': 'application/offset+octet-stream' },
      body: image,
    });
    expect(res.status).toBe(201);
    expect(res.headers.location).toMatch(/\/files\/[0-9a-f]{32}$/);
    expect(res.json()).toMatchObject({ format: 'webp', width: 200, height: 100 });
  });

  it('creation-with-upload of a disguised file is refused in the POST', async () => {
    const junk = fixtures.randomBytesOf(10_000);
    const res = await request(server.endpoint, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(junk.length), 'Content-Type': 'application/offset+octet-stream' },
      body: junk,
    });
    expect(res.status).toBe(415);
    expect(code(res)).toBe('E_TYPE_UNKNOWN');
  });
});

describe('offsets, termination, expiration', () => {
  it('a wrong Upload-Offset gets 409 and leaves the upload as it was', async () => {
    const image = await fixtures.png(32, 32);
    const url = await create(server.endpoint, image.length);
    const res = await patch(url, 5, image.subarray(5));
    expect(res.status).toBe(409);
    expect(code(res)).toBe('E_OFFSET_MISMATCH');
    expect((await head(url)).headers['upload-offset']).toBe('0');
  });

  it('an unfinished upload can be terminated; a finished one cannot', async () => {
    const image = await fixtures.jpegWithLargeApp1(40 * 1024);
    const url = await create(server.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 10_000))).status).toBe(204); // held back by the gate
    expect((await head(url)).headers['upload-offset']).toBe('10000');
    const removed = await request(url, { method: 'DELETE', headers: { ...TUS } });
    expect(removed.status).toBe(204);
    expect((await head(url)).status).toBe(404);

    const done = await create(server.endpoint, image.length);
    expect((await patch(done, 0, image)).status).toBe(200);
    const refused = await request(done, { method: 'DELETE', headers: { ...TUS } });
    expect(refused.status).toBe(400);
    expect(code(refused)).toBe('E_UPLOAD_COMPLETE');
  });

  it('responses to an unfinished upload carry Upload-Expires', async () => {
    const image = await fixtures.png(32, 32);
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } });
    expect(new Date(String(res.headers['upload-expires'])).getTime()).toBeGreaterThan(Date.now());
  });
});

describe('the rest of the app', () => {
  it('serves health and readiness', async () => {
    expect((await request(`${server.url}/healthz`)).status).toBe(200);
    const ready = await request(`${server.url}/readyz`);
    expect([ready.status, ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  it('answers unknown routes and media with JSON 404s', async () => {
    const res = await request(`${server.url}/nothing`);
    expect([res.status, code(res)]).toEqual([404, 'E_NOT_FOUND']);
    const media = await request(`${server.url}/media/../../etc/passwd`);
    expect(media.status).toBe(404);
    const missing = await request(`${server.url}/media/ab/cd/${'a'.repeat(32)}.webp`);
    expect([missing.status, code(missing)]).toEqual([404, 'E_NOT_FOUND']);
  });

  it('answers requests Node cannot parse with a JSON refusal too: 400 for broken HTTP, 431 for huge headers', async () => {
    const garbage = await rawExchange(server.port, '<html>\r\n\r\n');
    expect([garbage.status, garbage.json?.error.code]).toEqual([400, 'E_BAD_REQUEST']);
    const huge = await rawExchange(server.port, `HEAD /files/${'0'.repeat(32)} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect([huge.status, huge.json?.error.code]).toEqual([431, 'E_HEADERS_TOO_LARGE']);
    expect(huge.json?.error.message).toContain('16384 bytes');
    await server.waitForLog((line) => line.msg === 'malformed request' && line.code === 'E_HEADERS_TOO_LARGE');
  });

  it('gives 408 with a JSON body to headers that never end (HEADERS_TIMEOUT_MS)', async () => {
    const slow = await startServer({ env: { HEADERS_TIMEOUT_MS: '1000' } });
    try {
      const started = Date.now();
      const res = await rawExchange(slow.port, 'POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n');
      expect([res.status, res.json?.error.code]).toEqual([408, 'E_REQUEST_TIMEOUT']);
      expect(res.json?.error.message).toContain('HEADERS_TIMEOUT_MS');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await slow.stop();
      fs.rmSync(slow.dataDir, { recursive: true, force: true });
    }
  });

  it('never answers with a stack trace', () => {
    for (const line of server.logs) {
      if (line.msg === 'request') expect(line.status).toBeLessThan(500);
    }
  });
});

describe('metrics', () => {
  it('counts refusals by code and stage at /metrics', async () => {
    const res = await request(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/tusgate_refusals_total\{code="E_TYPE_UNKNOWN",stage="gate"\} [1-9]/);
    expect(res.body).toMatch(/tusgate_refusals_total\{code="E_TUS_VERSION",stage="protocol"\} [1-9]/);
    expect(res.body).toMatch(/tusgate_artifacts_published_total\{format="webp"\} [1-9]/);
    expect(res.body).toContain('tusgate_finish_waiting');
  });
});

interface RawExchange {
  status: number;
  json?: { error: { code: string; message: string } };
}

/** Writes `text` on a fresh socket as is (no HTTP client in between) and reads the whole answer until the server closes. */
function rawExchange(port: number, text: string): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 15 s')), 15_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const answer = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const length = Number(/^content-length: *(\d+)/im.exec(head)?.[1] ?? -1);
      if (length !== Buffer.byteLength(body)) reject(new Error(`announced ${length} body bytes, got ${Buffer.byteLength(body)}: ${answer.slice(0, 300)}`));
      else resolve({ status, json: body ? (JSON.parse(body) as RawExchange['json']) : undefined });
    });
    socket.write(text);
  });
}
