/**
 * The stores a configuration asks for: staging (TUS_STORE), public (PUBLIC_STORE), and the
 * upload state with its leases (locks, finish claims, the sweep) in Redis when REDIS_URL
 * is set, on local disk and in this process otherwise. The AWS SDK and ioredis are loaded
 * only by a configuration that uses them (a smaller process for the embedded default).
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { IoRedisKvStore } from '@tus/utils';
import type { MetadataValue } from '@tus/s3-store';
import type { Redis } from 'ioredis';
import { BufferPool } from '../storage/file-write.ts';
import { MemoryLeases, type Leases } from '../storage/leases.ts';
import { DiskPublicStore, type PublicStore } from '../storage/public-store.ts';
import { RedisLeases } from '../storage/redis-leases.ts';
import { RedisUploadStateStore } from '../storage/redis-upload-state.ts';
import { s3ClientConfig } from '../storage/s3-client.ts';
import { createFileStaging, type StagingStore } from '../storage/staging.ts';
import { UploadLocker } from '../storage/upload-locker.ts';
import { FileUploadStateStore, type UploadStateStore } from '../storage/upload-state.ts';
import { MEMORY_BOUNDS, type Config } from './config.ts';

export interface Stores {
  staging: StagingStore;
  publicStore: PublicStore;
  /** Set when the app serves the public store itself at /media. */
  diskPublic?: DiskPublicStore;
  states: UploadStateStore;
  leases: Leases;
  locker: UploadLocker;
  /** The shared state's connection, when there is one (rate limits count there too). */
  redis?: Redis;
  /** Why the shared state may not survive a restart, if it may not (logged at start-up). */
  durabilityWarning(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** What the stores report as they work: Redis connection errors, and each request to S3 (by store and command). */
export interface StoreObservers {
  onRedisError?: (error: Error) => void;
  onS3Request?: (store: 'staging' | 'public', command: string) => void;
}

/**
 * DATA_DIR made and found writable before any store uses it: one that cannot be stops
 * start-up with its name (main.ts prints the message), not a crash after "listening".
 */
async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await fs.mkdir(dataDir, { recursive: true });
    await fs.access(dataDir, fsConstants.W_OK | fsConstants.X_OK);
  } catch (error) {
    throw new Error(`DATA_DIR=${dataDir} cannot be used: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export async function createStores(config: Config, { onRedisError = () => {}, onS3Request }: StoreObservers = {}): Promise<Stores> {
  await prepareDataDir(config.dataDir);
  const dir = (name: string) => path.join(config.dataDir, name);
  const s3 = s3ClientConfig({
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    checksumMode: config.S3_CHECKSUM_MODE,
  });
  const redis = config.REDIS_URL
    ? new (await import('ioredis')).Redis(config.REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 3 })
    : undefined;
  const subscriber = redis?.duplicate();
  // a Redis that restarts is an outage the requests answer (503), not an unhandled error event
  for (const connection of [redis, subscriber]) connection?.on('error', (error: Error) => onRedisError(error));
  const prefix = config.REDIS_KEY_PREFIX;

  const staging =
    config.TUS_STORE === 's3'
      ? (await import('../storage/s3-staging.ts')).createS3Staging({
          client: s3,
          bucket: config.S3_BUCKET ?? '',
          partSize: config.S3_PART_SIZE,
          expirationMs: config.UPLOAD_EXPIRES_AFTER_MS,
          maxUploadBytes: config.MAX_UPLOAD_BYTES,
          cache: redis ? new IoRedisKvStore<MetadataValue>(redis, `${prefix}s3meta:`) : undefined,
          tempDir: dir('downloads'),
          streamAfterBytes: config.S3_STREAM_AFTER_BYTES,
          partsInFlight: config.S3_PARTS_IN_FLIGHT,
          bounds: MEMORY_BOUNDS,
          tailCacheBytes: config.S3_TAIL_CACHE_BYTES,
          // the locker is made below; a listing is reused only while this instance holds the upload's lock
          heldLease: (id) => locker.leaseOf(id),
          confirmLock: (id) => locker.confirms(id),
          // downloaded originals are written as file staging writes bodies
          writeBuffers: new BufferPool(config.WRITE_BUFFER_BYTES, config.WRITE_BUFFERS_KEPT, config.WRITE_BUFFER_BUDGET_BYTES),
          countRequest: onS3Request && ((command) => onS3Request('staging', command)),
        })
      : createFileStaging({
          directory: dir('staging'),
          expirationMs: config.UPLOAD_EXPIRES_AFTER_MS,
          writeBufferBytes: config.WRITE_BUFFER_BYTES,
          writeBuffersKept: config.WRITE_BUFFERS_KEPT,
          writeBufferBudgetBytes: config.WRITE_BUFFER_BUDGET_BYTES,
        });

  const diskPublic = config.PUBLIC_STORE === 'file' ? new DiskPublicStore(dir('public')) : undefined;
  const publicStore =
    diskPublic ??
    new (await import('../storage/s3-public-store.ts')).S3PublicStore({
      client: s3,
      bucket: config.PUBLIC_S3_BUCKET ?? '',
      keyPrefix: config.PUBLIC_S3_KEY_PREFIX,
      cacheControl: config.mediaCacheControl,
      countRequest: onS3Request && ((command) => onS3Request('public', command)),
    });

  const memory = redis ? undefined : new MemoryLeases();
  const leases: Leases = redis && subscriber ? new RedisLeases({ redis, subscriber, prefix }) : (memory ?? new MemoryLeases());
  let fileStates: FileUploadStateStore | undefined;
  const states: UploadStateStore = redis
    ? new RedisUploadStateStore({ redis, prefix, retentionMs: config.RESULT_RETENTION_MS })
    : (fileStates = new FileUploadStateStore({
        directory: dir('state'),
        retentionMs: config.RESULT_RETENTION_MS,
        holds: (fence) => memory?.holdsNow(fence) ?? false,
      }));
  // without Redis a lock is in this process's memory: its mark on the record is what `npm run sweep` can see
  const locker = new UploadLocker(leases, { ttlMs: config.LOCK_TTL_MS, timeoutMs: config.LOCK_TIMEOUT_MS, pollMs: config.LOCK_POLL_MS, marks: fileStates });

  return {
    staging,
    publicStore,
    diskPublic,
    states,
    leases,
    locker,
    redis,
    async durabilityWarning() {
      if (!redis) return undefined;
      try {
        const info = await redis.info('persistence');
        if (/^aof_enabled:1/m.test(info)) return undefined;
        return 'Redis has no AOF (appendonly no): a restart of Redis loses the state of every upload in flight; set appendonly yes (README, "Several instances")';
      } catch (error) {
        return `could not read Redis's persistence settings: ${String(error)}`;
      }
    },
    async close() {
      await leases.close?.();
      subscriber?.disconnect();
      await redis?.quit().catch(() => {});
    },
  };
}
