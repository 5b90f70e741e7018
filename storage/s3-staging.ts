/** S3 staging (@tus/s3-store): loaded only when TUS_STORE=s3, so file staging never loads the AWS SDK. */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { S3Store, type MetadataValue } from '@tus/s3-store';
import { ERRORS, type KvStore } from '@tus/utils';
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
}

/**
 * S3Store with two corrections:
 * - a deferred-length upload is sized by our maximum, not by S3's 5 TiB (whose part size
 *   makes every PATCH re-upload the incomplete part);
 * - `remove` deletes everything of an upload: S3Store 2.0.7 stops at the abort of an
 *   already completed multipart upload (NoSuchUpload) before deleting the object and its
 *   `.info`, and never deletes the incomplete `.part` object;
 * - a deferred length, once declared, reaches a shared metadata cache: S3Store updates
 *   `.info` and relies on its in-memory cache holding the same object, so with a Redis
 *   cache the declared size was lost and the last PATCH never completed the upload.
 */
class StagingS3Store extends S3Store {
  constructor(options: ConstructorParameters<typeof S3Store>[0], maxUploadBytes: number) {
    super(options);
    Object.defineProperty(this, 'maxUploadSize', { value: maxUploadBytes });
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
  }

  override async remove(id: string): Promise<void> {
    try {
      await super.remove(id);
    } catch (error) {
      if (error !== ERRORS.FILE_NOT_FOUND) throw error;
    }
    await this.client.deleteObjects({
      Bucket: this.bucket,
      Delete: { Objects: [{ Key: id }, { Key: this.infoKey(id) }, { Key: this.partKey(id, true) }], Quiet: true },
    });
    await this.clearCache(id);
  }
}

export function createS3Staging(options: S3StagingOptions): StagingStore {
  const store = new StagingS3Store(
    {
      partSize: options.partSize,
      expirationPeriodInMilliseconds: options.expirationMs,
      cache: options.cache,
      s3ClientConfig: { ...options.client, bucket: options.bucket },
    },
    options.maxUploadBytes,
  );
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
