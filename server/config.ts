/**
 * The one place for every number and switch tusgate has.
 *
 * Each setting is an environment variable with a documented default (README.md,
 * "Configuration"). A bad value stops start-up with a message naming the variable.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Policy } from '../hooks/policy.ts';

const MiB = 1024 * 1024;

const int = (min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const csv = z
  .string()
  .transform((s) => s.split(',').map((part) => part.trim()).filter((part) => part.length > 0));

export const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];

const schema = z
  .object({
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: int(1, 65535).default(1080),
    DATA_DIR: z.string().min(1).default('./data'),
    PUBLIC_BASE_URL: z.url().optional(),
    TRUST_PROXY: bool.default(false),
    ALLOWED_ORIGINS: csv.default([]),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    MAX_UPLOAD_BYTES: int(1).default(50 * MiB),
    MAX_METADATA_BYTES: int(64, 65536).default(4096),
    ALLOWED_TYPES: csv.pipe(z.array(z.enum(IMAGE_TYPES)).min(1)).default([...IMAGE_TYPES]),
    MAX_PIXELS: int(1).default(50_000_000),
    MAX_DIMENSION: int(1, 65535).default(16383),
    MAX_FRAMES: int(1).default(100),
    MAX_TOTAL_PIXELS: int(1).default(200_000_000),
    GATE_WINDOW_BYTES: int(4100, 16 * MiB).default(256 * 1024),
    GATE_METADATA_BYTES: int(4100, 64 * MiB).default(2 * MiB),

    OUTPUT_FORMAT: z.enum(['webp', 'avif']).default('webp'),
    OUTPUT_QUALITY: int(1, 100).default(80),
    OUTPUT_LONG_EDGE: int(16, 16383).default(2048),
    ANIMATION: z.enum(['animate', 'first-frame']).default('animate'),
    TRANSCODE_CONCURRENCY: int(1, 64).default(Math.max(1, os.availableParallelism())),
    SHARP_THREADS: int(0, 64).default(1),
    TRANSCODE_TIMEOUT_MS: int(1000).default(120_000),

    UPLOAD_EXPIRES_AFTER_MS: int(0).default(24 * 60 * 60 * 1000),
    IDLE_TIMEOUT_MS: int(1000).default(60_000),
    HEADERS_TIMEOUT_MS: int(1000).default(60_000),
    SHUTDOWN_TIMEOUT_MS: int(0).default(25_000),
    SHUTDOWN_HARD_EXIT_MS: int(0).default(5_000),
    REFUSAL_LINGER_MS: int(0, 60_000).default(1_000),
    MEDIA_MAX_AGE_SECONDS: int(0).default(31_536_000),
    SWEEP_INTERVAL_MS: int(0).default(60 * 60 * 1000),
    RESULT_RETENTION_MS: int(0).default(7 * 24 * 60 * 60 * 1000),
    MIN_RECEIVE_BYTES_PER_S: int(0).default(1024),
    RECEIVE_RATE_WINDOW_MS: int(1000).default(30_000),
    FINISH_QUEUE_MAX: int(0).default(64),
    FINISH_RETRY_BASE_MS: int(100).default(2_000),
    FINISH_RETRY_MAX_MS: int(1000).default(10 * 60 * 1000),
    STATE_CACHE_SIZE: int(0).default(10_000),

    TUS_STORE: z.enum(['file', 's3']).default('file'),
    PUBLIC_STORE: z.enum(['file', 's3']).default('file'),
    S3_ENDPOINT: z.url().optional(),
    S3_REGION: z.string().min(1).default('us-east-1'),
    S3_BUCKET: z.string().min(3).optional(),
    PUBLIC_S3_BUCKET: z.string().min(3).optional(),
    PUBLIC_S3_KEY_PREFIX: z.string().regex(/^([\w.-]+\/)*$/, 'a prefix like "media/" (ends with /) or empty').default(''),
    S3_FORCE_PATH_STYLE: bool.default(false),
    S3_PART_SIZE: int(5 * MiB, 5 * 1024 * MiB).default(8 * MiB),
    S3_CHECKSUM_MODE: z.enum(['WHEN_REQUIRED', 'WHEN_SUPPORTED']).default('WHEN_REQUIRED'),

    REDIS_URL: z.url().optional(),
    REDIS_KEY_PREFIX: z.string().default('tusgate:'),
    LOCK_TTL_MS: int(500).default(10_000),
    LOCK_TIMEOUT_MS: int(100).default(30_000),
    LOCK_DRAIN_MS: int(0).default(3_000),
    LOCK_POLL_MS: int(10).default(1_000),
    FENCE_CHECK_BYTES: int(64 * 1024).default(MiB),
  })
  .superRefine((c, ctx) => {
    const require = (ok: boolean, path: string, message: string) => {
      if (!ok) ctx.addIssue({ code: 'custom', path: [path], message });
    };
    require(c.MAX_TOTAL_PIXELS >= c.MAX_PIXELS, 'MAX_TOTAL_PIXELS', 'must be at least MAX_PIXELS');
    require(
      c.TUS_STORE !== 's3' || c.S3_PART_SIZE % c.FENCE_CHECK_BYTES === 0,
      'FENCE_CHECK_BYTES',
      'must divide S3_PART_SIZE (no part is handed to S3 without a lock check)',
    );
    require(c.TUS_STORE !== 's3' || c.S3_BUCKET !== undefined, 'S3_BUCKET', 'required when TUS_STORE=s3');
    require(c.PUBLIC_STORE !== 's3' || c.PUBLIC_S3_BUCKET !== undefined, 'PUBLIC_S3_BUCKET', 'required when PUBLIC_STORE=s3');
    require(
      c.PUBLIC_STORE !== 's3' || c.PUBLIC_BASE_URL !== undefined,
      'PUBLIC_BASE_URL',
      'required when PUBLIC_STORE=s3 (the URL the bucket is served from, e.g. a CDN)',
    );
  });

type Raw = z.infer<typeof schema>;

export type Config = Readonly<
  Raw & {
    /** DATA_DIR made absolute. */
    dataDir: string;
    /** Where the artifacts are fetched from (no trailing slash). */
    publicBaseUrl: string;
    /** The tus endpoint's path. */
    tusPath: '/files';
    /** Cache-Control of published artifacts (MEDIA_MAX_AGE_SECONDS), and of every API answer. */
    mediaCacheControl: string;
    apiCacheControl: 'no-store';
  }
