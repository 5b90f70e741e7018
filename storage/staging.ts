/**
 * The tus staging store: where the bytes of allowed uploads are received before the finish.
 * Local disk (@tus/file-store) or S3 (@tus/s3-store), chosen by TUS_STORE.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { FileStore } from '@tus/file-store';
import { S3Store } from '@tus/s3-store';
import { type DataStore, ERRORS, type KvStore } from '@tus/utils';
import type { MetadataValue } from '@tus/s3-store';
import { isNotFound } from './atomic-file.ts';

/** The staged original as a local file the decoder can read at random, with its digest. */
export interface StagedFile {
  path: string;
  bytes: number;
  sha256: string;
  release(): Promise<void>;
}

export interface StagingStore {
  store: DataStore;
  /** The staged original, whole; StagedOriginalMissing when the staging store has no such upload. */
  stagedFile(id: string): Promise<StagedFile>;
  /** The first `bytes` of an incomplete upload, where the store can read them back (not S3's parts). */
  readHead?(id: string, bytes: number): Promise<Buffer | undefined>;
}

/** The staging store has no original for this upload (it was removed, or never completed). */
export class StagedOriginalMissing extends Error {
  override name = 'StagedOriginalMissing';
  constructor(readonly id: string) {
    super(`the staged original of upload ${id} is not in the staging store`);
  }
}

function isNoSuchObject(error: unknown): boolean {
  if (error === ERRORS.FILE_NOT_FOUND || isNotFound(error)) return true;
  return typeof error === 'object' && error !== null && 'name' in error && (error.name === 'NoSuchKey' || error.name === 'NotFound');
}

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

/** Bytes read at a time when hashing a staged file: one buffer, reused, so a 1 GiB file makes no garbage. */
const HASH_BUFFER_BYTES = 1024 * 1024;

/** The size and sha256 of a file, read through one reused buffer (a read stream allocates a Buffer per chunk). */
async function digestFile(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(HASH_BUFFER_BYTES);
  const handle = await fs.open(file, 'r');
  let bytes = 0;
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      bytes += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface FileStagingOptions {
  directory: string;
  expirationMs: number;
}

export function createFileStaging({ directory, expirationMs }: FileStagingOptions): StagingStore {
  const store = new FileStore({ directory, expirationPeriodInMilliseconds: expirationMs });
  return {
    store,
    async stagedFile(id) {
      const file = path.join(directory, id);
      try {
        const { bytes, sha256 } = await digestFile(file);
        return { path: file, bytes, sha256, release: async () => {} };
      } catch (error) {
        throw isNoSuchObject(error) ? new StagedOriginalMissing(id) : error;
      }
    },
    async readHead(id, bytes) {
      const handle = await fs.open(path.join(directory, id), 'r');
      try {
        const buffer = Buffer.alloc(bytes);
        const { bytesRead } = await handle.read(buffer, 0, bytes, 0);
        return buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    },
  };
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
