/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), made by the reference
 * `standardwebhooks` package: HMAC-SHA256 over `<id>.<timestamp>.<body>`, keyed by the
 * secret's base64 bytes (`whsec_<base64>`), sent as `webhook-signature: v1,<base64>` with
 * `webhook-id` and `webhook-timestamp` (seconds). A receiver verifies with the same
 * package's `Webhook.verify` (or any Standard Webhooks library), given the same secret.
 */
import { Webhook } from 'standardwebhooks';
import { isWebhookSecret } from './secret.ts';

export { isWebhookSecret, newWebhookSecret } from './secret.ts';

export interface Signer {
  /** The headers of one attempt of event `id`, signed at `at` (the attempt's time). */
  headers(id: string, body: string, at: Date): Record<string, string>;
}

export function createSigner(secret: string): Signer {
  if (!isWebhookSecret(secret)) {
    throw new Error('WEBHOOK_SECRET must be a Standard Webhooks secret: "whsec_" and 24 to 64 bytes of base64');
  }
  const webhook = new Webhook(secret);
  return {
    headers(id, body, at) {
      return {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': webhook.sign(id, at, body),
      };
    },
  };
}
