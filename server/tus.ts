/** @tus/server wired to tusgate: the gated store, server-made ids, creation checks, the finish. */
import { IncomingMessage } from 'node:http';
import { Server } from '@tus/server';
import type { Upload } from '@tus/utils';
import type Koa from 'koa';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { Refusal } from '../hooks/errors.ts';
import { failureRefusal, publicView, type Finisher } from '../hooks/finish.ts';
import { checkDeclaredLength, triage, type Policy } from '../hooks/policy.ts';
import type { GatedStore } from '../storage/gated-store.ts';
import { newId } from '../storage/keys.ts';
import type { UploadLocker } from '../storage/upload-locker.ts';
import type { Config } from './config.ts';
import { requestLogger, type Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { asJsonError, mapTusError, tusErrorTable } from './tus-errors.ts';

export interface TusDeps {
  config: Config;
  policy: Policy;
  store: GatedStore;
  finisher: Finisher;
  log: Logger;
  metrics: Metrics;
  locker: UploadLocker;
}

interface NodeBacked {
  runtime?: { node?: { req: unknown } };
}

/** The Node request behind a srvx request (always there on Node's http server). */
function nodeRequestOf(req: NodeBacked): IncomingMessage | undefined {
  const node = req.runtime?.node?.req;
  return node instanceof IncomingMessage ? node : undefined;
}

export function createTusServer({ config, policy, store, finisher, log, metrics, locker }: TusDeps): Server {
  const errors = tusErrorTable(config);
  return new Server({
    path: config.tusPath,
    datastore: store,
    maxSize: config.MAX_UPLOAD_BYTES,
    respectForwardedHeaders: config.TRUST_PROXY,
    allowedOrigins: config.ALLOWED_ORIGINS.length > 0 ? [...config.ALLOWED_ORIGINS] : undefined,
    exposedHeaders: ['X-Request-Id'],
    disableTerminationForFinishedUploads: true,
    namingFunction: () => newId(),
    locker,
    lockDrainTimeout: config.LOCK_DRAIN_MS,

    async onUploadCreate(req, upload: Upload) {
      const refusal = checkDeclaredLength(upload.size, policy) ?? triage(upload.metadata, policy);
      if (refusal) {
        metrics.refusals.inc({ code: refusal.code, stage: 'creation' });
        requestLogger(nodeRequestOf(req), log).warn({ code: refusal.code, reason: refusal.message }, 'upload refused at creation');
        throw refusal;
      }
      return {};
    },

    async onUploadFinish(req, upload: Upload) {
      const nodeReq = nodeRequestOf(req);
      const socket = nodeReq?.socket;
      // every byte is in the staging store now (for S3: the multipart upload is completed)
      requestLogger(nodeReq, log).info({ uploadId: upload.id, bytes: upload.size ?? upload.offset }, 'upload received');
      // Waiting for a transcode slot is not idleness: keep the client's connection.
      socket?.setTimeout(0);
      try {
        let outcome;
        try {
          outcome = await finisher.finish(upload.id);
        } catch (error) {
          // a passing failure (a store, a network): the finish is retried on its own
          requestLogger(nodeReq, log).error({ err: error, uploadId: upload.id }, 'finish failed; it will be retried');
          throw new Refusal(
            'E_INTERNAL',
            `Every byte was received, but processing failed for a passing reason and is retried; its result will be at /uploads/${upload.id}.`,
          );
        }
        if (outcome.state === 'failed') throw failureRefusal(outcome.error);
        return {
          // creation-with-upload that completes in its POST keeps its 201 (clients need the Location)
          status_code: req.method === 'POST' ? 201 : 200,
          headers: { 'Content-Type': 'application/json', 'Cache-Control': config.apiCacheControl },
          body: JSON.stringify(publicView(outcome.artifact)),
        };
      } finally {
        socket?.setTimeout(config.IDLE_TIMEOUT_MS);
      }
    },

    onResponseError(req, error) {
      return mapTusError(error, errors, (internal) => {
        const nodeReq = nodeRequestOf(req);
        const reqLog = requestLogger(nodeReq, log);
        reqLog.error({ err: internal }, 'internal error in the tus handler');
        return String(nodeReq?.headers['x-request-id'] ?? reqLog.bindings().reqId ?? 'unknown');
      });
    },
  });
}

/** Koa middleware handing the request to @tus/server (no body parser may run before it). */
export function tusHandler(tus: Server): Koa.Middleware {
  return async (ctx) => {
    ctx.respond = false;
    const request = new NodeRequest({ req: ctx.req, res: ctx.res });
    const response = await asJsonError(await tus.handleWeb(request));
    await sendNodeResponse(ctx.res, response);
  };
}