>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates the configuration from an environment (process.env by default). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const relevant = Object.fromEntries(
    Object.keys(schema.shape).map((key) => [key, env[key] === '' ? undefined : env[key]]),
  );
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.join('.') || '(config)';
      const value = typeof issue.path[0] === 'string' ? env[issue.path[0]] : undefined;
      return `  ${name}${value === undefined ? '' : `=${JSON.stringify(value)}`}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const raw = parsed.data;
  const shownHost = raw.HOST === '0.0.0.0' || raw.HOST === '::' ? '127.0.0.1' : raw.HOST;
  return Object.freeze({
    ...raw,
    dataDir: path.resolve(raw.DATA_DIR),
    publicBaseUrl: (raw.PUBLIC_BASE_URL ?? `http://${shownHost}:${raw.PORT}/media`).replace(/\/+$/, ''),
    tusPath: '/files' as const,
    mediaCacheControl: `public, max-age=${raw.MEDIA_MAX_AGE_SECONDS}, immutable`,
    apiCacheControl: 'no-store' as const,
  });
}

const SECRET = /SECRET|PASSWORD|TOKEN|KEY/i;

/** The effective configuration, secrets redacted, for the start-up log. */
export function describeConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, redact(key, value)]));
}

function redact(key: string, value: unknown): unknown {
  if (SECRET.test(key) && value) return '[redacted]';
  if (typeof value === 'string' && /^[a-z]+:\/\/[^/]*@/i.test(value)) {
    const url = new URL(value);
    if (url.password) url.password = 'redacted';
    return url.toString();
  }
  return value;
}

/** The gate's and the finish's policy, as the configuration sets it. */
export function policyOf(config: Config): Policy {
  return {
    allowedTypes: config.ALLOWED_TYPES,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    maxPixels: config.MAX_PIXELS,
    maxDimension: config.MAX_DIMENSION,
    maxFrames: config.MAX_FRAMES,
    maxTotalPixels: config.MAX_TOTAL_PIXELS,
    windowBytes: config.GATE_WINDOW_BYTES,
    metadataBytes: config.GATE_METADATA_BYTES,
  };
}
