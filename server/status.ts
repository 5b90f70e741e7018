/**
 * GET /uploads/:id — what became of an upload, for a client whose final response was lost:
 * the artifact record, or `{ state: receiving | processing | failed | refused, error? }`.
 * A complete upload whose finish is not running here (crash, lost process) is finished now.
 */
import type Koa from 'koa';
import { publicView, type Finisher } from '../hooks/finish.ts';
import type { GatedStore } from '../storage/gated-store.ts';
import { isId } from '../storage/keys.ts';
import type { RecordStore } from '../storage/records.ts';
import type { Logger } from './logger.ts';
import { refuse } from './responses.ts';

export interface StatusDeps {
  records: RecordStore;
  store: GatedStore;
  finisher: Finisher;
  log: Logger;
}

function isMissing(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'status_code' in error && (error.status_code === 404 || error.status_code === 410);
}

export function statusHandler({ records, store, finisher, log }: StatusDeps): (ctx: Koa.Context, id: string) => Promise<void> {
  const finishInBackground = (id: string, size: number) => {
    if (finisher.isRunning(id)) return;
    finisher.finish(id, size).catch((error: unknown) => log.error({ err: error, uploadId: id }, 'finish failed'));
  };
  return async (ctx, id) => {
    ctx.set('Cache-Control', 'no-store');
    if (!isId(id)) return refuse(ctx, 'E_NOT_FOUND', 'There is no upload with this id.');
    const record = await records.get(id);
    if (record?.state === 'done') {
      ctx.body = { state: 'done', ...publicView(record.artifact) };
      return;
    }
    if (record?.state === 'failed' || record?.state === 'refused') {
      ctx.body = { id, state: record.state, error: record.error };
      return;
    }
    if (record?.state === 'processing') {
      finishInBackground(id, record.size);
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
      finishInBackground(id, upload.size);
      ctx.body = { id, state: 'processing' };
      return;
    }
    ctx.body = { id, state: 'receiving', offset: upload.offset, size: upload.size ?? null };
  };
}
