/**
 * The tus staging store: where the bytes of allowed uploads are received before the finish.
 * Local disk (@tus/file-store, here) or S3 (@tus/s3-store, s3-staging.ts, loaded only when
 * TUS_STORE=s3), chosen by TUS_STORE.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { type DataStore, ERRORS, type Upload } from '@tus/utils';
import { isNotFound } from './atomic-file.ts';
import { CoalescingFileStore } from './file-write.ts';

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
  /** The upload without its offset, where getUpload's offset costs more (S3: a listing); absent: getUpload. */
  describe?(id: string): Promise<Upload>;
}

/** The staging store has no original for this upload (it was removed, or never completed). */
export class StagedOriginalMissing extends Error {
  override name = 'StagedOriginalMissing';
  constructor(readonly id: string) {
    super(`the staged original of upload ${id} is not in the staging store`);
  }
}

export function isNoSuchObject(error: unknown): boolean {
  if (error === ERRORS.FILE_NOT_FOUND || isNotFound(error)) return true;
  return typeof error === 'object' && error !== null && 'name' in error && (error.name === 'NoSuchKey' || error.name === 'NotFound');
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
  /** WRITE_BUFFER_BYTES: each of an upload's two write buffers (file-write.ts). */
  writeBufferBytes: number;
  /** WRITE_BUFFERS_KEPT: idle write buffers kept for the next requests. */
  writeBuffersKept: number;
  /** WRITE_BUFFER_BUDGET_BYTES: full-size write buffers lent at once (file-write.ts). */
  writeBufferBudgetBytes: number;
}

export function createFileStaging({ directory, expirationMs, writeBufferBytes, writeBuffersKept, writeBufferBudgetBytes }: FileStagingOptions): StagingStore {
  const store = new CoalescingFileStore({
    directory,
    expirationMs,
    bufferBytes: writeBufferBytes,
    keepBuffers: writeBuffersKept,
    budgetBytes: writeBufferBudgetBytes,
  });
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

