/**
 * The demo page (GET /): an Uppy Dashboard that uploads to this server's own tus endpoint
 * and shows what the server made of each file. Served in the embedded mode (no auth on a
 * loopback HOST), or anywhere with DEMO=1.
 *
 * The page is static (server/demo/) and uses Uppy's prebuilt browser build from
 * node_modules/uppy/dist: no bundler, nothing fetched from anywhere else. The files are
 * read from the source tree (found through package.json), so the same code serves them
 * from dist/ and from the tests.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Koa from 'koa';
import { isLoopback, type Config } from './config.ts';
import { setCors } from './responses.ts';

/** The folder of package.json (tusgate's), from this file in server/ or in dist/server/. */
export function projectRoot(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string }).name === 'tusgate') return dir;
    if (path.dirname(dir) === dir) throw new Error(`tusgate's package.json not found above ${from}`);
  }
}

export interface DemoAsset {
  file: string;
  type: string;
  cacheControl: string;
}

const OWN = 'no-cache'; // the page's own files: revalidated (ETag) on every load, so an edit shows at once
const VENDOR = 'public, max-age=86400'; // Uppy's build changes only with the package

/** Every file of the demo, by URL path: the page itself at `/`, the rest under /demo/. */
export function demoAssets(root: string = projectRoot()): ReadonlyMap<string, DemoAsset> {
  const own = path.join(root, 'server', 'demo');
  const uppy = path.join(path.dirname(createRequire(path.join(root, 'package.json')).resolve('uppy/package.json')), 'dist');
  return new Map([
    ['/', { file: path.join(own, 'index.html'), type: 'text/html; charset=utf-8', cacheControl: OWN }],
    ['/demo/demo.js', { file: path.join(own, 'demo.js'), type: 'text/javascript; charset=utf-8', cacheControl: OWN }],
    ['/demo/demo.css', { file: path.join(own, 'demo.css'), type: 'text/css; charset=utf-8', cacheControl: OWN }],
    ['/demo/uppy.min.mjs', { file: path.join(uppy, 'uppy.min.mjs'), type: 'text/javascript; charset=utf-8', cacheControl: VENDOR }],
    ['/demo/uppy.min.mjs.map', { file: path.join(uppy, 'uppy.min.mjs.map'), type: 'application/json', cacheControl: VENDOR }],
    ['/demo/uppy.min.css', { file: path.join(uppy, 'uppy.min.css'), type: 'text/css; charset=utf-8', cacheControl: VENDOR }],
  ]);
}

/** Whether this configuration serves the demo page. */
export function demoEnabled(config: Pick<Config, 'authMode' | 'HOST' | 'DEMO'>): boolean {
  return config.DEMO || (config.authMode === 'none' && isLoopback(config.HOST));
}

/** `?api=` names the tusgate the page talks to when it is served from another origin. */
function apiOrigin(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '';
  }
}

export type DemoHandler = (ctx: Koa.Context) => Promise<boolean>;

/** Answers the demo's paths (true), or leaves the request alone (false). */
export function demoHandler(config: Config, root?: string): DemoHandler {
  const assets = demoAssets(root);
  const cache = new Map<string, { body: Buffer; etag: string; mtimeMs: number }>();
  const read = async (file: string) => {
    const stat = await fs.promises.stat(file);
    const cached = cache.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs) return cached;
    const body = await fs.promises.readFile(file);
    const entry = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`, mtimeMs: stat.mtimeMs };
    cache.set(file, entry);
    return entry;
  };
  const mediaOrigin = originOf(config.publicBaseUrl);
  const settings = JSON.stringify({ auth: config.authMode, tusPath: `${config.tusPath}/` });

  return async (ctx) => {
    const asset = assets.get(ctx.path);
    const isSettings = ctx.path === '/demo/settings.json';
    if (!asset && !isSettings) return false;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.set('Allow', 'GET, HEAD');
      ctx.status = 405;
      ctx.body = { error: { code: 'E_BAD_REQUEST', message: `${ctx.method} is not allowed here.` } };
      return true;
    }
    ctx.set('X-Content-Type-Options', 'nosniff');
    if (isSettings) {
      // what the page needs to know about this server, also when it is served from another origin
      setCors(ctx, config);
      ctx.set('Cache-Control', 'no-store');
      ctx.type = 'application/json';
      ctx.body = settings;
      return true;
    }
    if (!asset) return false;
    if (ctx.path === '/') {
      const api = apiOrigin(ctx.query.api);
      const elsewhere = [...new Set([api, mediaOrigin].filter((o): o is string => Boolean(o)))].join(' ');
      ctx.set(
        'Content-Security-Policy',
        [
          "default-src 'none'",
          "script-src 'self'",
          "style-src 'self' 'unsafe-inline'",
          `img-src 'self' blob: data: ${elsewhere}`.trim(),
          `connect-src 'self' ${elsewhere}`.trim(),
          "base-uri 'none'",
          "form-action 'none'",
          "frame-ancestors 'none'",
        ].join('; '),
      );
      ctx.set('Referrer-Policy', 'no-referrer');
    }
    const { body, etag } = await read(asset.file);
    ctx.set('Cache-Control', asset.cacheControl);
    ctx.type = asset.type;
    ctx.etag = etag;
    ctx.length = body.length;
    ctx.status = 200; // ctx.fresh compares validators only on a 2xx response
    if (ctx.fresh) {
      ctx.status = 304;
      return true;
    }
    if (ctx.method === 'GET') ctx.body = body;
    return true;
  };
}
