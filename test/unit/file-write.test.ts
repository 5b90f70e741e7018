/**
 * The file staging write path (storage/file-write.ts): bytes land at the right offsets
 * whatever the chunking, what arrived before a failing body is on disk up to the last
 * buffer handed to the disk and never past it, the disk failing is FILE_WRITE_ERROR.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ERRORS } from '@tus/utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendBody, BufferPool, CoalescingFileStore } from '../../storage/file-write.ts';
import { canFreeEarly } from '../../storage/free-buffer.ts';
import { tempDir } from '../support/server.ts';

let dir: string;
beforeEach(() => {
  dir = tempDir('tusgate-file-write-');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `data` as a stream of chunks of the given sizes, cycled. */
function chunked(data: Buffer, sizes: number[]): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return Readable.from(chunks);
}

function emptyFile(name: string, prefix = Buffer.alloc(0)): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, prefix);
  return file;
}

describe('appendBody', () => {
  it.each([
    ['socket-sized chunks', [65_536]],
    ['chunks that straddle the buffers', [1, 70_001, 13, 131_072, 65_535]],
    ['one chunk larger than both buffers', [1_000_000]],
  ])('writes every byte in order with %s', async (_name, sizes) => {
    const data = randomBytes(1_234_567);
    const file = emptyFile('a');
    const end = await appendBody(chunked(data, sizes), file, 0, new BufferPool(64 * 1024, 2));
    expect(end).toBe(data.length);
    expect(sha(fs.readFileSync(file))).toBe(sha(data));
  });

  it('appends at the offset a resumed upload gives', async () => {
    const head = randomBytes(100_000);
    const tail = randomBytes(300_001);
    const file = emptyFile('b', head);
    const end = await appendBody(chunked(tail, [4096]), file, head.length, new BufferPool(64 * 1024, 2));
    expect(end).toBe(head.length + tail.length);
    expect(sha(fs.readFileSync(file))).toBe(sha(Buffer.concat([head, tail])));
  });

  it('keeps what reached the disk before a body fails, in order, and drops the buffer not yet handed on', async () => {
    const data = randomBytes(200_000);
    const file = emptyFile('c');
    const failing = new Readable({ read() {} });
    const pool = new BufferPool(64 * 1024, 2);
    const writing = appendBody(failing, file, 0, pool);
    failing.push(data.subarray(0, 150_000));
    await new Promise((resolve) => setTimeout(resolve, 50));
    failing.destroy(new Error('connection cut'));
    await expect(writing).rejects.toThrow('connection cut');
    const kept = fs.readFileSync(file);
    // two full buffers were handed on (131,072 bytes); the 18,928 bytes filling the third were not
    expect(kept.length).toBe(2 * 64 * 1024);
    expect(sha(kept)).toBe(sha(data.subarray(0, kept.length)));
  });

  it('reuses its buffers across requests and keeps no more than it is told', async () => {
    const pool = new BufferPool(64 * 1024, 2);
    const file = emptyFile('d');
    const first = pool.take();
    pool.give(first);
    await appendBody(Readable.from([randomBytes(10)]), file, 0, pool);
    expect([pool.take(), pool.take()]).toContain(first);
    const three = [pool.take(), pool.take(), pool.take()];
    for (const b of three) pool.give(b);
    const again = [pool.take(), pool.take(), pool.take()];
    expect(again.filter((b) => three.includes(b))).toHaveLength(2);
    // the one it did not keep was freed at once, not left to the collector
    expect(three.map((b) => b.byteLength).sort()).toEqual([0, 64 * 1024, 64 * 1024]);
  });
});

describe('the write buffer budget', () => {
  it('lends full-size buffers up to its budget, small ones past it, and takes back only what it lent', async () => {
    const pool = new BufferPool(256 * 1024, 4, 3 * 256 * 1024);
    const lent = [pool.take(), pool.take(), pool.take(), pool.take()];
    expect(lent.map((b) => b.length)).toEqual([256 * 1024, 256 * 1024, 256 * 1024, 64 * 1024]);
    pool.give(lent[3]!);
    pool.give(lent[0]!);
    expect(pool.take().length).toBe(256 * 1024); // room again
    expect(pool.take().length).toBe(64 * 1024);
    expect(lent[3]!.byteLength).toBe(0); // a small one given back is freed
    expect(lent[0]!.byteLength).toBe(256 * 1024); // a full-size one is kept for the next upload
    // a body written through small buffers is whole
    const data = randomBytes(300_000);
    const file = emptyFile('f');
    expect(await appendBody(chunked(data, [65_536]), file, 0, new BufferPool(256 * 1024, 2, 0))).toBe(data.length);
    expect(sha(fs.readFileSync(file))).toBe(sha(data));
  });
});

describe('freeing chunks once copied', () => {
  it('frees a chunk that is its own ArrayBuffer on this runtime, and never a slice of a shared one', async () => {
    expect(canFreeEarly).toBe(true); // Node 22+ natively, Node 20 through a new context (free-buffer.ts)
    const whole = Buffer.from(randomBytes(70_000));
    const shared = randomBytes(200_000);
    const slice = shared.subarray(0, 100_000);
    const pooled = Buffer.from('a short chunk from Buffer.from, in the shared pool');
    const copies = [Buffer.from(whole), Buffer.from(slice), Buffer.from(pooled)];
    const file = emptyFile('e');
    const end = await appendBody(Readable.from([whole, slice, pooled]), file, 0, new BufferPool(64 * 1024, 2));
    expect(end).toBe(70_000 + 100_000 + pooled.length);
    expect(sha(fs.readFileSync(file))).toBe(sha(Buffer.concat(copies)));
    expect(whole.byteLength).toBe(0);
    expect(slice.equals(copies[1]!)).toBe(true);
    expect(shared.byteLength).toBe(200_000);
    expect(pooled.equals(copies[2]!)).toBe(true);
  });
});

describe('CoalescingFileStore', () => {
  it('answers FILE_WRITE_ERROR when the disk fails, and passes a body error on as it is', async () => {
    const store = new CoalescingFileStore({ directory: dir, expirationMs: 0, bufferBytes: 64 * 1024, keepBuffers: 2, budgetBytes: 1024 * 1024 });
    // no staged file to write to: the disk side fails
    await expect(store.write(Readable.from([randomBytes(10)]), 'missing', 0)).rejects.toBe(ERRORS.FILE_WRITE_ERROR);
    // a disk that fails mid-body (/dev/full: every write is ENOSPC), while more chunks still come
    const slow = new Readable({ read() {} });
    const failing = expect(store.write(slow, path.relative(dir, '/dev/full'), 0)).rejects.toBe(ERRORS.FILE_WRITE_ERROR);
    for (let i = 0; i < 4; i++) {
      slow.push(randomBytes(64 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    slow.push(null);
    await failing;
    emptyFile('present');
    const limit = new Error('body limit');
    const body = new Readable({
      read() {
        this.destroy(limit);
      },
    });
    await expect(store.write(body, 'present', 0)).rejects.toBe(limit);
  });
});
