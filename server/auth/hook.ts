/**
 * mode=hook: for apps with cookie sessions, tusgate asks the app who the request is.
 *
 * POST <url> with JSON { method, path, uploadId, headers: { authorization, cookie } }
 * (only those two headers, each omitted when absent). The app answers
 *   200 { sub, profile?, meta? }  → ok (validated like JWT claims)
 *   401                           → invalid ("missing" when the request had no credential)
 *   403                           → forbidden
 *   anything else, a timeout, a network error, a bad body → unavailable (nobody gets in)
 *
 * Answers other than "unavailable" are cached per credential (sha256 of Authorization and
 * Cookie; requests with neither share one "no credential" entry) for cacheMs, and
 * concurrent requests with the same credential share one call to the hook. The cache key
 * is the credential only: the hook's answer must not depend on method, path or uploadId
 * unless cacheMs is 0.
 */
import { createHash } from 'node:crypto';
import { MEMORY_BOUNDS } from '../config.ts';
import { ExpiringLru } from './cache.ts';
import { copyIdentity, parseIdentity } from './identity.ts';
import { describe, parseHttpUrl } from './util.ts';
import { AuthConfigError, deny, type Authenticate, type AuthRequest, type AuthResult, type HookAuthOptions } from './types.ts';

const NO_CREDENTIAL = 'no-credential';

const UNAVAILABLE = 'The authentication service did not answer properly, so the request cannot be checked: retry in a moment.';

interface Credential {
  authorization?: string;
  cookie?: string;
}

export function createHookAuthenticator(options: HookAuthOptions): Authenticate {
  const url = parseHttpUrl(options.url, 'url');
  const whole = (value: number, name: string, min: number) => {
    if (!Number.isSafeInteger(value) || value < min) throw new AuthConfigError(`auth ${name} must be a whole number, ${min} or more`);
  };
  whole(options.cacheMs, 'cacheMs', 0);
  whole(options.timeoutMs, 'timeoutMs', 1);
  const maxCacheEntries = options.maxCacheEntries ?? MEMORY_BOUNDS.authCacheEntries;
  whole(maxCacheEntries, 'maxCacheEntries', 1);

  const cache = new ExpiringLru<AuthResult>(maxCacheEntries, options.cacheMs);
  const pending = new Map<string, Promise<AuthResult>>();

  return async (request) => {
    const credential = credentialOf(request);
    const key = cacheKey(credential);
    const cached = cache.get(key);
    if (cached !== undefined) return copy(cached);
    let answer = pending.get(key);
    if (answer === undefined) {
      answer = ask(url, options.timeoutMs, request, credential)
        .then((result) => {
          if (result.ok || result.reason !== 'unavailable') cache.set(key, result);
          return result;
        })
        .finally(() => pending.delete(key));
      pending.set(key, answer);
    }
    return copy(await answer);
  };
}

function credentialOf(request: AuthRequest): Credential {
  const credential: Credential = {};
  if (request.authorization !== undefined && request.authorization !== '') credential.authorization = request.authorization;
  if (request.cookie !== undefined && request.cookie !== '') credential.cookie = request.cookie;
  return credential;
}

function cacheKey(credential: Credential): string {
  if (credential.authorization === undefined && credential.cookie === undefined) return NO_CREDENTIAL;
  return createHash('sha256')
    .update(JSON.stringify([credential.authorization ?? null, credential.cookie ?? null]))
    .digest('hex');
}

function copy(result: AuthResult): AuthResult {
  return result.ok ? { ok: true, identity: copyIdentity(result.identity) } : { ...result };
}

async function ask(url: URL, timeoutMs: number, request: AuthRequest, headers: Credential): Promise<AuthResult> {
  const body = JSON.stringify({ method: request.method, path: request.path, uploadId: request.uploadId, headers });
  let status: number;
  let answer: unknown;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    if (status !== 200) {
      await response.body?.cancel().catch(() => undefined);
    } else {
      try {
        answer = await response.json();
      } catch (error) {
        if (isTimeout(error)) throw error;
        return deny('unavailable', UNAVAILABLE, `auth hook ${url.href} answered 200 with a body that is not JSON`);
      }
    }
  } catch (error) {
    const why = isTimeout(error) ? `did not answer within ${timeoutMs} ms` : `could not be reached: ${describe(error)}`;
    return deny('unavailable', UNAVAILABLE, `auth hook ${url.href} ${why}`);
  }

  const hasCredential = headers.authorization !== undefined || headers.cookie !== undefined;
  switch (status) {
    case 200: {
      const parsed = parseIdentity(answer);
      if (parsed.ok) return parsed;
      return deny(
        'unavailable',
        UNAVAILABLE,
        `auth hook ${url.href} answered 200 with an invalid identity: ${parsed.claim ?? 'body'} ${parsed.rule}`,
      );
    }
    case 401:
      return hasCredential
        ? deny('invalid', 'Your session or token was not accepted: sign in again, then retry.', `auth hook answered 401`)
        : deny(
            'missing',
            'Sign-in is required: send your session cookie or Authorization: Bearer <token>, then retry.',
            'auth hook answered 401 to a request without credential',
          );
    case 403:
      return deny('forbidden', 'You are signed in but not allowed to upload here: ask the site for access.', 'auth hook answered 403');
    default:
      return deny('unavailable', UNAVAILABLE, `auth hook ${url.href} answered ${status} (expected 200, 401 or 403)`);
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || (error.name === 'AbortError' && error.cause instanceof Error && error.cause.name === 'TimeoutError'));
}
