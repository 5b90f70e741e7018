/**
 * GET /uploads/:id — what became of an upload, for a client whose final response was lost:
 * the artifact record, or `{ state: receiving | processing | failed | refused, error? }`.
 * A complete upload whose finish is not running here (crash, lost process) is finished
 * now, unless its last attempt failed and its backoff has not passed.
 */
import type Koa from 'koa';
import { publicView, type Finisher } from '../hooks/finish.ts';
import { isMissing, type GatedStore } from '../storage/gated-store.ts';
import { isId } from '../storage/keys.ts';
import type { UploadStateStore } from '../storage/upload-state.ts';
import type { Config } from './config.ts';
import { refuse } from './responses.ts';

export interface StatusDeps {
  config: Config;
  states: UploadStateStore;
  store: GatedStore;
  finisher: Finisher;
}

export function statusHandler({ config, states, store, finisher }: StatusDeps): (ctx: Koa.Context, id: string) => Promise<void> {
  return async (ctx, id) => {
    ctx.set('Cache-Control', config.apiCacheControl);
    if (!isId(id)) return refuse(ctx, 'E_NOT_FOUND', 'There is no upload with this id.');
    const state = await states.get(id);
    if (state?.phase === 'done') {
      ctx.body = { state: 'done', ...publicView(state.artifact) };
      return;
    }
    if (state?.phase === 'failed' || state?.phase === 'refused') {
      ctx.body = { id, state: state.phase, error: state.error };
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
      if (isMissing(error)) return refuse(ctx, 'E_NOT_FOUND', 'There is no upload with this id.');
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
