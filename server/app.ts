/** The Koa application: request ids and logs, the routes, and a last-resort error handler. */
import { randomUUID } from 'node:crypto';
import type { Server as TusServer } from '@tus/server';
import Koa from 'koa';
import type { DiskPublicStore } from '../storage/public-store.ts';
import type { Config } from './config.ts';
import { bindRequestLogger, type Logger } from './logger.ts';
import { demoEnabled, demoHandler } from './demo.ts';
import { mediaHandler } from './media.ts';
import type { Metrics } from './metrics.ts';
import { tusProtocol, uploadIdOf, type ProtocolState } from './protocol.ts';
import { refuse, setCors } from './responses.ts';
import { admission, type AdmissionDeps } from './admission.ts';
import { isLoopback } from './config.ts';
import { identifier, type IdentityDeps } from './identity.ts';
import { NO_SUCH_ID, preflight, sameSecret, sendRefusal, serveMetrics } from './responses.ts';
import { outageRefusal } from './tus-errors.ts';
import { deleteHandler, statusHandler, type StatusDeps } from './status.ts';
import { isId } from '../storage/keys.ts';
import { tusHandler } from './tus.ts';
import { openApiDocument } from './openapi.ts';

export interface AppDeps extends StatusDeps, IdentityDeps, AdmissionDeps {
  config: Config;
  tus: TusServer;
  /** Set when the app itself serves the public store at /media. */
  media?: DiskPublicStore;
  state: ProtocolState & { ready: boolean };
  metrics: Metrics;
}

const REQUEST_ID = /^[\w.:-]{1,64}$/;

/** Bytes a socket had read when its previous response ended (keep-alive connections carry several requests). */
const socketMark = new WeakMap<object, number>();

function requestLogging(log: Logger, metrics: Metrics): Koa.Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-request-id');
    const reqId = REQUEST_ID.test(given) ? given : randomUUID();
    const reqLog = log.child({ reqId });
    ctx.state.log = reqLog;
    ctx.set('X-Request-Id', reqId);
    bindRequestLogger(ctx.req, reqLog);
    const started = performance.now();
    const socket = ctx.req.socket;
    const bytesBefore = socketMark.get(socket) ?? 0;
    const method = ctx.method;
    // where a PATCH resumes (a number in the log, to see a resume after a dropped connection)
    const offset = ctx.get('upload-offset');
    const uploadOffset = /^\d{1,16}$/.test(offset) ? Number(offset) : undefined;
    ctx.res.once('finish', () => {
      const status = ctx.res.statusCode;
      socketMark.set(socket, socket.bytesRead);
      const refusal = ctx.state.refusal as { code: string } | undefined;
      metrics.requests.inc({ method, status: String(status) });
      if (refusal) metrics.refusals.inc({ code: refusal.code, stage: 'protocol' });
      reqLog[status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info'](
        {
          method,
          path: ctx.path,
          status,
          ms: Math.round(performance.now() - started),
          socketBytesRead: socket.bytesRead - bytesBefore,
          ...(uploadOffset !== undefined ? { uploadOffset } : {}),
          ...(refusal ? { code: refusal.code } : {}),
        },
        'request',
      );
    });
    await next();
  };
}

function lastResort(log: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const reqLog = (ctx.state.log as Logger | undefined) ?? log;
      reqLog.error({ err: error }, 'unhandled error');
      if (ctx.respond === false || ctx.res.headersSent) {
        ctx.res.destroy();
        return;
      }
      const outage = outageRefusal(error);
      if (outage) {
        ctx.set('Retry-After', '5');
        return sendRefusal(ctx, outage);
      }
      refuse(ctx, 'E_INTERNAL', `Internal server error (request id ${String(ctx.response.get('X-Request-Id'))}).`);
    }
  };
}

export function createApp(deps: AppDeps, log: Logger): Koa {
  const { config, state } = deps;
  const app = new Koa();
  app.proxy = config.TRUST_PROXY;
  app.silent = true;
  const protocol = tusProtocol(config, state);
  const tus = tusHandler(deps.tus);
  const status = statusHandler(deps);
  const remove = deleteHandler(deps);
  const identify = identifier(deps);
  const admit = admission(deps);
  const metricsOpen = config.METRICS_PORT === undefined && (config.METRICS_TOKEN !== undefined || isLoopback(config.HOST));
  const media = deps.media ? mediaHandler(deps.media, config) : undefined;
  let openApi: object | undefined;
  const demo = demoEnabled(config) ? demoHandler(config) : undefined;

  app.use(requestLogging(log, deps.metrics));
  app.use(lastResort(log));
  app.use(async (ctx, next) => {
    const path = ctx.path;
    if (path === config.tusPath || path.startsWith(`${config.tusPath}/`)) {
      return protocol(ctx, async () => {
        if (ctx.method === 'OPTIONS') return tus(ctx, next);
        const context = await identify(ctx, uploadIdOf(path, config.tusPath) || undefined);
        if (!context || !(await admit(ctx, context))) return;
        return tus(ctx, next);
      });
    }
    if (path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (path === '/openapi.json' && ctx.method === 'GET') {
      ctx.body = openApi ??= openApiDocument(config);
      return;
    }
    if (path === '/metrics' && ctx.method === 'GET' && metricsOpen) {
      if (config.METRICS_TOKEN !== undefined && !sameSecret(ctx.get('authorization'), `Bearer ${config.METRICS_TOKEN}`)) {
        ctx.set('WWW-Authenticate', 'Bearer realm="tusgate metrics"');
        return refuse(ctx, 'E_UNAUTHENTICATED', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.');
      }
      return serveMetrics(ctx, deps.metrics);
    }
    if (path === '/readyz') {
      const status = state.shuttingDown ? 'shutting-down' : !state.ready ? 'starting' : state.busy() ? 'busy' : 'ready';
      ctx.status = status === 'ready' ? 200 : 503;
      ctx.body = { status };
      return;
    }
    if (path.startsWith('/uploads/')) {
      setCors(ctx, config);
      const id = path.slice('/uploads/'.length);
      if (ctx.method === 'OPTIONS') return preflight(ctx, 'GET, HEAD, DELETE');
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD' && ctx.method !== 'DELETE') return next();
      if (!isId(id)) return refuse(ctx, 'E_NOT_FOUND', NO_SUCH_ID);
      const context = await identify(ctx, id);
      if (!context) return;
      return ctx.method === 'DELETE' ? remove(ctx, id) : status(ctx, id, context);
    }
    if (media && path.startsWith('/media/')) {
      return media(ctx, path.slice('/media/'.length));
    }
    if (demo && (path === '/' || path.startsWith('/demo/')) && (await demo(ctx))) return;
    return next();
  });
  app.use(async (ctx) => {
    refuse(ctx, 'E_NOT_FOUND', `Nothing at ${ctx.method} ${ctx.path}.`);
  });
  return app;
}
