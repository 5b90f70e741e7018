/**
 * The contract of tusgate's authentication: what a request offers, what comes back.
 *
 * An authenticator never throws for a client's mistake or an unreachable identity
 * service: every outcome is an AuthResult. It throws only when it is created with
 * options that cannot work (AuthConfigError).
 */

/** Who is uploading, as the identity provider (a JWT or the app's hook) says. */
export interface Identity {
  /** The subject: a user id (non-empty, at most 256 characters). */
  sub: string;
  /** An optional policy profile name ([A-Za-z0-9_-]{1,64}). */
  profile?: string;
  /** Free-form labels (at most 16 keys [A-Za-z0-9_-]{1,64}, string values of up to 256 characters). */
  meta: Record<string, string>;
}

/** The parts of an HTTP request authentication looks at. */
export interface AuthRequest {
  method: string;
  path: string;
  uploadId?: string;
  authorization?: string;
  cookie?: string;
}

export type AuthReason = 'missing' | 'invalid' | 'expired' | 'forbidden' | 'unavailable';

export type AuthFailure = {
  ok: false;
  reason: AuthReason;
  /** A sentence for the client that says what to do. Never a library's error text. */
  message: string;
  /** For the server log only (may quote library errors, URLs, status codes): never send it to the client. */
  detail?: string;
};

export type AuthResult = { ok: true; identity: Identity } | AuthFailure;

export type Authenticate = (request: AuthRequest) => Promise<AuthResult>;

export interface JwtAuthOptions {
  mode: 'jwt';
  /** An HS256 shared secret (at least 32 bytes, used as UTF-8 bytes, as Supabase's JWT secret is). */
  secret?: string;
  /** A JSON Web Key Set URL (RS256, ES256, EdDSA). Exactly one of secret and jwksUrl. */
  jwksUrl?: string;
  /** When set, the token's iss must equal it. */
  issuer?: string;
  /** When set, the token's aud must be it or contain it. */
  audience?: string;
  /** Seconds of clock skew allowed on exp and nbf. */
  clockToleranceSec: number;
  /** How long a verified token's identity is reused for the same token (never past its exp); 0: verify every request. */
  cacheMs?: number;
  maxCacheEntries?: number;
}

export interface HookAuthOptions {
  mode: 'hook';
  /** The app's endpoint that answers who the credential belongs to (http or https). */
  url: string;
  /** How long an answer (ok, invalid, forbidden) is reused for the same credential; 0 disables the cache. */
  cacheMs: number;
  /** How long the hook may take to answer, body included. */
  timeoutMs: number;
  /** The most credentials whose answers are kept (least recently used dropped first); default 10,000. */
  maxCacheEntries?: number;
}

export interface NoAuthOptions {
  mode: 'none';
}

export type AuthOptions = JwtAuthOptions | HookAuthOptions | NoAuthOptions;

/** The HTTP status each reason calls for (401 should carry `WWW-Authenticate: Bearer` in jwt mode). */
export const AUTH_STATUS: Readonly<Record<AuthReason, number>> = Object.freeze({
  missing: 401,
  invalid: 401,
  expired: 401,
  forbidden: 403,
  unavailable: 503,
});

/** Options that cannot work; thrown by createAuthenticator, never by authenticate. */
export class AuthConfigError extends Error {
  override name = 'AuthConfigError';
}

export function deny(reason: AuthReason, message: string, detail?: string): AuthFailure {
  return detail === undefined ? { ok: false, reason, message } : { ok: false, reason, message, detail };
}
