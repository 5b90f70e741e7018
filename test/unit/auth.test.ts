/**
 * Authentication (server/auth): JWTs verified with an HS256 secret or a real JWKS served
 * over HTTP on 127.0.0.1 (RS256, ES256, EdDSA keys made by jose), and the app's auth hook
 * as a real HTTP server (up, 401, 403, down, slow, bad body, caching).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWK, SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  AUTH_STATUS,
  AuthConfigError,
  type AuthRequest,
  type AuthResult,
  type HookAuthOptions,
  type JwtAuthOptions,
  createAuthenticator,
} from '../../server/auth/index.ts';
import { ExpiringLru } from '../../server/auth/cache.ts';

// ---------------------------------------------------------------- test servers

interface TestServer {
  url: string;
  hits: number;
  close(): Promise<void>;
}

async function serve(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void): Promise<TestServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      state.hits++;
      handler(req, Buffer.concat(chunks).toString('utf8'), res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const state: TestServer = {
    url: `http://127.0.0.1:${port}/`,
    hits: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return state;
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
async function deadUrl(): Promise<string> {
  const server = await serve((_req, _body, res) => res.end());
  await server.close();
  return server.url;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// ---------------------------------------------------------------- keys and tokens

type Alg = 'RS256' | 'ES256' | 'EdDSA';

interface KeyPair {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function keyPair(alg: Alg, kid: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk };
}

interface Claims {
  sub?: string;
  profile?: unknown;
  meta?: unknown;
  iss?: string;
  aud?: string;
  /** Seconds from now; null: no exp claim. */
  expIn?: number | null;
  nbfIn?: number;
}

function build(claims: Claims): SignJWT {
  const { sub = 'user-1', profile, meta, iss, aud, expIn = 300, nbfIn } = claims;
  const payload: Record<string, unknown> = {};
  if (profile !== undefined) payload.profile = profile;
  if (meta !== undefined) payload.meta = meta;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(payload).setIssuedAt(now);
  if (sub !== '') jwt.setSubject(sub);
  if (iss !== undefined) jwt.setIssuer(iss);
  if (aud !== undefined) jwt.setAudience(aud);
  if (expIn !== null) jwt.setExpirationTime(now + expIn);
  if (nbfIn !== undefined) jwt.setNotBefore(now + nbfIn);
  return jwt;
}

function sign(key: KeyPair, claims: Claims = {}, header: { kid?: string | null } = {}): Promise<string> {
  const kid = header.kid === null ? undefined : (header.kid ?? key.kid);
  return build(claims).setProtectedHeader(kid === undefined ? { alg: key.alg } : { alg: key.alg, kid }).sign(key.privateKey);
}

const SECRET = 'a-supabase-style-jwt-secret-of-40-chars!';
const secretBytes = (secret: string) => new TextEncoder().encode(secret);

function signHs(claims: Claims = {}, secret = SECRET): Promise<string> {
  return build(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secretBytes(secret));
}

const request = (authorization?: string, more: Partial<AuthRequest> = {}): AuthRequest => ({
  method: 'PATCH',
  path: '/files/abc',
  uploadId: 'abc',
  ...(authorization === undefined ? {} : { authorization }),
  ...more,
});

const bearer = (token: string) => request(`Bearer ${token}`);

