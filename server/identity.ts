/**
 * Who sends a request, on every request that touches an upload: every tus method (and
 * each of them through X-HTTP-Method-Override), and /uploads/:id. An upload belongs to
 * the subject that created it (kept in its state, server-side): another subject gets
 * 404, as if it did not exist. A missing, malformed or expired credential gets 401 with
 * `WWW-Authenticate: Bearer`; an auth hook that cannot be reached gets 503, never a pass.
 */
import type Koa from 'koa';
import type { GatedStore } from '../storage/gated-store.ts';
import type { Config } from './config.ts';
import { requestLogger, type Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { Authenticate } from './auth/index.ts';
import { bindContext, type RequestContext } from './request-context.ts';
import { NO_SUCH_ID, NO_SUCH_URL, refuse } from './responses.ts';

export interface IdentityDeps {
  config: Config;
  authenticate: Authenticate;
  store: GatedStore;
  metrics: Metrics;
  log: Logger;
}

/**
 * Authenticates the request and, when it names an upload, checks that the upload is the
 * caller's. Answers the refusal itself and returns undefined when the request may not go on.
 */
export function identifier({ config, authenticate, store, metrics, log }: IdentityDeps) {
  const anonymous = config.authMode === 'none';


  return async (ctx: Koa.Context, uploadId: string | undefined): Promise<RequestContext | undefined> => {
    const result = await authenticate({
      method: ctx.method,
      path: ctx.path,
      uploadId,
      authorization: ctx.get('authorization') || undefined,
      cookie: ctx.get('cookie') || undefined,
    });
    if (!result.ok) {
      requestLogger(ctx.req, log).warn({ reason: result.reason, detail: result.detail }, 'request not authenticated');
      metrics.refusals.inc({ code: result.reason === 'unavailable' ? 'E_AUTH_UNAVAILABLE' : 'E_UNAUTHENTICATED', stage: 'auth' });
      if (ctx.method === 'PATCH' || ctx.method === 'POST') ctx.set('Connection', 'close');
      if (result.reason === 'unavailable') {
        ctx.set('Retry-After', '5');
        refuse(ctx, 'E_AUTH_UNAVAILABLE', result.message);
      } else if (result.reason === 'forbidden') {
        refuse(ctx, 'E_FORBIDDEN', result.message);
      } else {
        ctx.set('WWW-Authenticate', result.reason === 'missing' ? 'Bearer realm="tusgate"' : 'Bearer realm="tusgate", error="invalid_token"');
        refuse(ctx, 'E_UNAUTHENTICATED', result.message);
      }
      return undefined;
    }
    const { identity } = result;
    const context: RequestContext = { identity, quotaKey: anonymous ? `ip:${ctx.ip}` : `sub:${identity.sub}` };
    if (uploadId) {
      // a lost state is rebuilt first (its owner is kept with the staged upload); an upload
      // whose owner cannot be established is nobody's: fail closed
      const state = await store.stateOf(uploadId);
      if (!anonymous && state?.owner !== identity.sub) {
        if (ctx.method === 'PATCH') ctx.set('Connection', 'close');
        // the very answer an unknown id gets on this route: nothing tells them apart
        refuse(ctx, 'E_NOT_FOUND', ctx.path.startsWith('/uploads/') ? NO_SUCH_ID : NO_SUCH_URL);
        return undefined;
      }
      context.state = state;
    }
    bindContext(ctx.req, context);
    return context;
  };
}
