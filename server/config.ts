/**
 * The one place for every number and switch tusgate has.
 *
 * Each setting is an environment variable with a documented default (README.md,
 * "Configuration"). A bad value stops start-up with a message naming the variable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { SNIFF_BYTES } from '../hooks/gate.ts';
import { IMAGE_TYPES, type Policy } from '../hooks/policy.ts';
import { buildProfiles, type Profiles } from '../hooks/profiles.ts';
import type { TranscodeOptions } from '../hooks/transcode.ts';
import type { AuthOptions } from './auth/index.ts';
import { isWebhookSecret } from './webhooks/secret.ts';

const MiB = 1024 * 1024;

const int = (min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const csv = z
  .string()
  .transform((s) => s.split(',').map((part) => part.trim()).filter((part) => part.length > 0));


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
    GATE_WINDOW_BYTES: int(SNIFF_BYTES, 16 * MiB).default(256 * 1024),
    GATE_METADATA_BYTES: int(SNIFF_BYTES, 64 * MiB).default(2 * MiB),
    GATE_JUDGE_STEP_BYTES: int(SNIFF_BYTES, 16 * MiB).default(256 * 1024),

    OUTPUT_FORMAT: z.enum(['webp', 'avif']).default('webp'),
    OUTPUT_QUALITY: int(1, 100).default(80),
    OUTPUT_LONG_EDGE: int(16, 16383).default(2048),
    WEBP_EFFORT: int(0, 6).default(2),
    AVIF_EFFORT: int(0, 9).default(2),
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
    HEAP_GROWING_PERCENT: int(0, 400).default(100),

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
    S3_STREAM_AFTER_BYTES: int(64 * 1024, 5 * MiB).default(MiB),
    S3_PARTS_IN_FLIGHT: int(1, 16).default(4),
    S3_TAIL_CACHE_BYTES: int(0).default(64 * MiB),

    AUTH_MODE: z.enum(['none', 'jwt', 'hook']).optional(),
    AUTH_JWT_SECRET: z.string().min(32, 'an HS256 secret of at least 32 characters').optional(),
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_JWT_ISSUER: z.string().min(1).optional(),
    AUTH_JWT_AUDIENCE: z.string().min(1).optional(),
    AUTH_CLOCK_TOLERANCE_S: int(0, 600).default(30),
    AUTH_JWT_CACHE_MS: int(0).default(60_000),
    AUTH_HOOK_URL: z.url().optional(),
    AUTH_HOOK_CACHE_MS: int(0).default(30_000),
    AUTH_HOOK_TIMEOUT_MS: int(100).default(5_000),
    CORS_ALLOW_CREDENTIALS: bool.default(false),
    METRICS_TOKEN: z.string().min(16).optional(),
    METRICS_PORT: int(1, 65535).optional(),
    DEMO: bool.default(false),

    PROFILES_FILE: z.string().min(1).optional(),
    PUBLIC_PROFILES: csv.default([]),
    RATE_LIMIT_CREATES_PER_MIN: int(0).default(300),
    MAX_ACTIVE_UPLOADS: int(0).default(100),
    QUOTA_BYTES_PER_DAY: int(0).default(10 * 1024 * MiB),

    WEBHOOK_URL: z.url().optional(),
    WEBHOOK_SECRET: z.string().refine(isWebhookSecret, 'whsec_ followed by 24 to 64 bytes in base64 (the Standard Webhooks convention)').optional(),
    WEBHOOK_TIMEOUT_MS: int(100).default(10_000),
    WEBHOOK_RETRY_FOR_MS: int(0).default(24 * 60 * 60 * 1000),
    WEBHOOK_RETRY_BASE_MS: int(10).default(1_000),
    WEBHOOK_RETRY_MAX_MS: int(100).default(60 * 60 * 1000),
    METADATA_KEYS: csv.pipe(z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'metadata keys are 1-64 letters, digits, _ . or -'))).default(['filename', 'filetype']),
    HOOKS_MODULE: z.string().min(1).optional(),

    REDIS_URL: z.url().optional(),
    REDIS_KEY_PREFIX: z.string().default('tusgate:'),
    LOCK_TTL_MS: int(500).default(10_000),
    LOCK_TIMEOUT_MS: int(100).default(30_000),
    LOCK_DRAIN_MS: int(0).default(3_000),
    LOCK_POLL_MS: int(10).default(1_000),
    FENCE_CHECK_BYTES: int(64 * 1024).default(MiB),
    WRITE_BUFFER_BYTES: int(64 * 1024, 16 * MiB).default(256 * 1024),
    WRITE_BUFFERS_KEPT: int(0).default(16),
    WRITE_BUFFER_BUDGET_BYTES: int(0).default(8 * MiB),
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
    require(
      c.AUTH_MODE !== undefined || isLoopback(c.HOST),
      'AUTH_MODE',
      `required when HOST (${c.HOST}) is not a loopback address: set AUTH_MODE=jwt or hook, or AUTH_MODE=none to let anyone who reaches the port upload`,
    );
    require(
      c.AUTH_MODE !== 'jwt' || (c.AUTH_JWT_SECRET === undefined) !== (c.AUTH_JWKS_URL === undefined),
      'AUTH_MODE',
      'AUTH_MODE=jwt needs exactly one of AUTH_JWT_SECRET (HS256) and AUTH_JWKS_URL (RS256, ES256, EdDSA)',
    );
    require(c.AUTH_MODE !== 'hook' || c.AUTH_HOOK_URL !== undefined, 'AUTH_HOOK_URL', 'required when AUTH_MODE=hook');
    require(c.WEBHOOK_URL === undefined || c.WEBHOOK_SECRET !== undefined, 'WEBHOOK_SECRET', 'required when WEBHOOK_URL is set');
    require(c.PUBLIC_STORE !== 's3' || c.PUBLIC_S3_BUCKET !== undefined, 'PUBLIC_S3_BUCKET', 'required when PUBLIC_STORE=s3');
    require(
      c.PUBLIC_STORE !== 's3' || c.PUBLIC_BASE_URL !== undefined,
      'PUBLIC_BASE_URL',
      'required when PUBLIC_STORE=s3 (the URL the bucket is served from, e.g. a CDN)',
    );
  });

/**
 * Bounds of the in-memory maps that only save a round trip or carry a fact from one step of
 * a request to the next; past its bound, a map drops its oldest entry. They are not settings
 * (no variable sets them): each entry is small, and the bound only keeps a flood of requests
 * that never come back from growing the process.
 */
