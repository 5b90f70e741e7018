/**
 * Identity providers for end-to-end tests, as real HTTP servers on 127.0.0.1:
 * - a JWKS endpoint serving public keys made by jose, and tokens signed with them;
 * - HS256 tokens signed with a shared secret (AUTH_JWT_SECRET);
 * - an application's auth hook (AUTH_MODE=hook) whose answer the test decides per request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';

export interface Claims {
  sub?: string;
  profile?: string;
  meta?: Record<string, string>;
  /** Seconds from now (may be negative: already expired); null: no exp claim. Default 600. */
  expIn?: number | null;
}

function build(claims: Claims): SignJWT {
  const { sub = 'user-a', profile, meta, expIn = 600 } = claims;
  const payload: Record<string, unknown> = {};
  if (profile !== undefined) payload.profile = profile;
  if (meta !== undefined) payload.meta = meta;
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(payload).setIssuedAt(now).setSubject(sub);
  if (expIn !== null) jwt.setExpirationTime(now + expIn);
  return jwt;
}

/** A minimal HTTP server collecting each request's body; closed with every connection. */
export interface TestHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function listen(
  handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void | Promise<void>,
  port = 0,
): Promise<TestHttpServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks).toString('utf8'), res)).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  let closed = false;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
export async function deadUrl(path = '/'): Promise<string> {
  const server = await listen((_req, _body, res) => {
    res.end();
  });
  await server.close();
  return `${server.url}${path}`;
}

// ------------------------------------------------------------------- JWKS

export interface Jwks extends TestHttpServer {
  /** The JWKS URL (AUTH_JWKS_URL). */
  jwksUrl: string;
  /** Signs a token with the served key. */
  sign(claims?: Claims): Promise<string>;
  /** Signs a token with a key of the same kid and alg that the JWKS does not serve (a forgery). */
  forge(claims?: Claims): Promise<string>;
  hits(): number;
}

interface KeyPair {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function keyPair(alg: 'ES256' | 'RS256' | 'EdDSA', kid: string): Promise<KeyPair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export async function startJwks(alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<Jwks> {
  const key = await keyPair(alg, 'test-key-1');
  const forger = await keyPair(alg, 'test-key-1');
  let hits = 0;
  const server = await listen((_req, _body, res) => {
    hits++;
    sendJson(res, 200, { keys: [key.jwk] });
  });
  const signWith = (pair: KeyPair, claims: Claims = {}) => build(claims).setProtectedHeader({ alg, kid: pair.kid }).sign(pair.privateKey);
  return {
    ...server,
    jwksUrl: `${server.url}/.well-known/jwks.json`,
    sign: (claims) => signWith(key, claims),
    forge: (claims) => signWith(forger, claims),
    hits: () => hits,
  };
}

// ------------------------------------------------------------------- HS256

export function signHs256(secret: string, claims: Claims = {}): Promise<string> {
  return build(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

// ------------------------------------------------------------------- auth hook

export interface HookCall {
  method: string;
  path: string;
  uploadId?: string;
  headers: { authorization?: string; cookie?: string };
}

export type HookAnswer = { status: number; body?: unknown; delayMs?: number };

export interface AuthHook extends TestHttpServer {
  /** AUTH_HOOK_URL. */
  hookUrl: string;
  calls: HookCall[];
}

/** The application's auth hook: `decide` answers each call (after `delayMs`, if given). */
export async function startAuthHook(decide: (call: HookCall) => HookAnswer): Promise<AuthHook> {
  const calls: HookCall[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = await listen(async (_req, body, res) => {
    const call = JSON.parse(body) as HookCall;
    calls.push(call);
    const answer = decide(call);
    if (answer.delayMs) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, answer.delayMs);
        timers.add(timer);
      });
    }
    if (res.destroyed) return;
    if (answer.body === undefined) res.writeHead(answer.status).end();
    else sendJson(res, answer.status, answer.body);
  });
  return {
    ...server,
    hookUrl: `${server.url}/auth`,
    calls,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await server.close();
    },
  };
}
