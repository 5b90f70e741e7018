/** JSON refusals sent by the Koa layer, with the headers a browser client needs to read them. */
import type Koa from 'koa';
import { Refusal, type ErrorCode } from '../hooks/errors.ts';

export const TUS_VERSION = '1.0.0';

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

export function corsOrigin(origin: string | undefined, allowed: readonly string[]): string | undefined {
  if (allowed.length === 0) return '*';
  if (origin && allowed.includes(origin)) return origin;
  return undefined;
}

export function setCors(ctx: Koa.Context, allowed: readonly string[]): void {
  const origin = corsOrigin(ctx.get('origin') || undefined, allowed);
  if (!origin) return;
  ctx.set('Access-Control-Allow-Origin', origin);
  ctx.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  if (origin !== '*') ctx.vary('Origin');
}

export function sendRefusal(ctx: Koa.Context, refusal: Refusal): void {
  ctx.status = refusal.status_code;
  ctx.type = 'application/json';
  ctx.body = refusal.body;
  ctx.state.refusal = refusal;
}

export function refuse(ctx: Koa.Context, code: ErrorCode, message: string): void {
  sendRefusal(ctx, new Refusal(code, message));
}
