/**
 * /uploads/:id, for the upload's owner:
 * - GET: what became of it, for a client whose final response was lost: the artifact
 *   record, or `{ state: receiving | processing | failed | refused | deleted, error? }`.
 *   A complete upload whose finish is not running here (crash, lost process) is finished
 *   now, unless its last attempt failed and its backoff has not passed.
 * - DELETE: removes the artifact from the public store; the record says `deleted`.
 */
import type Koa from 'koa';
import { publicView, type Finisher } from '../hooks/finish.ts';
import { isMissing, type GatedStore } from '../storage/gated-store.ts';
import type { Leases } from '../storage/leases.ts';
import type { PublicStore } from '../storage/public-store.ts';
import { phaseless, type UploadState, type UploadStateStore } from '../storage/upload-state.ts';
import type { Config } from './config.ts';
import type { RequestContext } from './request-context.ts';
import { NO_SUCH_ID, refuse } from './responses.ts';

export interface StatusDeps {
  config: Config;
  states: UploadStateStore;
  store: GatedStore;
  finisher: Finisher;
  leases: Leases;
  publicStore: PublicStore;
  /** Told when an owner deleted an artifact (webhook). */
  onDeleted?: (state: UploadState) => Promise<void>;
}

/** The public record of an upload that ended. */
export function recordView(state: UploadState): object | undefined {
  const about = { id: state.id, ...(state.profile ? { profile: state.profile } : {}) };
  // the same body as the final PATCH's, with its state
  if (state.phase === 'done') return { state: 'done', ...publicView(state.artifact), ...about };
  if (state.phase === 'failed' || state.phase === 'refused') return { ...about, state: state.phase, error: state.error };
  if (state.phase === 'deleted') return { ...about, state: 'deleted' };
  return undefined;
}

export function statusHandler({ config, states, store, finisher }: StatusDeps) {
  return async (ctx: Koa.Context, id: string, context: RequestContext): Promise<void> => {
    ctx.set('Cache-Control', config.apiCacheControl);
    const state = context.state ?? (await states.get(id));
    const ended = state && recordView(state);
    if (ended) {
      ctx.body = ended;
      return;
    }
    if (state?.phase === 'processing') {
      finisher.finishInBackground(id, state);
      ctx.body = { id, state: 'processing' };
      return;
    }
    let upload;
    try {
      upload = await store.getUpload(id);
    } catch (error) {
      if (isMissing(error)) return refuse(ctx, 'E_NOT_FOUND', NO_SUCH_ID);
      throw error;
    }
    if (upload.size !== undefined && upload.offset === upload.size) {
      finisher.finishInBackground(id);
      ctx.body = { id, state: 'processing' };
      return;
    }
    ctx.body = { id, state: 'receiving', offset: upload.offset, size: upload.size ?? null };
  };
}

export function deleteHandler({ config, states, leases, publicStore, onDeleted }: StatusDeps) {
  return async (ctx: Koa.Context, id: string): Promise<void> => {
    ctx.set('Cache-Control', config.apiCacheControl);
    // the finish of an upload writes its result under this claim: take it to change the result
    const claim = await leases.take(`finish:${id}`, Math.max(config.LOCK_TTL_MS, 5_000));
    if (!claim) {
      ctx.set('Retry-After', '2');
      return refuse(ctx, 'E_LOCKED', 'This upload is being processed; retry in a moment.');
    }
    try {
      const state = await states.get(id);
      if (!state) return refuse(ctx, 'E_NOT_FOUND', NO_SUCH_ID);
      if (state.phase === 'deleted') {
        ctx.status = 204;
        return;
      }
      if (state.phase !== 'done') {
        return refuse(
          ctx,
          'E_BAD_REQUEST',
          `This upload has no artifact to delete (it is ${state.phase}); an unfinished upload is terminated with DELETE on its upload URL.`,
        );
      }
      await publicStore.delete(state.artifact.key);
      const deleted: UploadState = { ...phaseless(state), phase: 'deleted', artifact: state.artifact, updatedAt: Date.now() };
      await states.put(deleted, claim);
      await onDeleted?.(deleted);
      ctx.status = 204;
    } finally {
      await claim.release();
    }
  };
}