export const MEMORY_BOUNDS = {
  /** S3 listings kept for the request holding the upload's lock (left behind by a HEAD or a refused PATCH). */
  heldListings: 1000,
  /** What a POST knows of an upload (owner, profile) waiting for its creation (a request that failed in between leaves one). */
  creationAnnotations: 10_000,
  /** Verified tokens (AUTH_JWT_CACHE_MS) or auth hook answers (AUTH_HOOK_CACHE_MS), least recently used out first. */
  authCacheEntries: 10_000,
} as const;

/** 127.0.0.0/8, ::1 and localhost: where an unauthenticated server is fine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

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
    /** AUTH_MODE, or `none` where that is allowed without saying so (a loopback HOST). */
    authMode: 'none' | 'jwt' | 'hook';
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
    authMode: raw.AUTH_MODE ?? 'none',
  });
}

const SECRET = /SECRET|PASSWORD|TOKEN|_KEY$/i;

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

/** How requests are authenticated (AUTH_MODE and its variables). */
export function authOptionsOf(config: Config): AuthOptions {
  switch (config.authMode) {
    case 'jwt':
      return {
        mode: 'jwt',
        secret: config.AUTH_JWT_SECRET,
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: config.AUTH_JWT_ISSUER,
        audience: config.AUTH_JWT_AUDIENCE,
        clockToleranceSec: config.AUTH_CLOCK_TOLERANCE_S,
        cacheMs: config.AUTH_JWT_CACHE_MS,
      };
    case 'hook':
      return { mode: 'hook', url: config.AUTH_HOOK_URL ?? '', cacheMs: config.AUTH_HOOK_CACHE_MS, timeoutMs: config.AUTH_HOOK_TIMEOUT_MS };
    case 'none':
      return { mode: 'none' };
  }
}

/** The output of the default profile, as the configuration sets it. */
export function transcodeOf(config: Config): TranscodeOptions {
  return {
    format: config.OUTPUT_FORMAT,
    quality: config.OUTPUT_QUALITY,
    longEdge: config.OUTPUT_LONG_EDGE,
    webpEffort: config.WEBP_EFFORT,
    avifEffort: config.AVIF_EFFORT,
    animation: config.ANIMATION,
    timeoutSeconds: Math.ceil(config.TRANSCODE_TIMEOUT_MS / 1000),
  };
}

/** Every upload profile: `default` from the variables above, and the named ones of PROFILES_FILE. */
export function profilesOf(config: Config): Profiles {
  const defaults = { name: 'default', policy: policyOf(config), transcode: transcodeOf(config) };
  let file: unknown = {};
  if (config.PROFILES_FILE) {
    try {
      file = JSON.parse(fs.readFileSync(config.PROFILES_FILE, 'utf8'));
    } catch (error) {
      throw new ConfigError(`PROFILES_FILE=${config.PROFILES_FILE}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  let profiles: Profiles;
  try {
    profiles = buildProfiles(defaults, file);
  } catch (error) {
    const detail = error instanceof z.ZodError ? error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n') : String(error);
    throw new ConfigError(`invalid PROFILES_FILE ${config.PROFILES_FILE}:\n${detail}`);
  }
  const unknown = config.PUBLIC_PROFILES.filter((name) => !profiles.has(name));
  if (unknown.length > 0) throw new ConfigError(`PUBLIC_PROFILES names profiles that PROFILES_FILE does not define: ${unknown.join(', ')}`);
  return profiles;
}

/** The gate's and the finish's policy, as the configuration sets it. */
export function policyOf(config: Config): Policy {
  return {
    names: {
      allowedTypes: 'ALLOWED_TYPES',
      maxUploadBytes: 'MAX_UPLOAD_BYTES',
      maxPixels: 'MAX_PIXELS',
      maxDimension: 'MAX_DIMENSION',
      maxFrames: 'MAX_FRAMES',
      maxTotalPixels: 'MAX_TOTAL_PIXELS',
    },
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
