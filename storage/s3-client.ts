/** S3 client settings shared by the staging and public stores, the count of their requests, and what an outage looks like. */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { z } from 'zod';

export interface S3Settings {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /**
   * WHEN_REQUIRED: no aws-chunked bodies with trailing checksums, which Ceph RGW and other
   * S3-compatible servers reject (HTTP 411). WHEN_SUPPORTED: the SDK's default (AWS).
   */
  checksumMode: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
}

/** Credentials come from the standard AWS chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles). */
export function s3ClientConfig(settings: S3Settings): S3ClientConfig {
  return {
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    requestChecksumCalculation: settings.checksumMode,
    responseChecksumValidation: settings.checksumMode,
    // No `Expect: 100-continue` on bodies of 2 MB or more (the SDK's default): the SDK sends
    // each such request on a connection of its own, opened for it and closed after it, and
    // waits a round trip for S3's 100 before the first byte. Every part and every object of
    // an upload paid both. What the header would save is the body of a request S3 refuses
    // (bad credentials, a missing bucket), which the server stops sending at the refusal.
    expectContinueHeader: false,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  };
}

/** Told the command of every request a store sends (`PutObjectCommand`, ...): what S3 bills, for the metrics. */
export type S3RequestCounter = (command: string) => void;

/** Counts every command `client` sends, once (the SDK's retries of it are not counted again). */
export function countRequests(client: Pick<S3Client, 'middlewareStack'>, count: S3RequestCounter): void {
  client.middlewareStack.add(
    (next, context) => (args) => {
      count(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'tusgateCountRequests' },
  );
}

/** Every error the SDK throws carries `$metadata`; S3's own answers have their HTTP status in it. */
const sdkError = z.object({ $metadata: z.object({ httpStatusCode: z.number().optional() }) });

/**
 * S3 could not be reached or failed on its side: no HTTP answer (refused, reset, timed out,
 * after the SDK's retries) or a 5xx (InternalError, SlowDown, ServiceUnavailable). S3's 4xx
 * answers (NoSuchKey, AccessDenied) are not outages.
 */
export function isS3Outage(error: unknown): boolean {
  const parsed = sdkError.safeParse(error);
  if (!parsed.success) return false;
  const status = parsed.data.$metadata.httpStatusCode;
  return status === undefined || status >= 500;
}
