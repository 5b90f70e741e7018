/**
 * Before @tus/server sees a new upload (POST) or a declared deferred length (PATCH with
 * Upload-Length): which profile it gets, whether its declared size fits that profile,
 * and whether its account may afford it (rate limits and quotas, 429 with Retry-After).
 */
import { Metadata } from '@tus/utils';
import type Koa from 'koa';
import { Refusal } from '../hooks/errors.ts';
import { checkDeclaredLength } from '../hooks/policy.ts';
import { chooseProfile, type Profiles } from '../hooks/profiles.ts';
import type { Config } from './config.ts';
import type { Metrics } from './metrics.ts';
import type { Quotas } from './quotas.ts';
import type { RequestContext } from './request-context.ts';
import { sendRefusal } from './responses.ts';

export interface AdmissionDeps {
  config: Config;
  profiles: Profiles;
  quotas: Quotas;
  metrics: Metrics;
}

function requestedProfile(header: string): string | undefined {
  if (!header) return undefined;
  try {
    return Metadata.parse(header).profile ?? undefined;
  } catch {
    return undefined; // the protocol checks answer malformed metadata
  }
}

/** Returns false when it has answered the request with a refusal. */
export function admission({ config, profiles, quotas, metrics }: AdmissionDeps) {
  const refuse = (ctx: Koa.Context, stage: string, refusal: Refusal, retryAfter?: number) => {
    metrics.refusals.inc({ code: refusal.code, stage });
    ctx.set('Connection', 'close');
    if (retryAfter !== undefined) ctx.set('Retry-After', String(retryAfter));
    sendRefusal(ctx, refusal);
    return false;
  };
  const lengthOf = (ctx: Koa.Context) => {
    const header = ctx.get('upload-length');
    return /^\d+$/.test(header) ? Number(header) : undefined;
  };

  return async (ctx: Koa.Context, context: RequestContext): Promise<boolean> => {
    if (ctx.method === 'POST') {
      const chosen = chooseProfile(profiles, {
        granted: context.identity.profile,
        requested: requestedProfile(ctx.get('upload-metadata')),
        publicProfiles: config.authMode === 'none' ? config.PUBLIC_PROFILES : [],
      });
      if (chosen instanceof Refusal) return refuse(ctx, 'creation', chosen);
      context.profile = chosen.name;
      const length = lengthOf(ctx);
      const tooLarge = checkDeclaredLength(length, chosen.policy);
      if (tooLarge) return refuse(ctx, 'creation', tooLarge);
      const admitted = await quotas.admit(context.quotaKey, length);
      if (admitted.denial) return refuse(ctx, 'quota', admitted.denial.refusal, admitted.denial.retryAfterSeconds);
      context.refund = admitted.refund;
      return true;
    }
    if (ctx.method === 'PATCH' && context.state?.size === null) {
      const declared = lengthOf(ctx);
      if (declared === undefined) return true;
      const denied = await quotas.charge(context.state.account ?? context.quotaKey, declared);
      if (denied) return refuse(ctx, 'quota', denied.refusal, denied.retryAfterSeconds);
    }
    return true;
  };
}
