/** @tus/server wired to tusgate: the gated store, server-made ids, creation checks, the finish. */
import { IncomingMessage } from 'node:http';
import { Server } from '@tus/server';
import type { Upload } from '@tus/utils';
import type Koa from 'koa';
import { sendNodeResponse } from 'srvx/node';
import { Refusal } from '../hooks/errors.ts';
import { failureRefusal, publicView, type Finisher } from '../hooks/finish.ts';
import { checkDeclaredLength, triage } from '../hooks/policy.ts';
import { defaultProfile, type Profiles } from '../hooks/profiles.ts';
import type { GatedStore } from '../storage/gated-store.ts';
import { newId } from '../storage/keys.ts';
import type { UploadLocker } from '../storage/upload-locker.ts';
import { OWNER_KEY, PROFILE_KEY } from '../storage/upload-state.ts';
import type { Config } from './config.ts';
import { requestLogger, type Logger } from './logger.ts';
import { refusalOf, type InProcessHooks } from './hooks-module.ts';
import { NodeBodyRequest, streamNodeBodies } from './node-body.ts';
import { contextOf } from './request-context.ts';
import { corsOrigin } from './responses.ts';
import type { Metrics } from './metrics.ts';
import { asJsonError, mapTusError, tusErrorTable } from './tus-errors.ts';

export interface TusDeps {
  config: Config;
  profiles: Profiles;
  store: GatedStore;
  finisher: Finisher;
  log: Logger;
  metrics: Metrics;
  locker: UploadLocker;
  /** HOOKS_MODULE's onCreate: the application may refuse a new upload (403 E_FORBIDDEN). */
  onCreate?: InProcessHooks['onCreate'];
}

interface NodeBacked {
  runtime?: { node?: { req: unknown } };
}

/** The Node request behind a srvx request (always there on Node's http server). */
function nodeRequestOf(req: NodeBacked): IncomingMessage | undefined {
  const node = req.runtime?.node?.req;
  return node instanceof IncomingMessage ? node : undefined;
}

/** Client metadata with the keys only the server may set removed, and null values dropped. */
function clientMetadata(metadata: Upload['metadata']): Record<string, string> {
  return Object.fromEntries(
    Object.entries(metadata ?? {}).flatMap(([key, value]) => (value === null || key === OWNER_KEY || key === PROFILE_KEY ? [] : [[key, value]])),
  );
}

export function createTusServer({ config, profiles, store, finisher, log, metrics, locker, onCreate }: TusDeps): Server {
  const errors = tusErrorTable(config);
  const profileOf = (name: string | undefined) => profiles.get(name ?? 'default') ?? defaultProfile(profiles);
  const server = new Server({
    path: config.tusPath,
    datastore: store,
    // the upload's own profile bounds its body (a deferred length, a creation-with-upload)
    maxSize: async (req) => {
      const context = contextOf(nodeRequestOf(req));
      return profileOf(context?.state?.profile ?? context?.profile).policy.maxUploadBytes;
    },
    respectForwardedHeaders: config.TRUST_PROXY,
    // the same decision as every other response's (responses.ts)
    allowedOrigins: config.ALLOWED_ORIGINS.length > 0 || config.CORS_ALLOW_CREDENTIALS ? (origin) => corsOrigin(origin, config) !== undefined : undefined,
    allowedCredentials: config.CORS_ALLOW_CREDENTIALS,
    exposedHeaders: ['X-Request-Id'],
    disableTerminationForFinishedUploads: true,
    namingFunction: () => newId(),
    locker,
    lockDrainTimeout: config.LOCK_DRAIN_MS,

    async onUploadCreate(req, upload: Upload) {
      const nodeReq = nodeRequestOf(req);
      const context = contextOf(nodeReq);
      const profile = profileOf(context?.profile);
      const refusal = checkDeclaredLength(upload.size, profile.policy) ?? triage(upload.metadata, profile.policy);
      if (refusal) {
        metrics.refusals.inc({ code: refusal.code, stage: 'creation' });
        requestLogger(nodeReq, log).warn({ code: refusal.code, reason: refusal.message }, 'upload refused at creation');
        await context?.refund?.();
        throw refusal;
      }
      const metadata = clientMetadata(upload.metadata);
      const owner = config.authMode === 'none' ? undefined : context?.identity.sub;
      const meta = context?.identity.meta ?? {};
      const kept = Object.fromEntries(config.METADATA_KEYS.flatMap((key) => (metadata[key] !== undefined ? [[key, metadata[key]]] : [])));
      if (onCreate) {
        let reason: string | undefined;
        try {
          reason = refusalOf(await onCreate({ uploadId: upload.id, owner: owner ?? null, profile: profile.name, meta, metadata: kept }));
        } catch (error) {
          requestLogger(nodeReq, log).error({ err: error }, 'HOOKS_MODULE onCreate failed: the upload is refused');
          reason = 'The application could not check this upload; try again later.';
        }
        if (reason !== undefined) {
          metrics.refusals.inc({ code: 'E_FORBIDDEN', stage: 'creation' });
          await context?.refund?.();
          throw new Refusal('E_FORBIDDEN', reason);
        }
      }
      store.annotate(upload.id, {
        owner,
        profile: profile.name,
        account: context?.quotaKey,
        meta: Object.keys(meta).length > 0 ? meta : undefined,
        metadata: Object.keys(kept).length > 0 ? kept : undefined,
      });
      // owner and profile also go with the staged upload, so a lost state can be rebuilt with them
      return { metadata: { ...metadata, ...(owner ? { [OWNER_KEY]: owner } : {}), [PROFILE_KEY]: profile.name } };
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
          body: JSON.stringify({ ...publicView(outcome.artifact), ...(outcome.profile ? { profile: outcome.profile } : {}) }),
        };
      } finally {
        socket?.setTimeout(config.IDLE_TIMEOUT_MS);
      }
    },

    onResponseError(req, error) {
      const nodeReq = nodeRequestOf(req);
      const reqLog = requestLogger(nodeReq, log);
      return mapTusError(
        error,
        errors,
        (internal) => {
          reqLog.error({ err: internal }, 'internal error in the tus handler');
          return String(nodeReq?.headers['x-request-id'] ?? reqLog.bindings().reqId ?? 'unknown');
        },
        (outage, refusal) => reqLog.warn({ err: outage, code: refusal.code }, 'store unavailable: the client is told to retry'),
      );
    },
  });
  streamNodeBodies(server, store);
  return server;
}

/** Koa middleware handing the request to @tus/server (no body parser may run before it). */
export function tusHandler(tus: Server): Koa.Middleware {
  return async (ctx) => {
    ctx.respond = false;
    const request = new NodeBodyRequest(ctx.req, ctx.res);
    const response = await asJsonError(await tus.handleWeb(request));
    await sendNodeResponse(ctx.res, response);
  };
}
