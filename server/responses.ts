/** JSON refusals sent by the Koa layer, with the headers a browser client needs to read them. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import type { Metrics } from './metrics.ts';
import { Refusal, type ErrorCode } from '../hooks/errors.ts';

export const TUS_VERSION = '1.0.0';

/** What an unknown (or another subject's) upload gets: on the tus routes, and on /uploads/:id. */
export const NO_SUCH_URL = 'There is no upload at this URL.';
export const NO_SUCH_ID = 'There is no upload with this id.';

/** Headers tus clients must be able to read cross-origin (mirrors @tus/server's list). */
const EXPOSED_HEADERS = [
  'Location',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Resumable',
  'Tus-Version',
  'Upload-Expires',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Offset',
  'X-Request-Id',
].join(', ');

export interface CorsConfig {
  ALLOWED_ORIGINS: readonly string[];
  CORS_ALLOW_CREDENTIALS: boolean;
}

/**
 * The one CORS decision (every response, @tus/server's included): any origin when
 * ALLOWED_ORIGINS is empty (`*`, or the origin itself with credentials, which `*` forbids),
 * otherwise the listed ones only.
 */
export function corsOrigin(origin: string | undefined, config: CorsConfig): string | undefined {
  if (config.ALLOWED_ORIGINS.length === 0) return config.CORS_ALLOW_CREDENTIALS ? origin : '*';
  if (origin && config.ALLOWED_ORIGINS.includes(origin)) return origin;
  return undefined;
}

export function setCors(ctx: Koa.Context, config: CorsConfig): void {
  const origin = corsOrigin(ctx.get('origin') || undefined, config);
  if (!origin) return;
  ctx.set('Access-Control-Allow-Origin', origin);
  ctx.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  if (config.CORS_ALLOW_CREDENTIALS) ctx.set('Access-Control-Allow-Credentials', 'true');
  if (origin !== '*') ctx.vary('Origin');
}

/** Answers a CORS preflight for a non-tus route. */
export function preflight(ctx: Koa.Context, methods: string): void {
  ctx.set('Access-Control-Allow-Methods', methods);
  ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Request-Id');
  ctx.set('Access-Control-Max-Age', '86400');
  ctx.status = 204;
}

/** Compares a secret without leaking its length or content through timing. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export async function serveMetrics(ctx: Koa.Context, metrics: Metrics): Promise<void> {
  ctx.type = metrics.registry.contentType;
  ctx.body = await metrics.registry.metrics();
}

export function sendRefusal(ctx: Koa.Context, refusal: Refusal): void {
  ctx.status = refusal.status_code;
  ctx.body = refusal.body;
  // as @tus/server's refusals: the same Content-Type from every layer
  ctx.set('Content-Type', 'application/json');
  ctx.state.refusal = refusal;
}

export function refuse(ctx: Koa.Context, code: ErrorCode, message: string): void {
  sendRefusal(ctx, new Refusal(code, message));
}
