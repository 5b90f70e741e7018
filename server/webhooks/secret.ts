/**
 * Standard Webhooks secrets (`whsec_` and base64 key bytes), apart from the signer so that
 * the configuration can check one without loading the `standardwebhooks` package.
 */
import { randomBytes } from 'node:crypto';

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
