/**
 * The stores a configuration asks for: staging (TUS_STORE), public (PUBLIC_STORE), and the
 * shared state (gate prefixes, records, locks, S3Store's metadata cache) in Redis when
 * REDIS_URL is set, on local disk and in memory otherwise.
 */
import path from 'node:path';
import { IoRedisKvStore, type Locker } from '@tus/utils';
import type { MetadataValue } from '@tus/s3-store';
import { Redis } from 'ioredis';
import { FileGateStateStore, type GateStateStore } from '../storage/gate-state.ts';
import { DiskPublicStore, S3PublicStore, type PublicStore } from '../storage/public-store.ts';
import { FileRecordStore, type RecordStore } from '../storage/records.ts';
import { RedisLocker, takeLease, type Lease } from '../storage/redis-locker.ts';
import { RedisGateStateStore, RedisRecordStore } from '../storage/redis-state.ts';
import { s3ClientConfig } from '../storage/s3-client.ts';
import { createFileStaging, createS3Staging, type StagingStore } from '../storage/staging.ts';
import type { Config } from './config.ts';

export interface Stores {
  staging: StagingStore;
  publicStore: PublicStore;
  /** Set when the app serves the public store itself at /media. */
  diskPublic?: DiskPublicStore;
  gateState: GateStateStore;
  records: RecordStore;
  /** Distributed lock and finish claims; undefined in single-instance mode. */
  locker?: Locker;
  claim?: (key: string, ttlMs: number) => Promise<Lease | undefined>;
  close(): Promise<void>;
}

export function createStores(config: Config): Stores {
  const dir = (name: string) => path.join(config.dataDir, name);
  const s3 = s3ClientConfig({
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    checksumMode: config.S3_CHECKSUM_MODE,
  });
  const redis = config.REDIS_URL ? new Redis(config.REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 3 }) : undefined;
  const subscriber = redis?.duplicate();
  const prefix = config.REDIS_KEY_PREFIX;
  // a held prefix lives as long as its upload may
  const stateTtl = Math.max(config.UPLOAD_EXPIRES_AFTER_MS, 60_000) + 60 * 60 * 1000;

  const staging =
    config.TUS_STORE === 's3'
      ? createS3Staging({
          client: s3,
          bucket: config.S3_BUCKET ?? '',
          partSize: config.S3_PART_SIZE,
          expirationMs: config.UPLOAD_EXPIRES_AFTER_MS,
          maxUploadBytes: config.MAX_UPLOAD_BYTES,
          cache: redis ? new IoRedisKvStore<MetadataValue>(redis, `${prefix}s3meta:`) : undefined,
          tempDir: dir('downloads'),
        })
      : createFileStaging({ directory: dir('staging'), expirationMs: config.UPLOAD_EXPIRES_AFTER_MS });

  const diskPublic = config.PUBLIC_STORE === 'file' ? new DiskPublicStore(dir('public')) : undefined;
  const publicStore =
    diskPublic ??
    new S3PublicStore({
      client: s3,
      bucket: config.PUBLIC_S3_BUCKET ?? '',
      keyPrefix: config.PUBLIC_S3_KEY_PREFIX,
      cacheControl: `public, max-age=${config.MEDIA_MAX_AGE_SECONDS}, immutable`,
    });

  return {
    staging,
    publicStore,
    diskPublic,
    gateState: redis ? new RedisGateStateStore(redis, prefix, stateTtl) : new FileGateStateStore(dir('gate')),
    records: redis ? new RedisRecordStore(redis, prefix) : new FileRecordStore(dir('records')),
    locker:
      redis && subscriber
        ? new RedisLocker({ redis, subscriber, prefix, ttlMs: config.LOCK_TTL_MS, acquireTimeoutMs: config.LOCK_TIMEOUT_MS })
        : undefined,
    claim: redis ? (key, ttlMs) => takeLease(redis, `${prefix}${key}`, ttlMs) : undefined,
    async close() {
      subscriber?.disconnect();
      await redis?.quit();
    },
  };
}
