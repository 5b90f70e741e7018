/** Reads a bearer token from an Authorization header (RFC 6750, section 2.1). */
import { deny, type AuthFailure } from './types.ts';

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export const MISSING_BEARER = 'The Authorization header is required: send Authorization: Bearer <token>.';

export function bearerToken(authorization: string | undefined): { ok: true; token: string } | AuthFailure {
  if (authorization === undefined || authorization.trim() === '') return deny('missing', MISSING_BEARER);
  const match = BEARER.exec(authorization);
  if (match?.[1] === undefined) {
    return deny(
      'invalid',
      'The Authorization header must be "Bearer <token>" (one space, then the token): send the token your sign-in gave you.',
      'authorization header is not a bearer token',
    );
  }
  return { ok: true, token: match[1] };
}
