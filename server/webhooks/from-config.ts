/** The webhook delivery a configuration asks for (WEBHOOK_URL): its outbox beside the upload state; nothing is loaded without it. */
import path from 'node:path';
import { FileOutbox } from '../../storage/outbox.ts';
import { RedisOutbox } from '../../storage/redis-outbox.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Stores } from '../stores.ts';
import type { WebhookDelivery } from './deliver.ts';

export async function createDelivery(config: Config, stores: Stores, metrics: Metrics, log: Logger): Promise<WebhookDelivery | undefined> {
  if (!config.WEBHOOK_URL || !config.WEBHOOK_SECRET) return undefined;
  // loaded only when webhooks are on (standardwebhooks, the outbox's delivery loop)
  const { createWebhookDelivery } = await import('./deliver.ts');
  const outbox = stores.redis
    ? new RedisOutbox({ redis: stores.redis, prefix: config.REDIS_KEY_PREFIX })
    : new FileOutbox({ directory: path.join(config.dataDir, 'webhooks') });
  return createWebhookDelivery({
    url: config.WEBHOOK_URL,
    secret: config.WEBHOOK_SECRET,
    outbox,
    leases: stores.leases,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    retryForMs: config.WEBHOOK_RETRY_FOR_MS,
    baseDelayMs: config.WEBHOOK_RETRY_BASE_MS,
    maxDelayMs: config.WEBHOOK_RETRY_MAX_MS,
    log,
    metrics: {
      delivered: () => metrics.webhooks.inc({ outcome: 'delivered' }),
      retried: () => metrics.webhooks.inc({ outcome: 'retried' }),
      dead: () => metrics.webhooks.inc({ outcome: 'dead' }),
    },
  });
}

