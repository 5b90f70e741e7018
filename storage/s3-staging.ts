/**
 * S3 staging (s3-staging-store.ts: @tus/s3-store's layout, our write path): loaded only when
 * TUS_STORE=s3, so file staging never loads the AWS SDK.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { MetadataValue } from '@tus/s3-store';
import type { KvStore } from '@tus/utils';
import type { HeldLease } from './s3-listing-memo.ts';
import { StagingS3Store } from './s3-staging-store.ts';
import { isNoSuchObject, StagedOriginalMissing, type StagingStore } from './staging.ts';

/** Streams `source` into `target` (if given) while hashing it; never holds it in memory. */
async function digest(source: Readable, target?: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const sink = target ? createWriteStream(target, { flags: 'wx' }) : new Writable({ write: (_chunk, _encoding, done) => done() });
  await pipeline(source, tap, sink);
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
  streamAfterBytes?: number;
  /** Tail bytes this process wrote, kept in memory (for the whole process) so the part they begin is not downloaded back. */
  tailCacheBytes?: number;
  /** The lease this process holds on an upload's lock (UploadLocker.leaseOf): one S3 listing then serves a whole PATCH. */
  heldLease?: HeldLease;
}

/** `streamAfterBytes` when none is given (S3_STREAM_AFTER_BYTES's default): a smaller chunk never opens an UploadPart it cannot fill. */
export const STREAM_AFTER_BYTES = 1024 * 1024;
/** `tailCacheBytes` when none is given (S3_TAIL_CACHE_BYTES's default): for the process, whatever the number of uploads. */
export const TAIL_CACHE_BYTES = 64 * 1024 * 1024;

export function createS3Staging(options: S3StagingOptions): StagingStore {
  const store = new StagingS3Store({
    s3: {
      partSize: options.partSize,
      expirationPeriodInMilliseconds: options.expirationMs,
      cache: options.cache,
      s3ClientConfig: { ...options.client, bucket: options.bucket },
    },
    maxUploadBytes: options.maxUploadBytes,
    streamAfterBytes: options.streamAfterBytes ?? STREAM_AFTER_BYTES,
    tailCacheBytes: options.tailCacheBytes ?? TAIL_CACHE_BYTES,
    heldLease: options.heldLease,
  });
  const tempDir = options.tempDir ?? os.tmpdir();
  return {
    store,
    async stagedFile(id) {
      await fs.mkdir(tempDir, { recursive: true });
      const file = path.join(tempDir, `tusgate-${id}-${randomBytes(4).toString('hex')}`);
      try {
        const { bytes, sha256 } = await digest(await store.read(id), file);
        return { path: file, bytes, sha256, release: () => fs.rm(file, { force: true }) };
      } catch (error) {
        await fs.rm(file, { force: true });
        throw isNoSuchObject(error) ? new StagedOriginalMissing(id) : error;
      }
    },
  };
}