function failure(result: AuthResult): { reason: string; message: string } {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result)}`);
  return { reason: result.reason, message: result.message };
}

function identity(result: AuthResult) {
  if (!result.ok) throw new Error(`expected ok, got ${result.reason}: ${result.message}`);
  return result.identity;
}

/** What no client message may contain: jose's or node's wording, stacks. */
function expectHumanMessage(message: string): void {
  expect(message).toMatch(/^[A-Z].*[.]$/);
  expect(message).not.toMatch(/ERR_|claim timestamp check|JWS|JWKS|at .*\.js|fetch failed|ECONN/);
}

// ---------------------------------------------------------------- jwt

describe('auth mode jwt, with a JWKS', () => {
  let keys: KeyPair[];
  let served: JWK[];
  let jwks: TestServer;
  const options = (more: Partial<JwtAuthOptions> = {}): JwtAuthOptions => ({ mode: 'jwt', jwksUrl: jwks.url, clockToleranceSec: 0, ...more });

  beforeAll(async () => {
    keys = [await keyPair('RS256', 'rsa-1'), await keyPair('ES256', 'ec-1'), await keyPair('EdDSA', 'ed-1')];
    served = keys.map((key) => key.jwk);
    jwks = await serve((_req, _body, res) => json(res, 200, { keys: served }));
  });
  afterAll(() => jwks.close());
  afterEach(() => {
    vi.useRealTimers();
    served = keys.map((key) => key.jwk);
  });

  const pick = (kid: string): KeyPair => {
    const key = keys.find((candidate) => candidate.kid === kid);
    if (key === undefined) throw new Error(`no key ${kid}`);
    return key;
  };
  const rsa = () => pick('rsa-1');
  const ec = () => pick('ec-1');
  const ed = () => pick('ed-1');

  it.each(['RS256', 'ES256', 'EdDSA'] as const)('accepts a valid %s token and returns its identity', async (alg) => {
    const key = { RS256: rsa, ES256: ec, EdDSA: ed }[alg]();
    const authenticate = createAuthenticator(options());
    const token = await sign(key, { sub: 'user-42', profile: 'avatars', meta: { plan: 'pro', 'org_id-1': 'acme' } });
    expect(identity(await authenticate(bearer(token)))).toEqual({ sub: 'user-42', profile: 'avatars', meta: { plan: 'pro', 'org_id-1': 'acme' } });
  });

  it('fetches the key set once and keeps it for further tokens', async () => {
    const authenticate = createAuthenticator(options());
    const before = jwks.hits;
    for (const key of [rsa(), ec(), ed(), rsa()]) expect((await authenticate(bearer(await sign(key)))).ok).toBe(true);
    expect(jwks.hits - before).toBe(1);
  });

  it('accepts the "bearer" scheme in any case; meta defaults to {} and profile is absent', async () => {
    const authenticate = createAuthenticator(options());
    const result = identity(await authenticate(request(`bearer ${await sign(rsa())}`)));
    expect(result).toEqual({ sub: 'user-1', meta: {} });
    expect('profile' in result).toBe(false);
  });

  it('a missing Authorization header: missing, saying what to send', async () => {
    const authenticate = createAuthenticator(options());
    expect(failure(await authenticate(request()))).toEqual({
      reason: 'missing',
      message: 'The Authorization header is required: send Authorization: Bearer <token>.',
    });
    expect(failure(await authenticate(request('  '))).reason).toBe('missing');
    expect(AUTH_STATUS.missing).toBe(401);
  });

  it.each([
    ['Basic dXNlcjpwYXNz', 'not a bearer header'],
    ['Bearer', 'no token'],
    ['Bearer not-a-jwt', 'not three parts'],
    ['Bearer a.b.c', 'garbage parts'],
    ['Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0', 'two parts'],
    ['Bearer tok en', 'a space inside'],
  ])('a malformed credential (%s, %s): invalid', async (authorization) => {
    const result = failure(await createAuthenticator(options())(request(authorization)));
    expect(result.reason).toBe('invalid');
    expectHumanMessage(result.message);
  });

  it('a forged signature (another key, same kid): invalid, without jose\'s wording', async () => {
    const forger = await keyPair('RS256', 'rsa-1');
    const result = failure(await createAuthenticator(options())(bearer(await sign(forger))));
    expect(result.reason).toBe('invalid');
    expect(result.message).toMatch(/signature does not verify/);
    expectHumanMessage(result.message);
  });

  it('a payload changed after signing: invalid', async () => {
    const [header, , signature] = (await sign(ec(), { sub: 'user-1' })).split('.');
    const payload = Buffer.from(JSON.stringify({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    expect(failure(await createAuthenticator(options())(bearer(`${header}.${payload}.${signature}`))).reason).toBe('invalid');
  });

  it('a kid the key set does not list: invalid', async () => {
    const stranger = await keyPair('ES256', 'unknown-kid');
    const result = failure(await createAuthenticator(options())(bearer(await sign(stranger))));
    expect(result.reason).toBe('invalid');
    expect(result.message).toMatch(/key the identity provider does not publish/);
  });

  it('alg none: invalid', async () => {
    const token = new UnsecuredJWT({ sub: 'admin' }).setExpirationTime('5m').encode();
    const result = failure(await createAuthenticator(options())(bearer(token)));
    expect(result.reason).toBe('invalid');
    expect(result.message).toMatch(/algorithm this server does not accept \(it accepts RS256, ES256, EdDSA\)/);
  });

  it('HS256 signed with the public key (algorithm confusion): invalid', async () => {
    const token = await build({}).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' }).sign(secretBytes(JSON.stringify(rsa().jwk)));
    expect(failure(await createAuthenticator(options())(bearer(token))).reason).toBe('invalid');
  });

  it('a wrong issuer or audience: invalid, naming what is expected', async () => {
    const authenticate = createAuthenticator(options({ issuer: 'https://id.example.com/', audience: 'tusgate' }));
    expect((await authenticate(bearer(await sign(rsa(), { iss: 'https://id.example.com/', aud: 'tusgate' })))).ok).toBe(true);

    const wrongIss = failure(await authenticate(bearer(await sign(rsa(), { iss: 'https://evil.example.com/', aud: 'tusgate' }))));
    expect(wrongIss.reason).toBe('invalid');
    expect(wrongIss.message).toContain('"https://id.example.com/"');
    const noIss = failure(await authenticate(bearer(await sign(rsa(), { aud: 'tusgate' }))));
    expect(noIss.reason).toBe('invalid');
    const wrongAud = failure(await authenticate(bearer(await sign(rsa(), { iss: 'https://id.example.com/', aud: 'other' }))));
    expect(wrongAud).toMatchObject({ reason: 'invalid', message: expect.stringContaining('"tusgate"') });
    for (const message of [wrongIss.message, noIss.message, wrongAud.message]) expectHumanMessage(message);
  });

  it('a token without exp: invalid', async () => {
    const result = failure(await createAuthenticator(options())(bearer(await sign(rsa(), { expIn: null }))));
    expect(result.reason).toBe('invalid');
    expect(result.message).toMatch(/no expiry/);
    expectHumanMessage(result.message);
  });

  it('an expired token: expired, naming when it expired', async () => {
    const token = await sign(rsa(), { expIn: -120 });
    const exp = new Date((Math.floor(Date.now() / 1000) - 120) * 1000).toISOString();
    const result = failure(await createAuthenticator(options())(bearer(token)));
    expect(result.reason).toBe('expired');
    expect(result.message).toContain(`The token expired at ${exp}`);
    expectHumanMessage(result.message);
  });

  it('an expired token within the clock tolerance: accepted; beyond it: expired', async () => {
    const token = await sign(rsa(), { expIn: -20 });
    expect((await createAuthenticator(options({ clockToleranceSec: 60 }))(bearer(token))).ok).toBe(true);
    expect(failure(await createAuthenticator(options({ clockToleranceSec: 10 }))(bearer(token))).reason).toBe('expired');
  });

  it('a token not valid yet (nbf): invalid, unless within the tolerance', async () => {
    const token = await sign(rsa(), { nbfIn: 30 });
    expect(failure(await createAuthenticator(options())(bearer(token))).reason).toBe('invalid');
    expect((await createAuthenticator(options({ clockToleranceSec: 60 }))(bearer(token))).ok).toBe(true);
  });

  it('an expired token with a forged signature: invalid, not expired (the signature comes first)', async () => {
    const forger = await keyPair('RS256', 'rsa-1');
    expect(failure(await createAuthenticator(options())(bearer(await sign(forger, { expIn: -120 })))).reason).toBe('invalid');
  });

  it.each([
    ['no sub', { sub: '' }, 'sub'],
    ['sub too long', { sub: 'x'.repeat(257) }, 'sub'],
    ['profile with a slash', { profile: 'a/b' }, 'profile'],
    ['profile too long', { profile: 'p'.repeat(65) }, 'profile'],
    ['profile not a string', { profile: 7 }, 'profile'],
    ['meta an array', { meta: ['a'] }, 'meta'],
    ['meta null', { meta: null }, 'meta'],
    ['meta a string', { meta: 'plan=pro' }, 'meta'],
    ['meta of 17 keys', { meta: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }, 'meta'],
    ['meta key with a dot', { meta: { 'a.b': 'v' } }, 'meta'],
    ['meta key too long', { meta: { ['k'.repeat(65)]: 'v' } }, 'meta'],
    ['meta empty key', { meta: { '': 'v' } }, 'meta'],
    ['meta value a number', { meta: { plan: 1 } }, 'meta'],
    ['meta value nested', { meta: { plan: { tier: 'pro' } } }, 'meta'],
    ['meta value of 257 characters', { meta: { note: 'n'.repeat(257) } }, 'meta'],
  ] as const)('claims: %s → invalid, naming the claim', async (_name, claims, claim) => {
    const result = failure(await createAuthenticator(options())(bearer(await sign(ed(), claims))));
    expect(result.reason).toBe('invalid');
    expect(result.message).toContain(`"${claim}" claim`);
    expectHumanMessage(result.message);
  });

  it('claims: a meta "__proto__" key is refused, not silently dropped', async () => {
    const now = Math.floor(Date.now() / 1000);
    // An own "__proto__" property, as JSON.parse makes it (an object literal would set the prototype instead).
    const meta: unknown = JSON.parse('{"__proto__":"x","plan":"pro"}');
    const token = await new SignJWT({ sub: 'u', exp: now + 300, meta }).setProtectedHeader({ alg: 'EdDSA', kid: 'ed-1' }).sign(ed().privateKey);
    const [, payload = ''] = token.split('.');
    expect(Buffer.from(payload, 'base64url').toString('utf8')).toContain('"__proto__":"x"');
    expect(failure(await createAuthenticator(options())(bearer(token))).reason).toBe('invalid');
  });

  it('claims: the limits themselves are accepted (16 keys, 64-character keys, 256-character values)', async () => {
    const meta = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`${'k'.repeat(62)}${String(i).padStart(2, '0')}`, 'v'.repeat(256)]));
    const result = identity(await createAuthenticator(options())(bearer(await sign(ed(), { profile: 'P'.repeat(64), meta }))));
    expect(result.meta).toEqual(meta);
  });

  it('key rotation: a new kid is picked up from the key set (after jose\'s 30 s cooldown), the old one dropped', async () => {
    const authenticate = createAuthenticator(options());
    expect((await authenticate(bearer(await sign(rsa())))).ok).toBe(true);
    const before = jwks.hits;

    const next = await keyPair('RS256', 'rsa-2');
    served = [next.jwk, ec().jwk, ed().jwk]; // the provider rotates: rsa-1 is gone
    const fresh = await sign(next);

    // Within the cooldown after a fetch, an unknown kid does not make jose fetch again.
    expect(failure(await authenticate(bearer(fresh))).reason).toBe('invalid');
    expect(jwks.hits).toBe(before);

    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 31_000 });
    expect(identity(await authenticate(bearer(await sign(next))))).toMatchObject({ sub: 'user-1' });
    expect(jwks.hits).toBe(before + 1);
    expect(failure(await authenticate(bearer(await sign(rsa())))).reason).toBe('invalid');
  });

  it('a token without kid verifies when several keys could fit', async () => {
    const other = await keyPair('ES256', 'ec-2');
    served = [...keys.map((key) => key.jwk), other.jwk];
    const authenticate = createAuthenticator(options());
    expect((await authenticate(bearer(await sign(other, {}, { kid: null })))).ok).toBe(true);
    expect((await authenticate(bearer(await sign(ec(), {}, { kid: null })))).ok).toBe(true);
    const forger = await keyPair('ES256', 'ec-9');
    expect(failure(await authenticate(bearer(await sign(forger, {}, { kid: null })))).reason).toBe('invalid');
  });

  it('the JWKS endpoint down (connection refused): unavailable, never ok', async () => {
    const authenticate = createAuthenticator(options({ jwksUrl: await deadUrl() }));
    const result = await authenticate(bearer(await sign(rsa())));
    expect(failure(result).reason).toBe('unavailable');
    expectHumanMessage(failure(result).message);
    expect(result.ok === false && result.detail).toMatch(/ECONNREFUSED/);
    expect(AUTH_STATUS.unavailable).toBe(503);
  });

  it.each([
    ['answers 500', (res: http.ServerResponse) => json(res, 500, { error: 'boom' })],
    ['answers HTML', (res: http.ServerResponse) => res.end('<html>')],
    ['answers something that is not a key set', (res: http.ServerResponse) => json(res, 200, { keys: 'none' })],
  ])('the JWKS endpoint %s: unavailable', async (_name, answer) => {
    const broken = await serve((_req, _body, res) => answer(res));
    try {
      const result = failure(await createAuthenticator(options({ jwksUrl: broken.url }))(bearer(await sign(rsa()))));
      expect(result.reason).toBe('unavailable');
    } finally {
      await broken.close();
    }
  });

  it('a verified token is remembered for cacheMs (its key withdrawn since), never past its exp; cacheMs 0 verifies again', async () => {
    const token = await sign(rsa(), { expIn: 3600 });
    const short = await sign(rsa(), { expIn: 30 });
    const remembering = createAuthenticator(options({ cacheMs: 20 * 60_000 }));
    const forgetting = createAuthenticator(options({ cacheMs: 0 }));
    for (const authenticate of [remembering, forgetting]) {
      expect((await authenticate(bearer(token))).ok).toBe(true);
      expect((await authenticate(bearer(short))).ok).toBe(true);
    }
    served = keys.filter((key) => key.kid !== 'rsa-1').map((key) => key.jwk); // the key is withdrawn
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 11 * 60_000 }); // past jose's 10 minutes of key set cache
    expect(identity(await remembering(bearer(token)))).toEqual({ sub: 'user-1', meta: {} });
    expect(failure(await remembering(bearer(await sign(rsa(), { expIn: 3600 })))).reason).toBe('invalid'); // a new token is verified
    expect((await remembering(bearer(short))).ok).toBe(false); // its exp passed: not remembered, verified again
    expect(failure(await forgetting(bearer(token))).reason).toBe('invalid');
  });

  it('the JWKS endpoint going down after the keys were fetched: known keys still verify', async () => {
    let up = true;
    const flaky = await serve((req, _body, res) => (up ? json(res, 200, { keys: served }) : req.socket.destroy()));
    try {
      const authenticate = createAuthenticator(options({ jwksUrl: flaky.url }));
      expect((await authenticate(bearer(await sign(rsa())))).ok).toBe(true);
      up = false;
      expect((await authenticate(bearer(await sign(ec())))).ok).toBe(true);
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 31_000 });
      const stranger = await keyPair('RS256', 'rsa-new');
      expect(failure(await authenticate(bearer(await sign(stranger)))).reason).toBe('unavailable');
    } finally {
      await flaky.close();
    }
  });
});

describe('auth mode jwt, with an HS256 secret', () => {
  const options = (more: Partial<JwtAuthOptions> = {}): JwtAuthOptions => ({ mode: 'jwt', secret: SECRET, clockToleranceSec: 0, ...more });

  it('accepts a token signed with the secret (Supabase-style claims)', async () => {
    const token = await signHs({ sub: '8d0fb1a4-7c43-4e0f-9d3b-2f6a0c1e9b77', aud: 'authenticated', iss: 'https://abc.supabase.co/auth/v1' });
    const authenticate = createAuthenticator(options({ audience: 'authenticated', issuer: 'https://abc.supabase.co/auth/v1' }));
    expect(identity(await authenticate(bearer(token)))).toEqual({ sub: '8d0fb1a4-7c43-4e0f-9d3b-2f6a0c1e9b77', meta: {} });
  });

  it('a token signed with another secret: invalid', async () => {
    const token = await signHs({}, 'another-secret-that-is-long-enough-too!!');
    const result = failure(await createAuthenticator(options())(bearer(token)));
    expect(result.reason).toBe('invalid');
    expectHumanMessage(result.message);
  });

  it('an RS256 token, alg none, and no exp: invalid; expired: expired', async () => {
    const authenticate = createAuthenticator(options());
    const rsa = await keyPair('RS256', 'k');
    expect(failure(await authenticate(bearer(await sign(rsa)))).message).toMatch(/it accepts HS256\)/);
    expect(failure(await authenticate(bearer(new UnsecuredJWT({ sub: 'x' }).setExpirationTime('5m').encode()))).reason).toBe('invalid');
    expect(failure(await authenticate(bearer(await signHs({ expIn: null })))).reason).toBe('invalid');
    expect(failure(await authenticate(bearer(await signHs({ expIn: -5 })))).reason).toBe('expired');
  });

  it('refuses options that cannot work', () => {
    expect(() => createAuthenticator({ mode: 'jwt', clockToleranceSec: 0 })).toThrow(AuthConfigError);
    expect(() => createAuthenticator({ mode: 'jwt', secret: SECRET, jwksUrl: 'http://127.0.0.1:1/', clockToleranceSec: 0 })).toThrow(/exactly one/);
    expect(() => createAuthenticator(options({ secret: 'short' }))).toThrow(/at least 32 bytes/);
    expect(() => createAuthenticator({ mode: 'jwt', jwksUrl: 'file:///etc/keys.json', clockToleranceSec: 0 })).toThrow(/http or https/);
    expect(() => createAuthenticator(options({ clockToleranceSec: -1 }))).toThrow(AuthConfigError);
  });
});

// ---------------------------------------------------------------- hook

interface HookCall {
  method: string;
  contentType: string | undefined;
  body: unknown;
}

describe('auth mode hook', () => {
  let hook: TestServer;
  let calls: HookCall[];
  let answer: (body: unknown, res: http.ServerResponse) => void;
  const options = (more: Partial<HookAuthOptions> = {}): HookAuthOptions => ({ mode: 'hook', url: `${hook.url}auth`, cacheMs: 10_000, timeoutMs: 1_000, ...more });

  beforeAll(async () => {
    hook = await serve((req, body, res) => {
      const parsed: unknown = JSON.parse(body);
      calls.push({ method: req.method ?? '', contentType: req.headers['content-type'], body: parsed });
      answer(parsed, res);
    });
  });
  afterAll(() => hook.close());
  afterEach(() => {
    calls = [];
    answer = (_body, res) => json(res, 200, { sub: 'user-7' });
  });
  calls = [];
  answer = (_body, res) => json(res, 200, { sub: 'user-7' });

  it('up (200): ok with the identity; sends method, path, uploadId and only the two headers', async () => {
    answer = (_body, res) => json(res, 200, { sub: 'user-7', profile: 'avatars', meta: { team: 'blue' }, ignored: true });
    const authenticate = createAuthenticator(options());
    const result = await authenticate(request('Bearer abc', { cookie: 'sid=s3cr3t' }));
    expect(identity(result)).toEqual({ sub: 'user-7', profile: 'avatars', meta: { team: 'blue' } });
    expect(calls).toEqual([
      {
        method: 'POST',
        contentType: 'application/json',
        body: { method: 'PATCH', path: '/files/abc', uploadId: 'abc', headers: { authorization: 'Bearer abc', cookie: 'sid=s3cr3t' } },
      },
    ]);
  });

  it('omits absent headers and the uploadId of a creation', async () => {
    const authenticate = createAuthenticator(options());
    await authenticate({ method: 'POST', path: '/files', cookie: 'sid=1' });
    await authenticate({ method: 'POST', path: '/files' });
    expect(calls.map((call) => call.body)).toEqual([
      { method: 'POST', path: '/files', headers: { cookie: 'sid=1' } },
      { method: 'POST', path: '/files', headers: {} },
    ]);
  });

  it('401: invalid with a credential, missing without one', async () => {
    answer = (_body, res) => json(res, 401, { error: 'no session' });
    const authenticate = createAuthenticator(options());
    const invalid = failure(await authenticate(request(undefined, { cookie: 'sid=expired' })));
    expect(invalid.reason).toBe('invalid');
    expectHumanMessage(invalid.message);
    const missing = failure(await authenticate(request()));
    expect(missing.reason).toBe('missing');
    expectHumanMessage(missing.message);
  });

  it('403: forbidden', async () => {
    answer = (_body, res) => json(res, 403, { error: 'banned' });
    const result = failure(await createAuthenticator(options())(request('Bearer t')));
    expect(result.reason).toBe('forbidden');
    expectHumanMessage(result.message);
    expect(AUTH_STATUS.forbidden).toBe(403);
  });

  it('an anonymous request still asks the hook, which may allow it', async () => {
    answer = (body, res) => json(res, 200, { sub: 'guest', meta: { seen: JSON.stringify(body) } });
    const result = identity(await createAuthenticator(options())(request()));
    expect(result.sub).toBe('guest');
    expect(calls).toHaveLength(1);
  });

  it('down (connection refused): unavailable', async () => {
    const result = await createAuthenticator(options({ url: await deadUrl() }))(request('Bearer t'));
    expect(failure(result).reason).toBe('unavailable');
    expectHumanMessage(failure(result).message);
    expect(result.ok === false && result.detail).toMatch(/ECONNREFUSED/);
  });

  it('slow (beyond timeoutMs): unavailable, in about timeoutMs', async () => {
    answer = (_body, res) => setTimeout(() => json(res, 200, { sub: 'late' }), 1_500).unref();
    const started = performance.now();
    const result = await createAuthenticator(options({ timeoutMs: 200 }))(request('Bearer t'));
    expect(failure(result).reason).toBe('unavailable');
    expect(result.ok === false && result.detail).toMatch(/within 200 ms/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a body that stalls after the headers: unavailable at timeoutMs', async () => {
    answer = (_body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"sub":');
    };
    const started = performance.now();
    expect(failure(await createAuthenticator(options({ timeoutMs: 200 }))(request('Bearer t'))).reason).toBe('unavailable');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it.each([
    ['not JSON', (res: http.ServerResponse) => res.end('OK')],
    ['no sub', (res: http.ServerResponse) => json(res, 200, { user: 'x' })],
    ['an empty sub', (res: http.ServerResponse) => json(res, 200, { sub: '' })],
    ['a bad profile', (res: http.ServerResponse) => json(res, 200, { sub: 'u', profile: '../x' })],
    ['a bad meta', (res: http.ServerResponse) => json(res, 200, { sub: 'u', meta: { a: 1 } })],
    ['an array', (res: http.ServerResponse) => json(res, 200, [{ sub: 'u' }])],
    ['a 500', (res: http.ServerResponse) => json(res, 500, { sub: 'u' })],
    ['a 204', (res: http.ServerResponse) => res.writeHead(204).end()],
    ['a redirect', (res: http.ServerResponse) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end()],
  ])('an answer with %s: unavailable, and not cached', async (_name, reply) => {
    answer = (_body, res) => reply(res);
    const authenticate = createAuthenticator(options());
    expect(failure(await authenticate(request('Bearer t'))).reason).toBe('unavailable');
    expect(failure(await authenticate(request('Bearer t'))).reason).toBe('unavailable');
    expect(calls).toHaveLength(2);
  });

  it('caching: one hook call for two requests with the same credential within cacheMs, another after', async () => {
    const authenticate = createAuthenticator(options({ cacheMs: 300 }));
    const first = identity(await authenticate(request('Bearer same', { cookie: 'sid=1' })));
    const second = identity(await authenticate(request('Bearer same', { cookie: 'sid=1', method: 'HEAD' })));
    expect(second).toEqual(first);
    expect(calls).toHaveLength(1);

    await authenticate(request('Bearer other', { cookie: 'sid=1' }));
    await authenticate(request('Bearer same'));
    expect(calls).toHaveLength(3);

    await new Promise((resolve) => setTimeout(resolve, 350));
    await authenticate(request('Bearer same', { cookie: 'sid=1' }));
    expect(calls).toHaveLength(4);
  });

  it('caching: refusals (401, 403) are cached, unavailable is not', async () => {
    let status = 403;
    answer = (_body, res) => json(res, status, { sub: 'user-7' });
    const authenticate = createAuthenticator(options());
    expect(failure(await authenticate(request('Bearer banned'))).reason).toBe('forbidden');
    status = 200;
    expect(failure(await authenticate(request('Bearer banned'))).reason).toBe('forbidden');
    expect(calls).toHaveLength(1);

    status = 401;
    expect(failure(await authenticate(request('Bearer stale'))).reason).toBe('invalid');
    status = 200;
    expect(failure(await authenticate(request('Bearer stale'))).reason).toBe('invalid');
    expect(calls).toHaveLength(2);

    status = 503;
    expect(failure(await authenticate(request('Bearer flaky'))).reason).toBe('unavailable');
    status = 200;
    expect(identity(await authenticate(request('Bearer flaky'))).sub).toBe('user-7');
    expect(calls).toHaveLength(4);
  });

  it('caching: requests with no credential share one entry, separate from any credential', async () => {
    answer = (body, res) => {
      const hasHeaders = typeof body === 'object' && body !== null && 'headers' in body && JSON.stringify(body.headers) !== '{}';
      json(res, hasHeaders ? 200 : 401, { sub: 'user-7' });
    };
    const authenticate = createAuthenticator(options());
    expect(failure(await authenticate(request())).reason).toBe('missing');
    expect(failure(await authenticate(request(undefined, { method: 'POST', path: '/files' }))).reason).toBe('missing');
    expect(calls).toHaveLength(1);
    expect((await authenticate(request('Bearer t'))).ok).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('caching: concurrent requests with the same credential make one call; cacheMs 0 caches nothing', async () => {
    answer = (_body, res) => setTimeout(() => json(res, 200, { sub: 'user-7' }), 50).unref();
    const authenticate = createAuthenticator(options());
    const results = await Promise.all([1, 2, 3].map(() => authenticate(request('Bearer burst'))));
    expect(results.every((result) => result.ok)).toBe(true);
    expect(calls).toHaveLength(1);

    const uncached = createAuthenticator(options({ cacheMs: 0 }));
    await uncached(request('Bearer t'));
    await uncached(request('Bearer t'));
    expect(calls).toHaveLength(3);
  });

  it('caching: a caller changing its identity does not change the cached one', async () => {
    const authenticate = createAuthenticator(options());
    const first = identity(await authenticate(request('Bearer t')));
    first.sub = '203.0.113.9';
    first.meta.x = 'y';
    expect(identity(await authenticate(request('Bearer t')))).toEqual({ sub: 'user-7', meta: {} });
  });

  it('caching: bounded, the least recently used credential goes first', async () => {
    const authenticate = createAuthenticator(options({ maxCacheEntries: 2 }));
    await authenticate(request('Bearer a'));
    await authenticate(request('Bearer b'));
    await authenticate(request('Bearer a')); // cached, and now more recent than b
    await authenticate(request('Bearer c')); // evicts b
    expect(calls).toHaveLength(3);
    await authenticate(request('Bearer a'));
    expect(calls).toHaveLength(3);
    await authenticate(request('Bearer b'));
    expect(calls).toHaveLength(4);
  });

  it('refuses options that cannot work', () => {
    expect(() => createAuthenticator(options({ url: 'not a url' }))).toThrow(AuthConfigError);
    expect(() => createAuthenticator(options({ timeoutMs: 0 }))).toThrow(/timeoutMs/);
    expect(() => createAuthenticator(options({ cacheMs: -1 }))).toThrow(/cacheMs/);
    expect(() => createAuthenticator(options({ maxCacheEntries: 0 }))).toThrow(/maxCacheEntries/);
  });
});

describe('the expiring LRU', () => {
  it('expires entries after the ttl and keeps at most maxEntries', () => {
    let now = 0;
    const cache = new ExpiringLru<string>(2, 100, () => now);
    cache.set('a', '1');
    cache.set('b', '2');
    cache.set('c', '3');
    expect([cache.get('a'), cache.get('b'), cache.get('c'), cache.size]).toEqual([undefined, '2', '3', 2]);
    now = 100;
    expect(cache.get('b')).toBeUndefined();
    expect(cache.size).toBe(1);
  });
});

// ---------------------------------------------------------------- none

describe('auth mode none', () => {
  it('lets everyone in as anonymous, a fresh identity each time', async () => {
    const authenticate = createAuthenticator({ mode: 'none' });
    const first = await authenticate(request());
    expect(first).toEqual({ ok: true, identity: { sub: 'anonymous', meta: {} } });
    identity(first).sub = '198.51.100.1';
    expect(identity(await authenticate(request('Bearer whatever')))).toEqual({ sub: 'anonymous', meta: {} });
  });
});
