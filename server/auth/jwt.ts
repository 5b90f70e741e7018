/**
 * mode=jwt: a bearer JWT verified with an HS256 secret or with a JSON Web Key Set
 * (RS256, ES256, EdDSA). exp is required; iss and aud are checked when configured.
 *
 * With a JWKS, jose caches the keys (refetched after 10 minutes) and, for a token whose
 * kid it does not know, refetches at most once every 30 seconds: a provider's new key is
 * picked up without a restart. If the keys cannot be fetched the answer is "unavailable":
 * nobody gets in on a guess.
 *
 * A token that verified is remembered (by its sha256) for cacheMs, never past its exp: a
 * tus upload sends the same token with every PATCH, and checking its signature again each
 * time cost 0.15-0.22 ms per request here (jose's WebCrypto verify goes through the thread
 * pool). Only successes are remembered; an unknown or changed token is verified.
 * Forgetting a key takes as long as jose's cache of the key set (10 minutes) anyway.
 */
import { createHash, createSecretKey } from 'node:crypto';
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';

type Jose = typeof import('jose');
let loading: Promise<Jose> | undefined;
/** jose, loaded on the first token (AUTH_MODE=jwt only): a server without JWT auth never loads it. */
const jose = (): Promise<Jose> => (loading ??= import('jose'));
import { bearerToken } from './bearer.ts';
import { MEMORY_BOUNDS } from '../config.ts';
import { ExpiringLru } from './cache.ts';
import { copyIdentity, parseIdentity } from './identity.ts';
import { describe, parseHttpUrl } from './util.ts';
import { AuthConfigError, deny, type Authenticate, type AuthFailure, type Identity, type JwtAuthOptions } from './types.ts';

export const SECRET_ALGORITHMS = ['HS256'] as const;
export const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
const MIN_SECRET_BYTES = 32;

type Verify = (token: string) => Promise<JWTPayload>;

/** The key source failed (network, timeout, not 200, not a key set): not the token's fault. */
class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
}

export function createJwtAuthenticator(options: JwtAuthOptions): Authenticate {
  const verify = createVerifier(options);
  jose().catch(() => {}); // loading starts now, with the server, not on the first request (a failure surfaces there)
  const verified = new ExpiringLru<{ identity: Identity; expiresAt: number }>(options.maxCacheEntries ?? MEMORY_BOUNDS.authCacheEntries, options.cacheMs ?? 0);
  return async (request) => {
    const bearer = bearerToken(request.authorization);
    if (!bearer.ok) return bearer;
    const key = createHash('sha256').update(bearer.token).digest('base64url');
    const known = verified.get(key);
    if (known !== undefined && known.expiresAt > Date.now()) return { ok: true, identity: copyIdentity(known.identity) };
    let payload: JWTPayload;
    try {
      payload = await verify(bearer.token);
    } catch (error) {
      return explain(error, options, (await jose()).errors);
    }
    const parsed = parseIdentity(payload);
    if (parsed.ok) {
      // exp is required and checked: remembered until then (with the same tolerance)
      if (typeof payload.exp === 'number') verified.set(key, { identity: copyIdentity(parsed.identity), expiresAt: (payload.exp + options.clockToleranceSec) * 1000 });
      return parsed;
    }
    return deny(
      'invalid',
      parsed.claim === null
        ? 'The token\'s claims are not a JSON object: get a new token from your sign-in.'
        : `The token's "${parsed.claim}" claim ${parsed.rule}: get a token whose claims follow these rules.`,
      `claim ${parsed.claim ?? '(all)'} failed validation`,
    );
  };
}

