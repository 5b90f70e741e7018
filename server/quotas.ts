/**
 * What anyone may cost, per account (the subject, or the client's address when anonymous):
 * uploads created per minute, unfinished uploads at once, bytes per day. Counters are
 * rate-limiter-flexible's, in Redis with REDIS_URL (so every instance charges one budget)
 * and in this process otherwise; unfinished uploads are counted by the upload state's index.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { groupDigits as fmt, Refusal } from '../hooks/errors.ts';
import type { UploadStateStore } from '../storage/upload-state.ts';
import type { Config } from './config.ts';

/** A refusal (429) and when to retry. */
export interface Denial {
  refusal: Refusal;
  retryAfterSeconds: number;
}

/** An admission: refused, or charged (and the charge can be given back if the creation is refused later). */
export type Admission = { denial: Denial } | { denial?: undefined; refund: () => Promise<void> };

export interface Quotas {
  /** At creation: refuses an account over a limit, or charges it for the upload. Nothing is charged for a refusal. */
  admit(account: string, declaredBytes: number | undefined): Promise<Admission>;
  /** When a deferred length is declared: charges its bytes. */
  charge(account: string, bytes: number): Promise<Denial | undefined>;
}

export function createQuotas(config: Config, states: UploadStateStore, redis?: Redis): Quotas {
  const limiter = (points: number, duration: number, name: string): RateLimiterAbstract | undefined => {
    if (points === 0) return undefined;
    const options = { points, duration, keyPrefix: `${config.REDIS_KEY_PREFIX}rl:${name}` };
    return redis ? new RateLimiterRedis({ ...options, storeClient: redis }) : new RateLimiterMemory(options);
  };
  const creates = limiter(config.RATE_LIMIT_CREATES_PER_MIN, 60, 'creates');
  const bytes = limiter(config.QUOTA_BYTES_PER_DAY, 24 * 60 * 60, 'bytes');

  /**
   * Consumes points; a refusal when the limit is reached, which charges nothing (the points
   * a rejected consume counted are given back). A store error is thrown, never a pass.
   */
  const take = async (rl: RateLimiterAbstract, key: string, points: number, refusal: (retryS: number) => Denial): Promise<Denial | undefined> => {
    try {
      await rl.consume(key, points);
      return undefined;
    } catch (result) {
      if (!(result instanceof RateLimiterRes)) throw result;
      await rl.reward(key, points);
      return refusal(Math.max(1, Math.ceil(result.msBeforeNext / 1000)));
    }
  };
  const overBytes = (retry: number): Denial =>
    denial(
      new Refusal(
        'E_QUOTA_EXCEEDED',
        `This upload would exceed the quota of ${fmt(config.QUOTA_BYTES_PER_DAY)} bytes a day (QUOTA_BYTES_PER_DAY); retry in ${retry} s.`,
      ),
      retry,
    );

  return {
    async admit(account, declaredBytes) {
      if (config.MAX_ACTIVE_UPLOADS > 0 && (await states.activeCount(account)) >= config.MAX_ACTIVE_UPLOADS) {
        return {
          denial: denial(
            new Refusal(
              'E_QUOTA_EXCEEDED',
              `You have ${fmt(config.MAX_ACTIVE_UPLOADS)} unfinished uploads already (MAX_ACTIVE_UPLOADS); finish or delete one first.`,
            ),
            60,
          ),
        };
      }
      const tooMany =
        creates &&
        (await take(creates, account, 1, (retry) =>
          denial(
            new Refusal(
              'E_RATE_LIMITED',
              `Too many uploads created: the limit is ${fmt(config.RATE_LIMIT_CREATES_PER_MIN)} a minute (RATE_LIMIT_CREATES_PER_MIN); retry in ${retry} s.`,
            ),
            retry,
          ),
        ));
      if (tooMany) return { denial: tooMany };
      const charged = declaredBytes !== undefined && declaredBytes > 0 ? declaredBytes : 0;
      const overQuota = bytes && charged > 0 ? await take(bytes, account, charged, overBytes) : undefined;
      if (overQuota) {
        await creates?.reward(account, 1);
        return { denial: overQuota };
      }
      return {
        refund: async () => {
          await creates?.reward(account, 1);
          if (bytes && charged > 0) await bytes.reward(account, charged);
        },
      };
    },
    async charge(account, declared) {
      if (!bytes || declared === 0) return undefined;
      return take(bytes, account, declared, overBytes);
    },
  };
}

function denial(refusal: Refusal, retryAfterSeconds: number): Denial {
  return { refusal, retryAfterSeconds };
}
