/**
 * The S3 staging store's write path (storage/s3-staging-store.ts, s3-part-writer.ts,
 * s3-tail.ts) against a real Ceph RGW: parts streamed, tails written once and never
 * rewritten, nothing deleted before its replacement is in S3, uploads @tus/s3-store staged
 * resumed, and what another instance (a fresh store, no cache) sees.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3,
  type S3Client,
} from '@aws-sdk/client-s3';
import { S3Store } from '@tus/s3-store';
import { Upload } from '@tus/utils';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { LeaseLostError } from '../../storage/fenced-stream.ts';
import { RedisLeases } from '../../storage/redis-leases.ts';
import { loadConfig, MEMORY_BOUNDS } from '../../server/config.ts';
import { BufferPool } from '../../storage/file-write.ts';
import { createS3Staging, type S3StagingOptions } from '../../storage/s3-staging.ts';
import { s3ClientConfig } from '../../storage/s3-client.ts';
import { writeParts } from '../../storage/s3-part-writer.ts';
import { canFreeEarly } from '../../storage/free-buffer.ts';
import { S3Tails } from '../../storage/s3-tail.ts';
import { TailCache } from '../../storage/s3-tail-cache.ts';
import { lockKey, UploadLocker } from '../../storage/upload-locker.ts';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch } from '../support/http.ts';
import { startServer } from '../support/server.ts';
import { emptyBucket, s3Client, s3Env } from '../support/services.ts';

const services = inject('services');
const KiB = 1024;
const MiB = 1024 * KiB;
const PART = 5 * MiB;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const bucket = `s3stage-${Date.now().toString(36)}`;
let s3: S3Client;

process.env.AWS_ACCESS_KEY_ID = services.s3.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = services.s3.secretAccessKey;
const client = s3ClientConfig({ endpoint: services.s3.endpoint, region: services.s3.region, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' });

/** What every store here is given as the server gives it: the configuration's defaults. */
const defaults = loadConfig({});
const settings = (): S3StagingOptions => ({
  client,
  bucket,
  partSize: PART,
  expirationMs: 0,
  maxUploadBytes: 64 * MiB,
  streamAfterBytes: defaults.S3_STREAM_AFTER_BYTES,
  partsInFlight: defaults.S3_PARTS_IN_FLIGHT,
  bounds: MEMORY_BOUNDS,
  tailCacheBytes: defaults.S3_TAIL_CACHE_BYTES,
  writeBuffers: new BufferPool(defaults.WRITE_BUFFER_BYTES, defaults.WRITE_BUFFERS_KEPT, defaults.WRITE_BUFFER_BUDGET_BYTES),
});

/** A fresh store: another instance, no cache shared with the others. */
const staging = () => createS3Staging(settings());

/** `data` as a request body arrives: 64 KiB chunks (or `chunk`). */
function body(data: Buffer, chunk = 64 * KiB): Readable {
  function* pieces() {
    for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** The multipart uploads S3 has open for `id`. */
async function multipartsOf(id: string): Promise<number> {
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: id }));
  return (listed.Uploads ?? []).filter((upload) => upload.Key === id).length;
}

