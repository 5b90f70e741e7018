/**
 * GET/HEAD /media/<key>: the artifacts of the disk public store, served as static,
 * immutable, script-free files (when PUBLIC_BASE_URL points elsewhere, that origin serves them).
 */
import type Koa from 'koa';
import type { DiskPublicStore } from '../storage/public-store.ts';
import type { Config } from './config.ts';
import { refuse } from './responses.ts';

const TYPES: Readonly<Record<string, string>> = { webp: 'image/webp', avif: 'image/avif' };

export function mediaHandler(store: DiskPublicStore, config: Config): (ctx: Koa.Context, key: string) => Promise<void> {
  return async (ctx, key) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Content-Security-Policy', "default-src 'none'; sandbox");
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      return refuse(ctx, 'E_BAD_REQUEST', `${ctx.method} is not allowed on media.`);
    }
    const file = await store.stat(key);
    if (!file) return refuse(ctx, 'E_NOT_FOUND', 'No such media.');
    ctx.set('Access-Control-Allow-Origin', '*');
    ctx.set('Cache-Control', config.mediaCacheControl);
    ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
    ctx.type = TYPES[key.slice(key.lastIndexOf('.') + 1)] ?? 'application/octet-stream';
    ctx.etag = `"${file.size.toString(16)}-${file.modified.getTime().toString(16)}"`;
    ctx.lastModified = file.modified;
    ctx.length = file.size;
    ctx.status = 200; // ctx.fresh compares validators only on a 2xx response
    if (ctx.fresh) {
      ctx.status = 304;
      return;
    }
    if (ctx.method === 'GET') ctx.body = file.open();
  };
}
