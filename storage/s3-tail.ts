/**
 * The tail of an S3-staged upload: the bytes after its last multipart part that do not fill
 * a part yet (S3 takes parts of at least 5 MiB but the last). Each PATCH that leaves such
 * bytes writes them ONCE, as an object of their own, and never reads back or rewrites what
 * an earlier PATCH left; the tail is read once, when the part it begins is uploaded, and its
 * objects are deleted only after that part is acknowledged by S3 (never before the bytes
 * that replace them are durable).
 *
 * Objects, beside @tus/s3-store's `<id>` (the multipart upload) and `<id>.info`:
 * - `<id>.part`: the first tail object, with its start offset in `x-amz-meta-tus-start`.
 *   @tus/s3-store writes the same key (without that metadata) for its incomplete part, so
 *   an upload it staged is read as is: its `.part` starts where the parts end. Before such a
 *   `.part` goes into a part, it is stamped with its start (a server-side copy onto itself),
 *   so that a `.part` left behind by a crash is known to be stale.
 * - `<id>.part.<start>`: the tail objects after it, `start` in 15 digits.
 * Reading the tail: from where the parts end, the object starting at each position, in
 * order; an object starting before the parts' end is stale (its bytes are in a part).
 * The tail is listed with the prefix `<id>`, which also finds the object `<id>` itself
 * once the upload is complete (s3-staging-store.ts).
 */
import type { S3 } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { TailCache } from './s3-tail-cache.ts';

/** One object of a tail. */
export interface TailObject {
  key: string;
  start: number;
  bytes: number;
  /** As S3 lists it: the tail cache's entry is used only for the same ETag. */
  etag?: string;
  /** `.part` without a start of its own (@tus/s3-store's): it starts where the parts end. */
  unstamped: boolean;
}

/** The live tail (in order, contiguous from `start`) and the objects whose bytes are in parts already. */
export interface Tail {
  start: number;
  bytes: number;
  objects: TailObject[];
  stale: TailObject[];
}

const START_META = 'tus-start';
const digits = z.string().regex(/^\d{1,15}$/).transform(Number);
const startMeta = z.object({ [START_META]: digits }).partial();

/** What one listing of an upload's prefix found. */
export interface StagedObjects {
  /** Its tail objects, live or stale (chain() tells them apart). */
  tail: TailObject[];
  /** The byte size of the object `<id>` when it exists: every byte of the upload is in it. */
  whole: number | undefined;
}

export const firstTailKey = (id: string): string => `${id}.part`;
const laterTailKey = (id: string, start: number): string => `${id}.part.${String(start).padStart(15, '0')}`;

export class S3Tails {
  constructor(
    private readonly client: S3,
    private readonly bucket: string,
    private readonly cache: TailCache,
  ) {}

