/** The Koa application: request ids and logs, the routes, and a last-resort error handler. */
import { randomUUID } from 'node:crypto';
import type { Server as TusServer } from '@tus/server';
import Koa from 'koa';
import type { DiskPublicStore } from '../storage/public-store.ts';
import type { Config } from './config.ts';
import { bindRequestLogger, type Logger } from './logger.ts';
import { mediaHandler } from './media.ts';
import type { Metrics } from './metrics.ts';
import { tusProtocol, type ProtocolState } from './protocol.ts';
import { refuse, setCors } from './responses.ts';
import { statusHandler, type StatusDeps } from './status.ts';
import { tusHandler } from './tus.ts';

export interface AppDeps extends StatusDeps {
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
  const media = deps.media ? mediaHandler(deps.media, config) : undefined;

  app.use(requestLogging(log, deps.metrics));
  app.use(lastResort(log));
  app.use(async (ctx, next) => {
    const path = ctx.path;
    if (path === config.tusPath || path.startsWith(`${config.tusPath}/`)) {
      return protocol(ctx, () => tus(ctx, next));
    }
    if (path === '/healthz') {
      ctx.body = { status: 'ok' };
      return;
    }
    if (path === '/metrics' && ctx.method === 'GET') {
      ctx.type = deps.metrics.registry.contentType;
      ctx.body = await deps.metrics.registry.metrics();
      return;
    }
    if (path === '/readyz') {
      const status = state.shuttingDown ? 'shutting-down' : !state.ready ? 'starting' : state.busy() ? 'busy' : 'ready';
      ctx.status = status === 'ready' ? 200 : 503;
      ctx.body = { status };
      return;
    }
    if (path.startsWith('/uploads/') && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      setCors(ctx, config.ALLOWED_ORIGINS);
      return status(ctx, path.slice('/uploads/'.length));
    }
    if (media && path.startsWith('/media/')) {
      return media(ctx, path.slice('/media/'.length));
    }
    return next();
  });
  app.use(async (ctx) => {
    refuse(ctx, 'E_NOT_FOUND', `Nothing at ${ctx.method} ${ctx.path}.`);
  });
  return app;
}
