/**
 * Where bare @tus/server departs from tus 1.0, tusgate follows the spec. This middleware
 * runs before @tus/server on /files and /files/:id:
 * - X-HTTP-Method-Override is honoured (the overridden request then passes every check below);
 * - a missing or unsupported Tus-Resumable gets 412 with Tus-Version;
 * - a PATCH without Content-Type: application/offset+octet-stream gets 415;
 * - upload ids are validated before any store is touched; Upload-Metadata is bounded;
 * - new uploads are refused while the server shuts down, or while the finish queue is full;
 * - request bodies must arrive at MIN_RECEIVE_BYTES_PER_S at least (receive-rate.ts).
 */
import { Metadata } from '@tus/utils';
import type Koa from 'koa';
import { isId } from '../storage/keys.ts';
import type { Config } from './config.ts';
import { watchReceiveRate } from './receive-rate.ts';
import { TUS_VERSION, refuse, setCors } from './responses.ts';

const TUS_METHODS = new Set(['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS']);
const OFFSET_STREAM = 'application/offset+octet-stream';

export interface ProtocolState {
  shuttingDown: boolean;
  /** True while the finish queue is full (FINISH_QUEUE_MAX). */
  busy(): boolean;
  /** Told when a request body is cut for arriving too slowly. */
  onTooSlow(ctx: Koa.Context, received: number): void;
}

/** The upload id in a tus path, '' for the collection itself, undefined for anything else. */
export function uploadIdOf(path: string, base: string): string | undefined {
  if (path === base || path === `${base}/`) return '';
  if (!path.startsWith(`${base}/`)) return undefined;
  const rest = path.slice(base.length + 1).replace(/\/$/, '');
  return rest.includes('/') ? undefined : rest;
}

function isValidMetadata(header: string): boolean {
  try {
    Metadata.parse(header);
    return true;
  } catch {
    return false;
  }
}

export function tusProtocol(config: Config, state: ProtocolState): Koa.Middleware {
  const checks = tusChecks(config, state);
  return async (ctx, next) => {
    const override = ctx.get('x-http-method-override').trim().toUpperCase();
    if (!override || ctx.method !== 'POST') return checks(ctx, next);
    if (!TUS_METHODS.has(override)) {
      setCors(ctx, config);
      return refuse(ctx, 'E_BAD_REQUEST', `X-HTTP-Method-Override: ${override} is not a tus method.`);
    }
    ctx.req.method = override;
    try {
      return await checks(ctx, next);
    } finally {
      // The response goes out on a POST: Koa must write it as one (with a HEAD override it
      // would announce a body by Content-Length and leave it out).
      ctx.req.method = 'POST';
    }
  };
}

/** Every check of a tus request, on the method it stands for (after any override). */
function tusChecks(config: Config, state: ProtocolState): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'OPTIONS') return next();
    setCors(ctx, config);
    if (!TUS_METHODS.has(ctx.method)) {
      ctx.set('Allow', [...TUS_METHODS].join(', '));
      return refuse(ctx, 'E_NOT_FOUND', `${ctx.method} is not a tus method; the artifact of an upload is at the url its final response (or /uploads/:id) gives.`);
    }
    ctx.set('Tus-Resumable', TUS_VERSION);
    if (ctx.get('tus-resumable') !== TUS_VERSION) {
      ctx.set('Tus-Version', TUS_VERSION);
      const sent = ctx.get('tus-resumable');
      if (ctx.method === 'PATCH' || ctx.method === 'POST') ctx.set('Connection', 'close');
      return refuse(
        ctx,
        'E_TUS_VERSION',
        sent ? `Tus-Resumable ${sent} is not supported; this server speaks tus ${TUS_VERSION}.` : `The Tus-Resumable header is required (tus ${TUS_VERSION}).`,
      );
    }
    const id = uploadIdOf(ctx.path, config.tusPath);
    const collection = id === '';
    if (id === undefined || (ctx.method === 'POST') !== collection || (!collection && !isId(id))) {
      if (ctx.method === 'PATCH' || ctx.method === 'POST') ctx.set('Connection', 'close');
      return refuse(ctx, 'E_NOT_FOUND', 'There is no upload at this URL.');
    }
    if (ctx.method === 'PATCH') {
      const type = ctx.get('content-type').split(';')[0]?.trim().toLowerCase();
      if (type !== OFFSET_STREAM) {
        ctx.set('Connection', 'close');
        return refuse(ctx, 'E_CONTENT_TYPE', `PATCH requires Content-Type: ${OFFSET_STREAM}${type ? ` (got ${type})` : ''}.`);
      }
    }
    const metadata = ctx.get('upload-metadata');
    if (Buffer.byteLength(metadata) > config.MAX_METADATA_BYTES) {
      ctx.set('Connection', 'close');
      return refuse(
        ctx,
        'E_METADATA_INVALID',
        `Upload-Metadata is ${Buffer.byteLength(metadata)} bytes; the limit is ${config.MAX_METADATA_BYTES} bytes (MAX_METADATA_BYTES).`,
      );
    }
    if (metadata && !isValidMetadata(metadata)) {
      ctx.set('Connection', 'close');
      return refuse(ctx, 'E_METADATA_INVALID', 'Upload-Metadata must be comma-separated "key base64value" pairs with unique keys.');
    }
    if (state.shuttingDown && ctx.method === 'POST') {
      ctx.set('Connection', 'close');
      ctx.set('Retry-After', '5');
      return refuse(ctx, 'E_SHUTTING_DOWN', 'The server is shutting down; retry the upload in a moment.');
    }
    if (ctx.method === 'POST' && state.busy()) {
      ctx.set('Connection', 'close');
      ctx.set('Retry-After', String(Math.ceil(config.FINISH_RETRY_BASE_MS / 1000)));
      return refuse(
        ctx,
        'E_BUSY',
        `The server is processing ${config.FINISH_QUEUE_MAX} uploads already (FINISH_QUEUE_MAX); retry the upload in a moment.`,
      );
    }
    if (ctx.method === 'PATCH' || ctx.method === 'POST') {
      watchReceiveRate(ctx.req, {
        minBytesPerSecond: config.MIN_RECEIVE_BYTES_PER_S,
        windowMs: config.RECEIVE_RATE_WINDOW_MS,
        onTooSlow: (received) => state.onTooSlow(ctx, received),
      });
    }
    return next();
  };
}
