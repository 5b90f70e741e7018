/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), made by the reference
 * `standardwebhooks` package: HMAC-SHA256 over `<id>.<timestamp>.<body>`, keyed by the
 * secret's base64 bytes (`whsec_<base64>`), sent as `webhook-signature: v1,<base64>` with
 * `webhook-id` and `webhook-timestamp` (seconds). A receiver verifies with the same
 * package's `Webhook.verify` (or any Standard Webhooks library), given the same secret.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

const PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The secret's key bytes, or undefined when it is not `whsec_` and 24 to 64 bytes of base64. */
function secretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(PREFIX)) return undefined;
  const encoded = secret.slice(PREFIX.length);
  if (!BASE64.test(encoded) || encoded.length % 4 !== 0) return undefined;
  const key = Buffer.from(encoded, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

/** For a config schema: a Standard Webhooks secret, `whsec_` and 24 to 64 bytes of base64. */
export function isWebhookSecret(secret: string): boolean {
  return secretKey(secret) !== undefined;
}

/** A new secret (32 random bytes), e.g. for an operator to give to the receiver. */
export function newWebhookSecret(): string {
  return `${PREFIX}${randomBytes(32).toString('base64')}`;
}

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
