/**
 * Who may upload, end to end: real tusgate processes with AUTH_MODE=jwt (a JWKS server
 * this file starts, ES256 keys made by jose; and an HS256 secret) and AUTH_MODE=hook (an
 * application's auth hook this file starts), raw HTTP on 127.0.0.1 and the real
 * tus-js-client. Ownership (another subject gets 404 on every route and method override),
 * 401/403/503, a token refreshed mid-upload, the start-up refusal without AUTH_MODE on a
 * public HOST, /metrics behind METRICS_TOKEN, and CORS with ALLOWED_ORIGINS.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, patch, request, TUS, type RawResponse } from '../support/http.ts';
import { bearer, deadUrl, signHs256, startAuthHook, startJwks, type AuthHook, type Jwks } from '../support/identity.ts';
import { filesUnder, freePort, ROOT, startArgs, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { errorCode, upload as authUpload } from '../support/tus.ts';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const idOf = (url: string) => url.split('/').pop() ?? '';
const APP_ORIGIN = 'http://app.example';
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const OCTETS = { 'Content-Type': 'application/offset+octet-stream' };

function code(res: RawResponse): string | undefined {
  try {
    return res.json<{ error?: { code?: string } }>().error?.code;
  } catch {
    return undefined;
  }
}

async function stopAndClean(server: RunningServer | undefined): Promise<void> {
  if (!server) return;
  await server.stop();
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

// ------------------------------------------------------------------------------ jwt, JWKS

describe('AUTH_MODE=jwt with a JWKS (ES256)', () => {
  let jwks: Jwks;
  let server: RunningServer;
  let image: Buffer;

  beforeAll(async () => {
    jwks = await startJwks('ES256');
    server = await startServer({
      env: {
        AUTH_MODE: 'jwt',
        AUTH_JWKS_URL: jwks.jwksUrl,
        // exp is checked to the second: the refresh test lets a token expire in a few seconds
        AUTH_CLOCK_TOLERANCE_S: '0',
        ALLOWED_ORIGINS: APP_ORIGIN,
        METRICS_TOKEN,
      },
    });
    image = await fixtures.noisyJpeg(800, 600);
  }, 60_000);

  afterAll(async () => {
    await stopAndClean(server);
    await jwks?.close();
  });

  it('another subject gets 404 E_NOT_FOUND on every method and route of A\'s upload, also after it completes; A\'s own requests work', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    const b = bearer(await jwks.sign({ sub: 'bob' }));
    const url = await create(server.endpoint, image.length, { ...a, 'Upload-Metadata': `filename ${Buffer.from('a.jpg').toString('base64')}` });
    const id = idOf(url);
    const first = 100_000;
    const started = await patch(url, 0, image.subarray(0, first), a);
    expect(started.status).toBe(204);
    expect(started.headers['upload-offset']).toBe(String(first));

    const bSees = async () => {
      const small = image.subarray(first, first + 1000);
      const answers: Record<string, RawResponse> = {
        HEAD: await request(url, { method: 'HEAD', headers: { ...TUS, ...b } }),
        PATCH: await patch(url, first, small, b),
        DELETE: await request(url, { method: 'DELETE', headers: { ...TUS, ...b } }),
        'POST+override HEAD': await request(url, { method: 'POST', headers: { ...TUS, ...b, 'X-HTTP-Method-Override': 'HEAD' } }),
        'POST+override PATCH': await request(url, {
          method: 'POST',
          headers: { ...TUS, ...b, ...OCTETS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': String(first) },
          body: small,
        }),
        'POST+override DELETE': await request(url, { method: 'POST', headers: { ...TUS, ...b, 'X-HTTP-Method-Override': 'DELETE' } }),
        'GET /uploads': await request(`${server.url}/uploads/${id}`, { headers: b }),
        'DELETE /uploads': await request(`${server.url}/uploads/${id}`, { method: 'DELETE', headers: b }),
      };
      for (const [what, res] of Object.entries(answers)) {
        expect([what, res.status]).toEqual([what, 404]);
        if (what !== 'HEAD') expect([what, code(res)]).toEqual([what, 'E_NOT_FOUND']);
      }
      return answers;
    };

    await bSees();
    // nothing B sent changed the upload
    const aHead = await request(url, { method: 'HEAD', headers: { ...TUS, ...a } });
    expect(aHead.status).toBe(200);
    expect(aHead.headers['upload-offset']).toBe(String(first));
    const aOverride = await request(url, { method: 'POST', headers: { ...TUS, ...a, 'X-HTTP-Method-Override': 'HEAD' } });
    expect(aOverride.status).toBe(200);
    expect(aOverride.headers['upload-offset']).toBe(String(first));
    const receiving = await request(`${server.url}/uploads/${id}`, { headers: a });
    expect(receiving.status).toBe(200);
    expect(receiving.json()).toEqual({ id, state: 'receiving', offset: first, size: image.length });

    // A completes the upload through an override PATCH
    const done = await request(url, {
      method: 'POST',
      headers: { ...TUS, ...a, ...OCTETS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': String(first) },
      body: image.subarray(first),
    });
    expect(done.status).toBe(200);
    const artifact = done.json<{ url: string; original: { sha256: string } }>();
    expect(artifact.original.sha256).toBe(sha(image));

    await bSees();
    const record = await request(`${server.url}/uploads/${id}`, { headers: a });
    expect(record.json()).toMatchObject({ id, state: 'done', original: { sha256: sha(image) } });
    // B's DELETE /uploads/:id did not remove A's artifact
    expect((await fetch(artifact.url)).status).toBe(200);
  }, 30_000);

  it('"as if it did not exist": another subject\'s 404 on A\'s upload is the very answer to an id that does not exist', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    const b = bearer(await jwks.sign({ sub: 'bob' }));
    const url = await create(server.endpoint, image.length, a);
    const id = idOf(url);
    const unknownId = 'f'.repeat(32);
    const asks = (target: string) => ({
      'PATCH /files/:id': () => patch(`${server.endpoint}${target}`, 0, image.subarray(0, 1000), b),
      'DELETE /files/:id': () => request(`${server.endpoint}${target}`, { method: 'DELETE', headers: { ...TUS, ...b } }),
      'GET /uploads/:id': () => request(`${server.url}/uploads/${target}`, { headers: b }),
      'DELETE /uploads/:id': () => request(`${server.url}/uploads/${target}`, { method: 'DELETE', headers: b }),
    });
    const differences: string[] = [];
    for (const [what, ask] of Object.entries(asks(id))) {
      const mine = await ask();
      const none = await asks(unknownId)[what as keyof ReturnType<typeof asks>]();
      expect([what, mine.status]).toEqual([what, 404]);
      expect([what, none.status]).toEqual([what, 404]);
      if (mine.body !== none.body) differences.push(`${what}: other subject's upload ${mine.body} vs unknown id ${none.body}`);
    }
    expect(differences).toEqual([]);
  }, 15_000);

  it('ownership survives a lost state record (README: the record is rebuilt from the staging store): B still gets 404, A resumes', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    const b = bearer(await jwks.sign({ sub: 'bob' }));
    const url = await create(server.endpoint, image.length, a);
    const id = idOf(url);
    expect((await patch(url, 0, image.subarray(0, 100_000), a)).status).toBe(204);
    // the record is lost (as with a Redis that forgot it); the staged bytes and their metadata remain
    const record = path.join(server.dataDir, 'state', `${id}.json`);
    expect(fs.existsSync(record)).toBe(true);
    fs.rmSync(record);

    const bSaw = {
      HEAD: (await request(url, { method: 'HEAD', headers: { ...TUS, ...b } })).status,
      PATCH: (await patch(url, 100_000, image.subarray(100_000, 101_000), b)).status,
      'GET /uploads': (await request(`${server.url}/uploads/${id}`, { headers: b })).status,
    };
    const aHead = await request(url, { method: 'HEAD', headers: { ...TUS, ...a } });
    const bDelete = (await request(url, { method: 'DELETE', headers: { ...TUS, ...b } })).status;
    const aAfter = await request(url, { method: 'HEAD', headers: { ...TUS, ...a } });
    expect({ ...bSaw, DELETE: bDelete, aOffsetBefore: aHead.headers['upload-offset'], aAfter: aAfter.status }).toEqual({
      HEAD: 404,
      PATCH: 404,
      'GET /uploads': 404,
      DELETE: 404,
      aOffsetBefore: '100000',
      aAfter: 200,
    });
    const done = await patch(url, 100_000, image.subarray(100_000), a);
    expect(done.status).toBe(200);
    expect(done.json()).toMatchObject({ original: { sha256: sha(image) } });
  }, 20_000);

  it('the owner can terminate an unfinished upload (DELETE and override DELETE)', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    for (const viaOverride of [false, true]) {
      const url = await create(server.endpoint, image.length, a);
      expect((await patch(url, 0, image.subarray(0, 50_000), a)).status).toBe(204);
      const res = viaOverride
        ? await request(url, { method: 'POST', headers: { ...TUS, ...a, 'X-HTTP-Method-Override': 'DELETE' } })
        : await request(url, { method: 'DELETE', headers: { ...TUS, ...a } });
      expect(res.status).toBe(204);
      const gone = await request(url, { method: 'HEAD', headers: { ...TUS, ...a } });
      expect([404, 410]).toContain(gone.status);
    }
  }, 20_000);

  it('no Authorization: 401 E_UNAUTHENTICATED with WWW-Authenticate: Bearer, on POST, HEAD, PATCH and /uploads/:id; nothing is created', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    const url = await create(server.endpoint, image.length, a);
    const id = idOf(url);
    const staged = filesUnder(path.join(server.dataDir, 'staging'));
    const answers = [
      await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } }),
      await request(url, { method: 'HEAD', headers: { ...TUS } }),
      await patch(url, 0, image.subarray(0, 1000)),
      await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } }),
      await request(`${server.url}/uploads/${id}`),
      await request(`${server.url}/uploads/${id}`, { method: 'DELETE' }),
    ];
    for (const res of answers) {
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer\b/);
      if (res.body) expect(code(res)).toBe('E_UNAUTHENTICATED');
    }
    expect(filesUnder(path.join(server.dataDir, 'staging'))).toEqual(staged);
    // the upload is untouched
    expect((await request(url, { method: 'HEAD', headers: { ...TUS, ...a } })).headers['upload-offset']).toBe('0');
  }, 20_000);

  it('forged, expired, exp-less and malformed tokens: 401 E_UNAUTHENTICATED (invalid_token)', async () => {
    const tokens = {
      forged: await jwks.forge({ sub: 'alice' }),
      expired: await jwks.sign({ sub: 'alice', expIn: -60 }),
      'no exp': await jwks.sign({ sub: 'alice', expIn: null }),
      'HS256 with another secret': await signHs256('a-secret-that-this-server-does-not-know-at-all', { sub: 'alice' }),
      malformed: 'not-a-jwt',
    };
    for (const [what, token] of Object.entries(tokens)) {
      const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, ...bearer(token), 'Upload-Length': '1000' } });
      expect([what, res.status, code(res)]).toEqual([what, 401, 'E_UNAUTHENTICATED']);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
      expect(res.headers.location).toBeUndefined();
    }
    const expired = await request(server.endpoint, { method: 'POST', headers: { ...TUS, ...bearer(tokens.expired), 'Upload-Length': '1000' } });
    expect(expired.json<{ error: { message: string } }>().error.message).toMatch(/expired/);
  }, 20_000);

  it('OPTIONS /files/, /healthz and /readyz need no token', async () => {
    const options = await request(server.endpoint, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers['tus-version']).toContain('1.0.0');
    expect((await request(`${server.url}/healthz`)).status).toBe(200);
    const ready = await request(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
  }, 10_000);

  it('a token that expires mid-upload: the paused upload is refused with it (401), a fresh token for the same sub resumes it to the end', async () => {
    const big = await fixtures.noisyJpeg(1200, 900);
    let current = await jwks.sign({ sub: 'carol', expIn: 6 });
    const expiring = current;
    const used: Array<{ method: string; token: string }> = [];
    let paused!: () => void;
    const pausedAt = new Promise<void>((resolve) => (paused = resolve));
    let client: import('tus-js-client').Upload | undefined;
    let pausedOnce = false;

    const outcome = authUpload(server.endpoint, big, {
      chunkSize: 128 * 1024,
      retryDelays: [],
      onBeforeRequest: (req) => {
        used.push({ method: req.getMethod(), token: current });
        req.setHeader('Authorization', `Bearer ${current}`);
      },
      onStart: (upload) => (client = upload),
      onChunkComplete: (upload, _chunk, sent) => {
        if (pausedOnce || sent < 256 * 1024) return;
        pausedOnce = true;
        void upload.abort().then(paused);
      },
    });
    await Promise.race([
      pausedAt,
      outcome.then((ended) => {
        throw new Error(`the upload ended before it was paused: ${ended.status} ${JSON.stringify(ended.body)}`);
      }),
    ]);
    expect(client?.url).toBeTruthy();
    const url = client?.url ?? '';
    const headWith = (token: string) => request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(token) } });
    const offset = Number((await headWith(expiring)).headers['upload-offset']);
    expect(offset).toBeGreaterThanOrEqual(256 * 1024);
    expect(offset).toBeLessThan(big.length);

    // the token expires while the client is paused
    await until('the first token expired', async () => (await headWith(expiring)).status === 401, 10_000, 250);
    const refused = await patch(url, offset, big.subarray(offset, offset + 1000), bearer(expiring));
    expect(refused.status).toBe(401);
    expect(refused.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'E_UNAUTHENTICATED', message: expect.stringMatching(/expired/) });

    // the app gives a fresh token for the same subject; the client resumes where it paused
    current = await jwks.sign({ sub: 'carol', expIn: 600 });
    const resumedFrom = used.length;
    client?.start();
    const result = await outcome;
    expect(result.error).toBeUndefined();
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ id: idOf(url), original: { bytes: big.length, sha256: sha(big) } });
    const resumed = used.slice(resumedFrom);
    expect(resumed[0]?.method).toBe('HEAD');
    expect(resumed.every((r) => r.token === current)).toBe(true);
    expect(used.slice(0, resumedFrom).every((r) => r.token === expiring)).toBe(true);
    const record = await request(`${server.url}/uploads/${idOf(url)}`, { headers: bearer(current) });
    expect(record.json()).toMatchObject({ state: 'done', original: { sha256: sha(big) } });
  }, 40_000);

  it('/metrics: 401 without METRICS_TOKEN (or with a user\'s token), 200 Prometheus text with it', async () => {
    const none = await request(`${server.url}/metrics`);
    expect(none.status).toBe(401);
    expect(code(none)).toBe('E_UNAUTHENTICATED');
    expect((await request(`${server.url}/metrics`, { headers: { Authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    expect((await request(`${server.url}/metrics`, { headers: bearer(await jwks.sign({ sub: 'alice' })) })).status).toBe(401);
    const ok = await request(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toMatch(/^text\/plain/);
    expect(ok.body).toMatch(/^# HELP tusgate_/m);
  }, 10_000);

  it('CORS with ALLOWED_ORIGINS: a listed origin is echoed on a tus POST and on /uploads/:id; another origin gets no Access-Control-Allow-Origin on either', async () => {
    const a = bearer(await jwks.sign({ sub: 'alice' }));
    const post = (origin: string) =>
      request(server.endpoint, { method: 'POST', headers: { ...TUS, ...a, Origin: origin, 'Upload-Length': String(image.length) } });
    const allowed = await post(APP_ORIGIN);
    expect(allowed.status).toBe(201);
    expect(allowed.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(String(allowed.headers['access-control-expose-headers'])).toMatch(/Location/);
    const id = idOf(String(allowed.headers.location));
    const status = await request(`${server.url}/uploads/${id}`, { headers: { ...a, Origin: APP_ORIGIN } });
    expect(status.status).toBe(200);
    expect(status.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    // a refusal is readable by the listed origin too
    const unauthenticated = await request(server.endpoint, { method: 'POST', headers: { ...TUS, Origin: APP_ORIGIN, 'Upload-Length': '10' } });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers['access-control-allow-origin']).toBe(APP_ORIGIN);

    const other = 'http://evil.example';
    const foreign = await post(other);
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
    const foreignStatus = await request(`${server.url}/uploads/${id}`, { headers: { ...a, Origin: other } });
    expect(foreignStatus.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await request(server.endpoint, { method: 'OPTIONS', headers: { Origin: other, 'Access-Control-Request-Method': 'POST' } });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    const preflightOk = await request(server.endpoint, { method: 'OPTIONS', headers: { Origin: APP_ORIGIN, 'Access-Control-Request-Method': 'POST' } });
    expect(preflightOk.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
  }, 15_000);
});

describe('AUTH_MODE=jwt with a JWKS that cannot be reached', () => {
  let jwks: Jwks;
  let server: RunningServer;

  beforeAll(async () => {
    jwks = await startJwks('ES256'); // signs tokens; the server is pointed elsewhere
    server = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWKS_URL: await deadUrl('/jwks.json') } });
  }, 60_000);
  afterAll(async () => {
    await stopAndClean(server);
    await jwks?.close();
  });

  it('a well-formed token cannot be checked: 503 E_AUTH_UNAVAILABLE with Retry-After, never a pass', async () => {
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, ...bearer(await jwks.sign({ sub: 'alice' })), 'Upload-Length': '1000' } });
    expect([res.status, code(res)]).toEqual([503, 'E_AUTH_UNAVAILABLE']);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.headers.location).toBeUndefined();
    expect(filesUnder(path.join(server.dataDir, 'staging'))).toEqual([]);
  }, 15_000);
});

// ------------------------------------------------------------------------------ jwt, HS256

describe('AUTH_MODE=jwt with AUTH_JWT_SECRET (HS256)', () => {
  const secret = 'an-hs256-secret-for-the-e2e-tests-0123456789';
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret } });
  }, 60_000);
  afterAll(() => stopAndClean(server));

  it('uploads with a token signed by the secret; another secret, or none, is 401', async () => {
    const image = await fixtures.jpeg(640, 480);
    const token = await signHs256(secret, { sub: 'dave' });
    const outcome = await authUpload(server.endpoint, image, { headers: bearer(token), chunkSize: 64 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    expect(outcome.body).toMatchObject({ width: 640, height: 480, original: { sha256: sha(image) } });
    const id = idOf(outcome.url ?? '');
    expect((await request(`${server.url}/uploads/${id}`, { headers: bearer(token) })).json()).toMatchObject({ state: 'done' });
    expect((await request(`${server.url}/uploads/${id}`, { headers: bearer(await signHs256(secret, { sub: 'eve' })) })).status).toBe(404);

    const forged = await authUpload(server.endpoint, image, { headers: bearer(await signHs256(`${secret}-not`, { sub: 'dave' })) });
    expect(forged.status).toBe(401);
    expect(errorCode(forged)).toBe('E_UNAUTHENTICATED');
    const anonymous = await authUpload(server.endpoint, image);
    expect(anonymous.status).toBe(401);
  }, 20_000);
});

// ------------------------------------------------------------------------------ hook

describe('AUTH_MODE=hook', () => {
  let hook: AuthHook;
  let server: RunningServer;
  let downServer: RunningServer;

  const sessionOf = (cookie: string | undefined) => /(?:^|;\s*)session=([^;]+)/.exec(cookie ?? '')?.[1];

  beforeAll(async () => {
    hook = await startAuthHook((call) => {
      switch (sessionOf(call.headers.cookie)) {
        case 'alice':
          return { status: 200, body: { sub: 'alice', meta: { plan: 'pro' } } };
        case 'bob':
          return { status: 200, body: { sub: 'bob' } };
        case 'mallory':
          return { status: 403 };
        case 'slow':
          return { status: 200, body: { sub: 'slow' }, delayMs: 3_000 };
        default:
          return { status: 401 };
      }
    });
    const hookEnv = { AUTH_MODE: 'hook', AUTH_HOOK_CACHE_MS: '0', AUTH_HOOK_TIMEOUT_MS: '500' };
    [server, downServer] = await Promise.all([
      startServer({ env: { ...hookEnv, AUTH_HOOK_URL: hook.hookUrl } }),
      deadUrl('/auth').then((url) => startServer({ env: { ...hookEnv, AUTH_HOOK_URL: url } })),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopAndClean(server), stopAndClean(downServer)]);
    await hook?.close();
  });

  const post = (target: RunningServer, cookie?: string) =>
    request(target.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000', ...(cookie ? { Cookie: cookie } : {}) } });

  it('a cookie-authenticated upload works; the hook is asked with method, path, uploadId and the cookie; another session gets 404 on it', async () => {
    const image = await fixtures.jpeg(640, 480);
    const outcome = await authUpload(server.endpoint, image, { headers: { Cookie: 'theme=dark; session=alice' }, chunkSize: 64 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    expect(outcome.body).toMatchObject({ original: { sha256: sha(image) } });
    const id = idOf(outcome.url ?? '');
    expect(hook.calls).toContainEqual({ method: 'POST', path: '/files/', headers: { cookie: 'theme=dark; session=alice' } });
    expect(hook.calls).toContainEqual({ method: 'PATCH', path: `/files/${id}`, uploadId: id, headers: { cookie: 'theme=dark; session=alice' } });

    expect((await request(`${server.url}/uploads/${id}`, { headers: { Cookie: 'session=alice' } })).json()).toMatchObject({ state: 'done' });
    const bob = await request(`${server.url}/uploads/${id}`, { headers: { Cookie: 'session=bob' } });
    expect([bob.status, code(bob)]).toEqual([404, 'E_NOT_FOUND']);
    expect((await request(`${server.endpoint}${id}`, { method: 'HEAD', headers: { ...TUS, Cookie: 'session=bob' } })).status).toBe(404);
  }, 20_000);

  it('the hook answering 401: 401 E_UNAUTHENTICATED (also without any credential); 403: 403 E_FORBIDDEN', async () => {
    for (const cookie of ['session=stranger', undefined]) {
      const res = await post(server, cookie);
      expect([res.status, code(res)]).toEqual([401, 'E_UNAUTHENTICATED']);
      expect(res.headers.location).toBeUndefined();
    }
    const forbidden = await post(server, 'session=mallory');
    expect([forbidden.status, code(forbidden)]).toEqual([403, 'E_FORBIDDEN']);
    expect(forbidden.headers.location).toBeUndefined();
  }, 10_000);

  it('a hook slower than AUTH_HOOK_TIMEOUT_MS: 503 E_AUTH_UNAVAILABLE with Retry-After, without waiting for it', async () => {
    const started = Date.now();
    const res = await post(server, 'session=slow');
    expect([res.status, code(res)]).toEqual([503, 'E_AUTH_UNAVAILABLE']);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.headers.location).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(2_500);
  }, 10_000);

  it('a hook that is down (connection refused): 503 E_AUTH_UNAVAILABLE, never a pass', async () => {
    for (const cookie of ['session=alice', undefined]) {
      const res = await post(downServer, cookie);
      expect([res.status, code(res)]).toEqual([503, 'E_AUTH_UNAVAILABLE']);
      expect(res.headers.location).toBeUndefined();
    }
    const status = await request(`${downServer.url}/uploads/${'a'.repeat(32)}`, { headers: { Cookie: 'session=alice' } });
    expect(status.status).toBe(503);
    expect(filesUnder(path.join(downServer.dataDir, 'staging'))).toEqual([]);
  }, 10_000);
});

// ------------------------------------------------------------------------------ start-up

describe('start-up', () => {
  it('HOST=0.0.0.0 without AUTH_MODE: refuses to start, naming AUTH_MODE, exit code non-zero', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, HOST: '0.0.0.0', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'info' };
    delete env.AUTH_MODE;
    const child = spawn(process.execPath, startArgs(), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    try {
      const exitCode = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still running after 20 s; stdout: ${stdout.slice(-500)}`)), 20_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      expect(exitCode).not.toBe(0);
      expect(exitCode).not.toBeNull();
      expect(stderr).toMatch(/AUTH_MODE/);
      expect(stdout).not.toMatch(/tusgate listening/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