/** The `upload-id` the `.info` of `id` records (none: no multipart upload yet). */
async function recordedUploadId(id: string): Promise<string | undefined> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.info` }));
  return head.Metadata?.['upload-id'] || undefined;
}

/** A body that fails after `bytes` (a lost lock, a broken connection). */
function failingBody(data: Buffer, bytes: number): Readable {
  async function* pieces() {
    for (let at = 0; at < bytes; at += 64 * KiB) yield data.subarray(at, Math.min(at + 64 * KiB, bytes));
    throw new Error('the connection broke');
  }
  return Readable.from(pieces(), { objectMode: false });
}

async function created(size: number | undefined, store = staging().store): Promise<string> {
  const id = randomBytes(16).toString('hex');
  await store.create(new Upload({ id, size, offset: 0, metadata: {} }));
  return id;
}

async function keysOf(id: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: id }));
  return (page.Contents ?? []).map((object) => object.Key ?? '').sort();
}

async function stored(id: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: id }));
  return Buffer.from((await object.Body?.transformToByteArray()) ?? []);
}

beforeAll(async () => {
  s3 = s3Client(services);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return async () => {
    await emptyBucket(s3, bucket);
  };
});

describe('S3 staging write path', () => {
  it('one PATCH of 12 MiB: parts streamed, the object whole, no tail, nothing left after remove', async () => {
    const data = randomBytes(12 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    expect(await store.write(body(data), id, 0)).toBe(data.length);
    expect((await staging().store.getUpload(id)).offset).toBe(data.length);
    const back = await stored(id);
    let diff = 0;
    while (diff < back.length && back[diff] === data[diff]) diff++;
    expect({ length: back.length, diff }).toEqual({ length: data.length, diff: data.length });
    expect(sha(back)).toBe(sha(data));
    expect(await keysOf(id)).toEqual([id, `${id}.info`]);
    await store.remove(id);
    expect(await keysOf(id)).toEqual([]);
  });

  it('64 KiB PATCHes: each leaves one tail object, written once and never rewritten; another instance resumes', async () => {
    const data = randomBytes(6 * MiB + 123);
    const id = await created(data.length);
    const chunk = 64 * KiB;
    let offset = 0;
    let firstTail: { etag?: string; modified?: Date } | undefined;
    for (let i = 0; offset < 3 * MiB; i++) {
      const { store } = staging(); // every PATCH on another instance
      const piece = data.subarray(offset, offset + chunk);
      offset = await store.write(body(piece), id, offset);
      expect(offset).toBe((i + 1) * chunk);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
      if (!firstTail) firstTail = { etag: head.ETag, modified: head.LastModified };
      else expect({ etag: head.ETag, modified: head.LastModified }).toEqual(firstTail); // never rewritten
      expect((await keysOf(id)).filter((key) => key.startsWith(`${id}.part`))).toHaveLength(i + 1);
    }
    expect((await staging().store.getUpload(id)).offset).toBe(offset);
    // the rest in one PATCH: the tail goes into part 1 (read once), then deleted
    const { store } = staging();
    expect(await store.write(body(data.subarray(offset)), id, offset)).toBe(data.length);
    expect(await keysOf(id)).toEqual([id, `${id}.info`]);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('a body that ends before its streamed part is full keeps its bytes as a tail; the next PATCH completes the upload', async () => {
    const data = randomBytes(12 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    // 7 MiB: part 1 (5 MiB) and 2 MiB of a part that had started streaming
    expect(await store.write(body(data.subarray(0, 7 * MiB)), id, 0)).toBe(7 * MiB);
    expect((await staging().store.getUpload(id)).offset).toBe(7 * MiB);
    expect(await keysOf(id)).toEqual([`${id}.info`, `${id}.part`]);
    expect(await store.write(body(data.subarray(7 * MiB)), id, 7 * MiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    expect(await keysOf(id)).toEqual([id, `${id}.info`]);
    await store.remove(id);
  });

  it('frees the chunks of a part once S3 acknowledged it, and only those: the ones kept for the tail keep their bytes', async () => {
    const data = randomBytes(12 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    // 64 KiB chunks that are each all of their ArrayBuffer, as a socket delivers them
    const chunks = Array.from({ length: (7 * MiB) / (64 * KiB) }, (_, i) => Buffer.from(data.subarray(i * 64 * KiB, (i + 1) * 64 * KiB)));
    expect(chunks.every((chunk) => chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length)).toBe(true);
    // 7 MiB: part 1 (5 MiB) acknowledged, 2 MiB left as the tail
    expect(await store.write(Readable.from(chunks, { objectMode: false }), id, 0)).toBe(7 * MiB);
    const perPart = PART / (64 * KiB);
    expect(chunks.slice(0, perPart).map((chunk) => chunk.length)).toEqual(Array(perPart).fill(canFreeEarly ? 0 : 64 * KiB));
    expect(chunks.slice(perPart).every((chunk, i) => chunk.length === 64 * KiB && chunk.equals(data.subarray(PART + i * 64 * KiB, PART + (i + 1) * 64 * KiB)))).toBe(true);
    expect(await store.write(body(data.subarray(7 * MiB)), id, 7 * MiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('a tail object another instance rewrote is read from S3, not from the bytes this instance kept', async () => {
    const data = randomBytes(6 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    expect(await store.write(body(data.subarray(0, 512 * KiB)), id, 0)).toBe(512 * KiB); // kept in this instance's tail cache
    const theirs = randomBytes(512 * KiB); // the same key, the same length, other bytes
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part`, Body: theirs, Metadata: { 'tus-start': '0' } }));
    expect(await store.write(body(data.subarray(512 * KiB)), id, 512 * KiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(Buffer.concat([theirs, data.subarray(512 * KiB)])));
    await store.remove(id);
  });

  it('a body that fails writes no tail: the offset stays at what S3 acknowledged', async () => {
    const data = randomBytes(8 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    expect(await store.write(body(data.subarray(0, 100 * KiB)), id, 0)).toBe(100 * KiB);
    await expect(store.write(failingBody(data.subarray(100 * KiB), 6 * MiB), id, 100 * KiB)).rejects.toThrow(/broke/);
    // part 1 (the tail + 4.9 MiB) was full and is in S3; nothing of part 2 is kept
    const offset = (await staging().store.getUpload(id)).offset;
    expect(offset).toBe(PART);
    expect(await keysOf(id)).toEqual([`${id}.info`]);
    expect(await store.write(body(data.subarray(offset)), id, offset)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('a stale tail object (its part in S3, its deletion lost in a crash) is not counted', async () => {
    const data = randomBytes(11 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    expect(await store.write(body(data.subarray(0, 1 * MiB)), id, 0)).toBe(1 * MiB);
    expect(await store.write(body(data.subarray(1 * MiB, 5 * MiB)), id, 1 * MiB)).toBe(5 * MiB);
    expect(await keysOf(id)).toEqual([`${id}.info`]);
    // what the crash left: the `.part` that went into part 1, stamped with its start 0
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part`, Body: data.subarray(0, 1 * MiB), Metadata: { 'tus-start': '0' } }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part.000000000524288`, Body: data.subarray(0, 512 * KiB) }));
    expect((await staging().store.getUpload(id)).offset).toBe(5 * MiB);
    expect(await store.write(body(data.subarray(5 * MiB)), id, 5 * MiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
    expect(await keysOf(id)).toEqual([]);
  });

  it('resumes an upload @tus/s3-store staged (a part and its `.part`)', async () => {
    const data = randomBytes(9 * MiB);
    const id = randomBytes(16).toString('hex');
    const theirs = new S3Store({ partSize: PART, s3ClientConfig: { ...client, bucket } });
    await theirs.create(new Upload({ id, size: data.length, offset: 0, metadata: {} }));
    expect(await theirs.write(body(data.subarray(0, 6 * MiB)), id, 0)).toBe(6 * MiB);
    expect(await keysOf(id)).toEqual([`${id}.info`, `${id}.part`]);
    const ours = staging().store;
    expect((await ours.getUpload(id)).offset).toBe(6 * MiB);
    expect(await ours.write(body(data.subarray(6 * MiB, 7 * MiB)), id, 6 * MiB)).toBe(7 * MiB);
    expect(await ours.write(body(data.subarray(7 * MiB)), id, 7 * MiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await ours.remove(id);
    expect(await keysOf(id)).toEqual([]);
  });

  it('a deferred length: its multipart upload is created with its first part and recorded in the .info', async () => {
    const data = randomBytes(7 * MiB);
    const id = await created(undefined);
    expect(await recordedUploadId(id)).toBeUndefined();
    expect(await staging().store.write(body(data.subarray(0, 6 * MiB)), id, 0)).toBe(6 * MiB);
    const uploadId = await recordedUploadId(id);
    expect(uploadId).toBeDefined();
    const other = staging().store;
    expect((await other.getUpload(id)).offset).toBe(6 * MiB);
    await other.declareUploadLength(id, data.length);
    expect(await recordedUploadId(id)).toBe(uploadId);
    expect(await other.write(body(data.subarray(6 * MiB)), id, 6 * MiB)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await other.remove(id);
    expect(await keysOf(id)).toEqual([]);
    expect(await multipartsOf(id)).toBe(0);
  });

  it('a deferred length whose lock another instance took: no multipart upload is recorded or left open, nothing is staged', async () => {
    const prefix = `s3lock-${Math.random().toString(36).slice(2)}:`;
    const redis = new Redis(services.redisUrl);
    const subscriber = new Redis(services.redisUrl);
    const locker = new UploadLocker(new RedisLeases({ redis, subscriber, prefix }), { ttlMs: 60_000, timeoutMs: 1000, pollMs: 100 });
    const { store } = createS3Staging({
      ...settings(),
      heldLease: (id) => locker.leaseOf(id),
      confirmLock: (id) => locker.confirms(id),
    });
    const data = randomBytes(6 * MiB);
    try {
      // holding the lock: the first part creates the multipart upload and records it
      const kept = await created(undefined, store);
      const held = await locker.tryLock(kept);
      expect(held).toBeDefined();
      expect(await store.write(body(data), kept, 0)).toBe(data.length);
      expect(await recordedUploadId(kept)).toBeDefined();
      if (held) await locker.unlock(kept, held);
      await store.remove(kept);

      // the lock's key now names another holder (Redis lost it and another instance took it)
      const id = await created(undefined, store);
      const lease = await locker.tryLock(id);
      expect(lease?.valid()).toBe(true);
      await redis.set(`${prefix}${lockKey(id)}`, 'another-instance');
      await expect(store.write(body(data), id, 0)).rejects.toBeInstanceOf(LeaseLostError);
      expect(await recordedUploadId(id)).toBeUndefined();
      expect(await multipartsOf(id)).toBe(0);
      expect(await keysOf(id)).toEqual([`${id}.info`]);
      expect((await staging().store.getUpload(id)).offset).toBe(0);
      await staging().store.remove(id);
      await redis.del(`${prefix}${lockKey(id)}`);

      // the lock cannot be confirmed (Redis unreachable): the same, with that error
      const unconfirmed = createS3Staging({ ...settings(), confirmLock: () => Promise.reject(new Error('Redis is unreachable')) });
      const other = await created(undefined, unconfirmed.store);
      await expect(unconfirmed.store.write(body(data), other, 0)).rejects.toThrow('Redis is unreachable');
      expect(await recordedUploadId(other)).toBeUndefined();
      expect(await multipartsOf(other)).toBe(0);
      await staging().store.remove(other);
    } finally {
      await locker.leases.close?.();
      redis.disconnect();
      subscriber.disconnect();
    }
  });

  it('a deferred length: parts and tail while it is unknown, completed once it is declared', async () => {
    const data = randomBytes(7 * MiB + 5);
    const { store } = staging();
    const id = await created(undefined, store);
    expect(await store.write(body(data), id, 0)).toBe(data.length);
    expect((await staging().store.getUpload(id)).size).toBeUndefined();
    await store.declareUploadLength(id, data.length);
    expect(await store.write(body(Buffer.alloc(0)), id, data.length)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('under one lease, one listing serves the PATCH; a new lease lists again', async () => {
    let lease = { valid: () => true };
    const { store } = createS3Staging({ ...settings(), heldLease: () => lease });
    const data = randomBytes(6 * MiB);
    const id = await created(data.length, store);
    expect((await store.getUpload(id)).offset).toBe(0);
    // another writer's tail (it could not exist under our lock): not seen under the same lease
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part`, Body: data.subarray(0, 1000), Metadata: { 'tus-start': '0' } }));
    expect((await store.getUpload(id)).offset).toBe(0);
    lease = { valid: () => true };
    expect((await store.getUpload(id)).offset).toBe(1000);
    expect(await store.write(body(data.subarray(1000, 2000)), id, 1000)).toBe(2000);
    // a write drops what was listed: the next question lists again, even under the same lease
    expect((await store.getUpload(id)).offset).toBe(2000);
    expect(await store.write(body(data.subarray(2000)), id, 2000)).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('an upload that fits one part is one PutObject of its object: no multipart upload, nothing to complete', async () => {
    const data = randomBytes(4 * MiB + 7);
    const { store } = staging();
    const id = await created(data.length, store);
    expect(await keysOf(id)).toEqual([`${id}.info`]);
    expect(await recordedUploadId(id)).toBeUndefined();
    expect(await store.write(body(data), id, 0)).toBe(data.length);
    expect(await multipartsOf(id)).toBe(0);
    expect(await keysOf(id)).toEqual([id, `${id}.info`]);
    expect(sha(await stored(id))).toBe(sha(data));
    // another instance: the object exists, so every byte is staged
    expect((await staging().store.getUpload(id)).offset).toBe(data.length);
    await expect(staging().store.write(body(Buffer.alloc(1)), id, data.length)).rejects.toMatchObject({ status_code: 409 });
    await store.remove(id);
    expect(await keysOf(id)).toEqual([]);
  });

  it('64 KiB PATCHes of an upload that fits one part: the last one writes tail and rest as one PutObject', async () => {
    const data = randomBytes(2 * MiB + 100);
    const id = await created(data.length);
    let offset = 0;
    while (offset < MiB) offset = await staging().store.write(body(data.subarray(offset, offset + 64 * KiB)), id, offset);
    const { store } = staging();
    expect(await store.write(body(data.subarray(offset)), id, offset)).toBe(data.length);
    expect(await multipartsOf(id)).toBe(0);
    expect(await keysOf(id)).toEqual([id, `${id}.info`]); // the tail objects went after the object was written
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('a body that ends before its one-PutObject upload is whole: the PutObject leaves no object, its bytes become a tail', async () => {
    const data = randomBytes(4 * MiB);
    const { store } = staging();
    const id = await created(data.length, store);
    // 3 MiB: past S3_STREAM_AFTER_BYTES, so the PutObject had started; then the body ends
    expect(await store.write(body(data.subarray(0, 3 * MiB)), id, 0)).toBe(3 * MiB);
    expect(await keysOf(id)).toEqual([`${id}.info`, `${id}.part`]); // no object: the upload is not complete
    expect((await staging().store.getUpload(id)).offset).toBe(3 * MiB);
    expect(await multipartsOf(id)).toBe(0);
    expect(await staging().store.write(body(data.subarray(3 * MiB)), id, 3 * MiB)).toBe(data.length);
    expect(await keysOf(id)).toEqual([id, `${id}.info`]);
    expect(sha(await stored(id))).toBe(sha(data));
    await store.remove(id);
  });

  it('an upload longer than a part has its multipart upload from creation, in the .info; another instance continues it', async () => {
    const data = randomBytes(12 * MiB);
    const id = await created(data.length);
    expect(await recordedUploadId(id)).toBeDefined();
    expect(await multipartsOf(id)).toBe(1);
    expect(await staging().store.write(body(data.subarray(0, 6 * MiB)), id, 0)).toBe(6 * MiB);
    const uploadId = await recordedUploadId(id);
    expect(uploadId).toBeDefined();
    expect(await multipartsOf(id)).toBe(1);
    const other = staging().store;
    expect((await other.getUpload(id)).offset).toBe(6 * MiB);
    expect(await other.write(body(data.subarray(6 * MiB)), id, 6 * MiB)).toBe(data.length);
    expect(await recordedUploadId(id)).toBe(uploadId);
    expect(await multipartsOf(id)).toBe(0); // completed
    expect(sha(await stored(id))).toBe(sha(data));
    await other.remove(id);
    expect(await keysOf(id)).toEqual([]);
  });

  it('an upload @tus/s3-store created that fits one part goes to its object in one PutObject; remove aborts its multipart upload', async () => {
    const data = randomBytes(3 * MiB);
    const id = randomBytes(16).toString('hex');
    const theirs = new S3Store({ partSize: PART, s3ClientConfig: { ...client, bucket } });
    await theirs.create(new Upload({ id, size: data.length, offset: 0, metadata: {} }));
    expect(await multipartsOf(id)).toBe(1);
    const ours = staging().store;
    expect(await ours.write(body(data), id, 0)).toBe(data.length);
    expect((await staging().store.getUpload(id)).offset).toBe(data.length);
    expect(sha(await stored(id))).toBe(sha(data));
    await ours.remove(id);
    expect(await keysOf(id)).toEqual([]);
    expect(await multipartsOf(id)).toBe(0);
  });

  it('describe answers from the .info alone: no listing, offset 0 whatever is staged; getUpload lists', async () => {
    const commands: string[] = [];
    const { store, describe } = createS3Staging({ ...settings(), countRequest: (command) => commands.push(command) });
    const id = await created(6 * MiB, store);
    expect(commands).toEqual(['CreateMultipartUploadCommand', 'PutObjectCommand']);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.part`, Body: randomBytes(1000), Metadata: { 'tus-start': '0' } }));
    commands.length = 0;
    expect(await describe?.(id)).toMatchObject({ id, offset: 0, size: 6 * MiB });
    expect(commands).toEqual([]); // the .info from the metadata cache, nothing listed
    expect(await staging().describe?.(id)).toMatchObject({ id, offset: 0, size: 6 * MiB }); // another instance reads the .info
    expect((await store.getUpload(id)).offset).toBe(1000);
    expect(commands.sort()).toEqual(['HeadObjectCommand', 'ListObjectsV2Command', 'ListPartsCommand']); // the `.part` is read for its start
    await expect(staging().describe?.(randomBytes(16).toString('hex'))).rejects.toMatchObject({ status_code: 404 });
    await store.remove(id);
  });

  it('an .info that is not an upload record is an error, never a 404 or a deferred length', async () => {
    const id = await created(6 * MiB);
    const info = { id, size: 6 * MiB, offset: 0, metadata: { filename: 'a.jpg' }, creation_date: new Date().toISOString() };
    const put = (body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${id}.info`, Body: body, Metadata: { 'tus-version': '1.0.0' } }));
    // S3Store's parse read a size that is not a number as a deferred length (Upload-Defer-Length)
    for (const body of [JSON.stringify({ ...info, size: String(6 * MiB) }), JSON.stringify({ ...info, offset: 'none' }), JSON.stringify({ ...info, id: randomBytes(16).toString('hex') }), '{"id":']) {
      await put(body);
      const error = await staging().store.getUpload(id).catch((e: unknown) => e);
      expect(error, body).toBeInstanceOf(Error);
      expect(String(error), body).toMatch(/\.info/);
    }
    await put(JSON.stringify({ ...info, offset: '0' })); // as older @tus/s3-store versions may have written it
    expect(await staging().describe?.(id)).toMatchObject({ id, size: 6 * MiB, metadata: { filename: 'a.jpg' } });
    await staging().store.remove(id);

    // an upload whose .info is torn can still be removed: everything of it goes
    const torn = await created(MiB);
    await staging().store.write(body(randomBytes(100 * KiB)), torn, 0); // a tail object
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${torn}.info`, Body: '{"id":' }));
    await staging().store.remove(torn);
    expect(await keysOf(torn)).toEqual([]);
  });

  it('an offset that is not the staged one is refused before a byte is written', async () => {
    const { store } = staging();
    const id = await created(6 * MiB, store);
    await expect(store.write(body(randomBytes(KiB)), id, 10)).rejects.toMatchObject({ status_code: 409 });
    expect(await keysOf(id)).toEqual([`${id}.info`]);
    await store.remove(id);
    await store.remove(id); // gone already: nothing to do, no error
    await expect(store.getUpload(id)).rejects.toMatchObject({ status_code: 404 });
  });
});

describe('S3 requests of an upload, through the server', () => {
  /** The server's tusgate_s3_requests_total of the staging store, by command. */
  async function stagingRequests(url: string): Promise<Record<string, number>> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const counts: Record<string, number> = {};
    for (const match of text.matchAll(/^tusgate_s3_requests_total\{store="staging",command="(\w+)"\} (\d+)$/gm)) counts[match[1] ?? ''] = Number(match[2]);
    return counts;
  }
  const since = (before: Record<string, number>, after: Record<string, number>) =>
    Object.fromEntries(Object.entries(after).filter(([command, n]) => n !== (before[command] ?? 0)).map(([command, n]) => [command, n - (before[command] ?? 0)]));

  for (const redis of [false, true]) {
    it(`a pending upload is answered without a listing; its PATCH lists once, its finish once${redis ? ' (Redis)' : ''}`, async () => {
      const server = await startServer({ env: { ...s3Env(services, { staging: bucket }, redis), OUTPUT_LONG_EDGE: '256' } });
      try {
        const image = await fixtures.jpeg(640, 480);
        const data = Buffer.concat([image, randomBytes(2 * MiB)]); // one part: one PutObject of the object
        let before = await stagingRequests(server.url);
        const url = await create(server.endpoint, data.length);
        expect((await head(url)).headers['upload-offset']).toBe('0');
        expect(since(before, await stagingRequests(server.url))).toEqual({ PutObjectCommand: 1 }); // the .info
        before = await stagingRequests(server.url);
        expect((await patch(url, 0, data)).status).toBe(200); // the finish's answer
        // the PATCH: one listing, the object; the finish: the object (its `.info` still cached), a listing, one DeleteObjects
        expect(since(before, await stagingRequests(server.url))).toEqual({ ListObjectsV2Command: 2, PutObjectCommand: 1, GetObjectCommand: 1, DeleteObjectsCommand: 1 });
      } finally {
        await server.stop();
      }
    });
  }
});

describe('UploadParts in flight', () => {
  /** A real client that counts the UploadParts it has sent and not had answered yet. */
  function countingClient(): { s3: S3; most: () => number } {
    const counted = new S3(client);
    let open = 0;
    let most = 0;
    counted.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UploadPartCommand') return next(args);
        open += 1;
        most = Math.max(most, open);
        try {
          return await next(args);
        } finally {
          open -= 1;
        }
      },
      { step: 'initialize', name: 'countUploadParts' },
    );
    return { s3: counted, most: () => most };
  }

  for (const partsInFlight of [1, 3]) {
    it(`one PATCH of 6 parts keeps at most ${partsInFlight} of them in flight (S3_PARTS_IN_FLIGHT), in order`, async () => {
      const { s3: counted, most } = countingClient();
      const id = randomBytes(16).toString('hex');
      const { UploadId } = await counted.createMultipartUpload({ Bucket: bucket, Key: id });
      const data = randomBytes(6 * PART);
      const written = await writeParts(
        body(data),
        { client: counted, bucket, id, multipart: () => Promise.resolve(UploadId ?? ''), tails: new S3Tails(counted, bucket, new TailCache(0)) },
        {
          size: data.length,
          parts: [],
          partsEnd: 0,
          tail: { start: 0, bytes: 0, objects: [], stale: [] },
          partSize: PART,
          minPartSize: PART,
          streamAfter: defaults.S3_STREAM_AFTER_BYTES,
          partsInFlight,
        },
      );
      expect(written).toMatchObject({ offset: data.length, complete: true, whole: false });
      expect(written.parts.map((part) => part.PartNumber)).toEqual([1, 2, 3, 4, 5, 6]);
      // the next part opens while S3 is still answering the one before (tens of ms): more than one in flight once allowed
      expect(most()).toBeLessThanOrEqual(partsInFlight);
      if (partsInFlight > 1) expect(most()).toBeGreaterThan(1);
      await counted.completeMultipartUpload({ Bucket: bucket, Key: id, UploadId, MultipartUpload: { Parts: written.parts } });
      expect(sha(await stored(id))).toBe(sha(data));
    });
  }
});

describe('the tail cache', () => {
  it('holds at most its budget for the process, oldest out first, and answers only for the ETag S3 lists', () => {
    const cache = new TailCache(3 * KiB);
    const kib = (n: number) => Buffer.alloc(n * KiB, n);
    cache.set('a', '"1"', 0, kib(1));
    cache.set('b', '"2"', 0, kib(1));
    cache.set('c', '"3"', 0, kib(1));
    expect(cache.size).toBe(3 * KiB);
    cache.set('d', '"4"', 0, kib(2)); // a and b go
    expect([cache.get('a', '"1"'), cache.get('b', '"2"')]).toEqual([undefined, undefined]);
    expect(cache.get('c', '"3"')?.bytes).toEqual(kib(1));
    expect(cache.get('d', '"4"')?.bytes).toEqual(kib(2));
    expect(cache.get('d', '"other"')).toBeUndefined();
    cache.set('e', '"5"', 0, kib(4)); // larger than the whole budget: not kept
    expect(cache.get('e', '"5"')).toBeUndefined();
    expect(cache.size).toBe(3 * KiB);
    cache.delete('c');
    cache.delete('d');
    expect(cache.size).toBe(0);
  });
});