function createVerifier(options: JwtAuthOptions): Verify {
  const { secret, jwksUrl } = options;
  if ((secret === undefined) === (jwksUrl === undefined)) {
    throw new AuthConfigError('auth mode jwt needs exactly one of secret (HS256) and jwksUrl (RS256, ES256, EdDSA)');
  }
  if (!Number.isFinite(options.clockToleranceSec) || options.clockToleranceSec < 0) {
    throw new AuthConfigError('auth clockToleranceSec must be a number of seconds, 0 or more');
  }
  const base: JWTVerifyOptions = {
    requiredClaims: ['exp'],
    clockTolerance: options.clockToleranceSec,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };
  if (secret !== undefined) {
    const key = new TextEncoder().encode(secret);
    if (key.byteLength < MIN_SECRET_BYTES) {
      throw new AuthConfigError(`the HS256 auth secret must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518, section 3.2)`);
    }
    const verifyOptions: JWTVerifyOptions = { ...base, algorithms: [...SECRET_ALGORITHMS] };
    // a KeyObject made once: jose would import the raw bytes again for every token
    const keyObject = createSecretKey(key);
    return async (token) => (await (await jose()).jwtVerify(token, keyObject, verifyOptions)).payload;
  }
  const getKey = remoteKeys(parseHttpUrl(jwksUrl ?? '', 'jwksUrl'));
  const verifyOptions: JWTVerifyOptions = { ...base, algorithms: [...JWKS_ALGORITHMS] };
  return async (token) => {
    const { errors, jwtVerify } = await jose();
    try {
      return (await jwtVerify(token, getKey, verifyOptions)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      // Several keys fit a token without kid (e.g. during a rotation): try each, as jose documents.
      for await (const key of error) {
        try {
          return (await jwtVerify(token, key, verifyOptions)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  };
}

function remoteKeys(url: URL): JWTVerifyGetKey {
  let jwks: JWTVerifyGetKey | undefined;
  return async (header, token) => {
    const { createRemoteJWKSet, errors } = await jose();
    jwks ??= createRemoteJWKSet(url);
    try {
      return await jwks(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new KeysUnavailable(`JWKS ${url.href}: ${describe(error)}`, { cause: error });
    }
  };
}

const SIGN_IN_AGAIN = 'sign in again to get a new token';

function explain(error: unknown, options: JwtAuthOptions, errors: Jose['errors']): AuthFailure {
  const detail = describe(error);
  if (error instanceof KeysUnavailable) {
    return deny(
      'unavailable',
      'The keys that verify tokens could not be fetched from the identity provider, so the token cannot be checked: retry in a moment.',
      detail,
    );
  }
  if (error instanceof errors.JWTExpired) {
    const exp = error.payload.exp;
    const when = typeof exp === 'number' && Number.isFinite(exp) ? ` at ${new Date(exp * 1000).toISOString()}` : '';
    return deny('expired', `The token expired${when}: refresh your session or ${SIGN_IN_AGAIN}, then retry.`, detail);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    return deny('invalid', claimMessage(error, options), detail);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    const accepted = (options.secret === undefined ? JWKS_ALGORITHMS : SECRET_ALGORITHMS).join(', ');
    return deny('invalid', `The token is signed with an algorithm this server does not accept (it accepts ${accepted}): ${SIGN_IN_AGAIN}.`, detail);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return deny('invalid', `The token's signature does not verify: it was not issued by this server's identity provider, or it was altered; ${SIGN_IN_AGAIN}.`, detail);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return deny('invalid', `The token is signed with a key the identity provider does not publish: ${SIGN_IN_AGAIN}.`, detail);
  }
  return deny('invalid', 'The bearer token is not a well-formed JWT: send the token your sign-in gave you, unchanged.', detail);
}

function claimMessage(error: InstanceType<Jose['errors']['JWTClaimValidationFailed']>, options: JwtAuthOptions): string {
  switch (error.claim) {
    case 'exp':
      return error.reason === 'missing'
        ? `The token has no expiry (exp claim), and tokens that never expire are not accepted: ${SIGN_IN_AGAIN}.`
        : 'The token\'s expiry (exp claim) is not a number of seconds since 1970: get a new token.';
    case 'iss':
      return `The token was issued by another issuer than ${JSON.stringify(options.issuer)}, which this server accepts: ${SIGN_IN_AGAIN} with that issuer.`;
    case 'aud':
      return `The token is not meant for this server (its aud claim must include ${JSON.stringify(options.audience)}): get a token for this audience.`;
    case 'nbf':
      return 'The token is not valid yet (nbf claim is in the future): check the clock of the machine that made it, or retry later.';
    default:
      return `The token's claims are not valid: ${SIGN_IN_AGAIN}.`;
  }
}
