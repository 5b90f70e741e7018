/**
 * The file staging store's write path: a request body appended to its staged file through
 * two reused buffers, one filling while the other is written, instead of @tus/file-store's
 * `fs.createWriteStream` (one write, one request object and one threadpool round trip per
 * 64 KiB socket chunk, each chunk kept alive until the disk has it).
 *
 * Each chunk is copied into the buffer that is filling and can be dropped at once, so the
 * young generation collects it; a full buffer is written while the next fills. Bytes reach
 * the file in order, so its size stays the upload's offset (FileStore reads it with stat).
 *
 * The writer is a body's last reader: it takes the chunks it is given and frees each one
 * once copied (see release), so nothing may keep a chunk it passed on.
 *
 * When the body ends, what it brought is written. When it fails (a cut connection, the
 * body limit, a lock lost), the buffer not yet written is dropped: those bytes were never
 * acknowledged, and a holder that lost its lock must not write them.
 */
import { mkdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { ERRORS } from '@tus/utils';
import { freeBuffer as release } from './free-buffer.ts';
import { FileUploadInfoStore } from './file-upload-info.ts';

/** A body chunk's size (the socket's reads): a smaller write buffer would split every chunk. */
export const SMALL_BUFFER_BYTES = 64 * 1024;

/**
 * The write buffers: reused, so that a busy server does not allocate two per request, and
 * within a budget. Full-size buffers are lent while fewer than `budget` bytes of them are
 * out; past it (many uploads at once) an upload gets small ones, so memory stays bounded
 * by the budget plus `smallBytes` per buffer, not the full size per upload.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private lent = 0;
  constructor(
    readonly bytes: number,
    private readonly keep: number,
    private readonly budget: number = Number.POSITIVE_INFINITY,
    readonly smallBytes: number = SMALL_BUFFER_BYTES,
  ) {}
  take(): Buffer {
    if (this.lent + this.bytes > this.budget) return Buffer.allocUnsafeSlow(Math.min(this.smallBytes, this.bytes));
    this.lent += this.bytes;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bytes);
  }
  /**
   * Takes a buffer back once nothing refers to it any more. One not kept (a small one, or
   * more than `keep`) is freed now: left to the collector, it waits for a major collection
   * as external memory, and the allocator cannot hand its pages to the next upload or the
   * next transcode meanwhile.
   */
  give(buffer: Buffer): void {
    if (buffer.length === this.bytes) {
      this.lent -= this.bytes;
      if (this.free.length < this.keep) return void this.free.push(buffer);
    }
    release(buffer);
  }
}

/** The disk failed (not the body): FileStore's FILE_WRITE_ERROR. */
class DiskWriteFailed extends Error {
  override name = 'DiskWriteFailed';
}

async function writeFully(handle: fs.FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let done = 0;
  try {
    while (done < length) {
      const { bytesWritten } = await handle.write(buffer, done, length - done, position + done);
      done += bytesWritten;
    }
  } catch (error) {
    throw new DiskWriteFailed('writing the staged file failed', { cause: error });
  }
}

/**
 * Appends `source` (a body, or any stream of Buffers it may free) to `file` from `offset`;
 * resolves to the offset after the last byte written. Each chunk is freed once copied
 * (`release`): request body chunks are each their own ArrayBuffer, tiny objects on the
 * JavaScript heap that hold 64 KiB outside it, so between two young-generation collections
 * tens of megabytes of them would wait as garbage.
 */
export async function appendBody(source: AsyncIterable<unknown>, file: string, offset: number, pool: BufferPool): Promise<number> {
  const handle = await fs.open(file, 'r+').catch((error: unknown) => {
    throw new DiskWriteFailed('opening the staged file failed', { cause: error });
  });
  const buffers = [pool.take(), pool.take()] as const;
  let [filling, spare] = buffers;
  let fill = 0;
  let position = offset;
  let writing: Promise<void> = Promise.resolve();
  // Hands the filled buffer to the disk once the previous write is done; the other one fills meanwhile.
  const flip = async () => {
    await writing;
    const length = fill;
    writing = writeFully(handle, filling, length, position).then(() => {
      position += length;
    });
    // awaited at the next flip or at the end; until then a failure must not count as unhandled
    writing.catch(() => {});
    [filling, spare] = [spare, filling];
    fill = 0;
  };
  try {
    for await (const data of source) {
      if (!Buffer.isBuffer(data)) throw new TypeError('a body chunk is not a Buffer');
      let at = 0;
      while (at < data.length) {
        const copied = data.copy(filling, fill, at);
        fill += copied;
        at += copied;
        if (fill === filling.length) await flip();
      }
      release(data);
    }
    if (fill > 0) await flip();
    await writing;
    return position;
  } catch (error) {
    // what was handed to the disk is there; the rest is dropped (see the top of this file)
    await writing.catch(() => {});
    throw error;
  } finally {
    await handle.close();
    pool.give(buffers[0]);
    pool.give(buffers[1]);
  }
}

export interface CoalescingFileStoreOptions {
  directory: string;
  expirationMs: number;
  /** Bytes of each of an upload's two write buffers. */
  bufferBytes: number;
  /** Idle buffers kept for the next requests. */
  keepBuffers: number;
  /** Bytes of full-size buffers lent at once; uploads beyond it get 64 KiB buffers. */
  budgetBytes: number;
}

/** @tus/file-store with the write path above; everything else (metadata, offsets from stat) is FileStore's. */
export class CoalescingFileStore extends FileStore {
  private readonly pool: BufferPool;
  private readonly dir: string;

  constructor({ directory, expirationMs, bufferBytes, keepBuffers, budgetBytes }: CoalescingFileStoreOptions) {
    // the `<id>.json` records: absent is absent, anything else an error (file-upload-info.ts)
    super({ directory, expirationPeriodInMilliseconds: expirationMs, configstore: new FileUploadInfoStore(directory) });
    this.dir = directory;
    this.pool = new BufferPool(bufferBytes, keepBuffers, budgetBytes);
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    try {
      return await appendBody(readable, path.join(this.dir, id), offset, this.pool);
    } catch (error) {
      // as FileStore: the disk failing is FILE_WRITE_ERROR; the body's own error (a limit, a lost lock) is passed on
      throw error instanceof DiskWriteFailed ? ERRORS.FILE_WRITE_ERROR : error;
    }
  }
}

/**
 * FileStore's constructor makes its directory with fs.mkdir and a callback that throws: a
 * directory that cannot be made crashed the process a moment later, outside any handler
 * (after "listening"). Here it is made at once, and a failure is the constructor's, which
 * start-up reports. The method is private in FileStore's types, hence defineProperty; the
 * unit test of a directory that cannot be made fails if FileStore stops calling it.
 */
Reflect.defineProperty(CoalescingFileStore.prototype, 'checkOrCreateDirectory', {
  value(this: FileStore): void {
    mkdirSync(this.directory, { recursive: true });
  },
});
