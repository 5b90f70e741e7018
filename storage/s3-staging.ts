/**
 * S3 staging (s3-staging-store.ts: @tus/s3-store's layout, our write path): loaded only when
 * TUS_STORE=s3, so file staging never loads the AWS SDK.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import type { KvStore } from '@tus/utils';
import { appendBody, type BufferPool } from './file-write.ts';
import type { S3RequestCounter } from './s3-client.ts';
import type { HeldLease } from './s3-listing-memo.ts';
import { StagingS3Store } from './s3-staging-store.ts';
import { isNoSuchObject, StagedOriginalMissing, type StagingStore } from './staging.ts';

/**
 * Streams `source` into a new file `target` while hashing it; never holds it in memory. The
 * file is written as staged files are (file-write.ts): the downloaded chunks are copied into
 * two reused buffers and freed, one write per buffer rather than one per socket chunk.
 */
async function download(source: Readable, target: string, pool: BufferPool): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      if (!Buffer.isBuffer(chunk)) throw new TypeError('an S3 body chunk is not a Buffer');
      hash.update(chunk);
      bytes += chunk.length;
      yield chunk;
    }
  }
  await (await fs.open(target, 'wx')).close();
  await appendBody(hashed(), target, 0, pool);
  return { bytes, sha256: hash.digest('hex') };
}

export interface S3StagingOptions {
  client: S3ClientConfig;
  bucket: string;
  partSize: number;
  expirationMs: number;
  /** Bounds the part size S3Store derives for a deferred length (it assumes 5 TiB otherwise). */
  maxUploadBytes: number;
  /** Shared metadata cache (Redis) for several instances; in memory otherwise. */
  cache?: KvStore<MetadataValue>;
  /** Where downloaded originals wait for the decoder. */
  tempDir?: string;
  /** A part starts streaming into UploadPart once this many of its bytes came in one PATCH (smaller PATCHes leave a tail object). */
  streamAfterBytes: number;
  /** UploadParts of one upload in flight at most (the one being received included). */
  partsInFlight: number;
  /** Bounds of the in-memory maps that save S3 round trips (MEMORY_BOUNDS in server/config.ts). */
  bounds: { heldListings: number };
  /** Tail bytes this process wrote, kept in memory (for the whole process) so the part they begin is not downloaded back. */
  tailCacheBytes: number;
  /** The lease this process holds on an upload's lock (UploadLocker.leaseOf): one S3 listing then serves a whole PATCH. */
  heldLease?: HeldLease;
  /** Asks the lock's authority whether this process still holds upload `id`'s lock (UploadLocker.confirms): checked before a multipart upload's id is recorded. */
  confirmLock?: (id: string) => Promise<boolean>;
  /** Buffers for writing downloaded originals (the file staging's write buffers). */
  writeBuffers: BufferPool;
  /** Told of every request to S3 (metrics). */
  countRequest?: S3RequestCounter;
}

export function createS3Staging(options: S3StagingOptions): StagingStore {
  const store = new StagingS3Store({
    s3: {
      partSize: options.partSize,
      expirationPeriodInMilliseconds: options.expirationMs,
      cache: options.cache,
      s3ClientConfig: { ...options.client, bucket: options.bucket },
    },
    maxUploadBytes: options.maxUploadBytes,
    streamAfterBytes: options.streamAfterBytes,
    partsInFlight: options.partsInFlight,
    bounds: options.bounds,
    tailCacheBytes: options.tailCacheBytes,
    heldLease: options.heldLease,
    confirmLock: options.confirmLock,
    countRequest: options.countRequest,
  });
  const tempDir = options.tempDir ?? os.tmpdir();
  const pool = options.writeBuffers;
  return {
    store,
    describe: (id) => store.describe(id),
    async stagedFile(id) {
      await fs.mkdir(tempDir, { recursive: true });
      const file = path.join(tempDir, `tusgate-${id}-${randomBytes(4).toString('hex')}`);
      try {
        const { bytes, sha256 } = await download(await store.read(id), file, pool);
        return { path: file, bytes, sha256, release: () => fs.rm(file, { force: true }) };
      } catch (error) {
        await fs.rm(file, { force: true });
        throw isNoSuchObject(error) ? new StagedOriginalMissing(id) : error;
      }
    },
  };
}
