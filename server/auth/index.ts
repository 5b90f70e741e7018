/**
 * tusgate's authentication: createAuthenticator(options) → authenticate(request).
 *
 *   jwt   a bearer JWT (HS256 secret, or RS256/ES256/EdDSA from a JWKS URL)   jwt.ts
 *   hook  the app answers who a cookie or token belongs to (cached)          hook.ts
 *   none  everyone is "anonymous"
 */
import { createHookAuthenticator } from './hook.ts';
import { createJwtAuthenticator } from './jwt.ts';
import type { Authenticate, AuthOptions } from './types.ts';

export function createAuthenticator(options: AuthOptions): Authenticate {
  switch (options.mode) {
    case 'jwt':
      return createJwtAuthenticator(options);
    case 'hook':
      return createHookAuthenticator(options);
    case 'none':
      // A fresh object each time: the caller replaces sub (e.g. with the client IP).
      return async () => ({ ok: true, identity: { sub: 'anonymous', meta: {} } });
  }
}

export { createHookAuthenticator } from './hook.ts';
export { createJwtAuthenticator } from './jwt.ts';
export { parseIdentity } from './identity.ts';
export {
  AUTH_STATUS,
  AuthConfigError,
  type Authenticate,
  type AuthFailure,
  type AuthOptions,
  type AuthReason,
  type AuthRequest,
  type AuthResult,
  type HookAuthOptions,
  type Identity,
  type JwtAuthOptions,
  type NoAuthOptions,
} from './types.ts';