  /**
   * The objects of `id` in one listing (prefix `<id>`): every object of its tail (live or
   * stale, plus a HEAD when `.part` exists and this process did not write it), and the
   * size of the object `<id>` itself if it exists (the upload is complete: a completed
   * multipart upload, or one PutObject).
   */
  async list(id: string): Promise<StagedObjects> {
    const first = firstTailKey(id);
    const tail: TailObject[] = [];
    let whole: number | undefined;
    let token: string | undefined;
    do {
      const page = await this.client.listObjectsV2({ Bucket: this.bucket, Prefix: id, ContinuationToken: token });
      for (const object of page.Contents ?? []) {
        const bytes = object.Size ?? 0;
        const etag = object.ETag;
        if (object.Key === id) {
          whole = bytes;
          continue;
        }
        if (object.Key === first) {
          const start = this.cache.get(first, etag)?.start ?? (await this.stampOf(first));
          if (start !== null) tail.push({ key: first, start: start ?? -1, bytes, etag, unstamped: start === undefined });
          continue;
        }
        const later = digits.safeParse(object.Key?.slice(first.length + 1));
        if (object.Key?.startsWith(`${first}.`) && later.success) tail.push({ key: object.Key, start: later.data, bytes, etag, unstamped: false });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { tail, whole };
  }

  /** The start stamped on `.part`; undefined: none (@tus/s3-store's); null: gone since the listing. */
  private async stampOf(key: string): Promise<number | undefined | null> {
    try {
      const head = await this.client.headObject({ Bucket: this.bucket, Key: key });
      return startMeta.parse(head.Metadata ?? {})[START_META];
    } catch (error) {
      if (isMissingObject(error)) return null;
      throw error;
    }
  }

  /** The tail after `partsEnd` bytes of parts, from the objects `list` found (listed beside the parts, not after them). */
  chain(listed: TailObject[], partsEnd: number): Tail {
    const all = listed.map((object) => (object.unstamped ? { ...object, start: partsEnd } : object));
    const objects: TailObject[] = [];
    let position = partsEnd;
    for (;;) {
      const next = all.filter((object) => object.start === position && object.bytes > 0).sort((a, b) => b.bytes - a.bytes)[0];
      if (!next) break;
      objects.push(next);
      position += next.bytes;
    }
    const stale = all.filter((object) => object.start < partsEnd);
    return { start: partsEnd, bytes: position - partsEnd, objects, stale };
  }

  /** Stamps @tus/s3-store's `.part` with its start, before its bytes go into a part. */
  async stamp(tail: Tail): Promise<Tail> {
    const objects: TailObject[] = [];
    for (const object of tail.objects) {
      if (!object.unstamped) {
        objects.push(object);
        continue;
      }
      const copied = await this.client.copyObject({
        Bucket: this.bucket,
        Key: object.key,
        CopySource: `${this.bucket}/${encodeURIComponent(object.key)}`,
        MetadataDirective: 'REPLACE',
        Metadata: { [START_META]: String(object.start) },
      });
      objects.push({ ...object, etag: copied.CopyObjectResult?.ETag, unstamped: false });
    }
    return { ...tail, objects };
  }

  /** Writes `chunks` (`bytes` long) as the tail object starting at `start`; `first`: the tail was empty. */
  async append(id: string, start: number, first: boolean, chunks: Buffer[], bytes: number, tagging?: string): Promise<TailObject> {
    const key = first ? firstTailKey(id) : laterTailKey(id, start);
    const body = Buffer.concat(chunks, bytes);
    this.cache.delete(key);
    const { ETag } = await this.client.putObject({
      Bucket: this.bucket,
      Key: key,
      Body: body,
      ContentLength: bytes,
      Metadata: { [START_META]: String(start) },
      Tagging: tagging,
    });
    this.cache.set(key, ETag, start, body);
    return { key, start, bytes, etag: ETag, unstamped: false };
  }

  /** The bytes of the tail, in order: from the cache where this process wrote them, else downloaded one object after the other. */
  read(tail: Tail): Readable {
    const { client, bucket, cache } = this;
    async function* bytes(): AsyncGenerator<Buffer> {
      for (const object of tail.objects) {
        const cached = cache.get(object.key, object.etag)?.bytes;
        if (cached && cached.length === object.bytes) {
          yield cached;
          continue;
        }
        const { Body } = await client.getObject({ Bucket: bucket, Key: object.key });
        if (!(Body instanceof Readable)) throw new Error(`tail object ${object.key} has no body`);
        let read = 0;
        for await (const chunk of Body) {
          const buffer = asBuffer(chunk);
          read += buffer.length;
          yield buffer;
        }
        if (read !== object.bytes) throw new Error(`tail object ${object.key}: read ${read} bytes of ${object.bytes}`);
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  /** Deletes tail objects (their bytes are in an acknowledged part, or the upload is gone), and `alsoKeys` with them. */
  async delete(objects: TailObject[], alsoKeys: string[] = []): Promise<void> {
    for (const object of objects) this.cache.delete(object.key);
    const keys = [...objects.map((object) => object.key), ...alsoKeys];
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000).map((key) => ({ Key: key }));
      await this.client.deleteObjects({ Bucket: this.bucket, Delete: { Objects: batch, Quiet: true } });
    }
  }

}

/** A stream's chunk as a Buffer (S3's bodies and request bodies yield Buffers; a Uint8Array is wrapped, not copied). */
export function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`a stream chunk that is not bytes: ${typeof chunk}`);
}

const errorName = z.object({ name: z.string() }).or(z.object({ Code: z.string() }).transform(({ Code }) => ({ name: Code })));

/** S3's "no such object" (NotFound is what a HEAD without a body gets). */
export function isMissingObject(error: unknown): boolean {
  const parsed = errorName.safeParse(error);
  return parsed.success && ['NoSuchKey', 'NotFound'].includes(parsed.data.name);
}

/** S3's answer for a multipart upload that was completed or aborted (Ceph RGW says NoSuchKey). */
export function isMissingUpload(error: unknown): boolean {
  const parsed = errorName.safeParse(error);
  return parsed.success && ['NoSuchUpload', 'NoSuchKey'].includes(parsed.data.name);
}
