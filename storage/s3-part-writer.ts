/**
 * One PATCH body into an S3 multipart upload, without a temporary file and without
 * reading back anything but the tail a part begins with.
 *
 * - A part is streamed straight into UploadPart with its ContentLength known (the part size,
 *   or what is left of the upload), as the body arrives: receiving and sending overlap.
 * - A part starts streaming once `streamAfter` bytes of it have arrived in this PATCH
 *   (a small chunk never opens an UploadPart it cannot fill). Until the part is fully
 *   received its new bytes are also kept (at most one part per upload): if the body ends
 *   before the part is full, the UploadPart is aborted and the kept bytes are written once
 *   as a tail object (or as a part of their own when they reach S3's minimum).
 * - A part that begins with a tail (bytes earlier PATCHes left) starts only when it is
 *   full: its tail is downloaded once, into that part, and its objects are deleted after
 *   S3 acknowledged the part.
 * - At most `partsInFlight` UploadParts per upload are in flight: one being received, the
 *   others being acknowledged (RGW answers a part 50-100 ms after its last byte). A part
 *   keeps its bytes only until it is fully received, so a part waiting for its answer holds
 *   no more than what its body has not sent yet; once S3 acknowledged it, the memory of its
 *   chunks is freed at once (the body's chunks are this writer's: see writeParts).
 * - The bytes that complete the upload go to S3 only once the body has ended, after the
 *   fenced stream's last lock check (other parts end on a multiple of the part size, whose
 *   crossing the fenced stream checks before it passes the bytes).
 * - An upload that fits one part (the part starting at byte 0 is the whole upload) is not a
 *   multipart upload at all: that part goes to the object `<id>` in one PutObject, and there
 *   is nothing to complete. The multipart upload is created (`PartTarget.multipart`) only
 *   when a part must be uploaded.
 * A body that fails (a lost lock, a broken connection) writes nothing more: the part being
 * received is aborted, no tail is written.
 */
import type { CompletedPart, S3 } from '@aws-sdk/client-s3';
import { PassThrough, type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { freeBuffer } from './free-buffer.ts';
import { asBuffer, type S3Tails, type Tail } from './s3-tail.ts';

export interface PartTarget {
  client: S3;
  bucket: string;
  /** The upload's id: the object key of its multipart upload. */
  id: string;
  /** The upload's multipart upload id, created on the first call when it has none yet (a part needs it). */
  multipart: () => Promise<string>;
  tails: S3Tails;
  /** Tagging for tail objects (expiration tags), as @tus/s3-store tags its `.part`. */
  tagging?: string;
}

export interface PartPlan {
  /** The upload's length; undefined while deferred. */
  size: number | undefined;
  /** The acknowledged parts, in order, and the bytes they hold. */
  parts: CompletedPart[];
  partsEnd: number;
  tail: Tail;
  /** Bytes of a full part, and S3's minimum for a part that is not the last. */
  partSize: number;
  minPartSize: number;
  streamAfter: number;
  /** UploadParts of this body in flight at most: the one being received and those S3 has not acknowledged yet. */
  partsInFlight: number;
}

export interface PartsWritten {
  /** The upload's offset after this body: parts plus tail. */
  offset: number;
  parts: CompletedPart[];
  /** Every byte of the upload is in parts (or in the object): the upload can be completed. */
  complete: boolean;
  /** The upload went into the object `<id>` in one PutObject (it fits one part): nothing to complete. */
  whole: boolean;
}

/** The body's bytes a part is being received from, and where they go. */
interface OpenPart {
  number: number;
  start: number;
  length: number;
  /** Tail bytes at the part's start (already in S3). */
  tail: Tail;
  /** New bytes of this part received so far, kept until the part is full. */
  kept: Buffer[];
  /** How many of `kept` went into the UploadPart's body, and their bytes. */
  fed: number;
  fedBytes: number;
  received: number;
  /** The part is the whole upload from its first byte: it goes to the object `<id>` in one PutObject. */
  whole: boolean;
  upload?: Streaming;
}

interface Streaming {
  body: PassThrough;
  abort: AbortController;
  acknowledged: Promise<CompletedPart>;
}

const BODY_HIGH_WATER_MARK = 256 * 1024;

class PartSink extends Writable {
  private readonly parts: CompletedPart[];
  /** The number the next part opened gets (parts are acknowledged later). */
  private nextNumber: number;
  private open: OpenPart;
  /** The last fully received part's acknowledgement, settled after every part before it. */
  private pending: Promise<CompletedPart> | undefined;
  /** Fully received parts whose acknowledgement this body has not waited for yet, oldest first. */
  private readonly unsettled: Promise<CompletedPart>[] = [];
  private failure: Error | undefined;
  /** The object `<id>` was written whole (PutObject) and acknowledged. */
  private wroteWhole = false;
  result: PartsWritten | undefined;

  constructor(
    private readonly target: PartTarget,
    private readonly plan: PartPlan,
  ) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK });
    this.parts = [...plan.parts];
    this.nextNumber = (plan.parts.at(-1)?.PartNumber ?? 0) + 1;
    this.open = this.partAt(plan.partsEnd, plan.tail);
  }

  private partAt(start: number, tail: Tail): OpenPart {
    const { size, partSize } = this.plan;
    const length = size === undefined ? partSize : Math.min(partSize, size - start);
    // the first part of an upload that fits one part, with no part written before it
    const whole = start === 0 && size !== undefined && length === size && this.parts.length === 0;
    return { number: this.nextNumber, start, length, tail, kept: [], fed: 0, fedBytes: 0, received: 0, whole };
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let bytes: Buffer;
    try {
      bytes = asBuffer(chunk);
    } catch (error) {
      callback(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.accept(bytes).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.settle().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.open.upload?.abort.abort(error ?? new Error('the body ended early'));
    callback(error);
  }

  /** After a failure: every UploadPart of this body has settled (none is left running once the lock is released). */
  async quiesce(): Promise<void> {
    this.open.upload?.abort.abort(new Error('the body failed'));
    await this.open.upload?.acknowledged.catch(() => {});
    await this.pending?.catch(() => {});
  }

  private filled(part: OpenPart): number {
    return part.tail.bytes + part.received;
  }

  private async accept(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0) {
      if (this.failure) throw this.failure;
      const part = this.open;
      const room = part.length - this.filled(part);
      if (room <= 0) throw new Error(`upload ${this.target.id}: more bytes than its length`);
      const piece = rest.length > room ? rest.subarray(0, room) : rest;
      rest = rest.subarray(piece.length);
      part.kept.push(piece);
      part.received += piece.length;
      // the bytes that complete the upload wait for the body's end: its lock is checked there
      if (this.completesUpload(part)) continue;
      // a streaming part is sent in bursts of `streamAfter` bytes, not chunk by chunk
      if (part.upload) {
        if (part.received - part.fedBytes >= this.plan.streamAfter) await this.feedKept(part);
      } else if (this.shouldStream(part)) await this.stream(part);
      if (this.filled(part) === part.length) await this.close(part);
    }
  }

  private completesUpload(part: OpenPart): boolean {
    return this.plan.size !== undefined && part.start + this.filled(part) === this.plan.size;
  }

  /** Without a tail, once `streamAfter` bytes came; with one, once the part is full (its tail is read once). */
  private shouldStream(part: OpenPart): boolean {
    if (part.tail.bytes > 0) return this.filled(part) === part.length;
    return part.received >= Math.min(this.plan.streamAfter, part.length);
  }

  private async stream(part: OpenPart): Promise<void> {
    const uploadId = part.whole ? undefined : await this.target.multipart();
    if (this.failure || this.destroyed) throw this.failure ?? new Error('the body failed');
    this.nextNumber = part.number + 1;
    const { client, bucket, id, tails } = this.target;
    // a whole burst fits, so that it reaches the socket in one write (the HTTP client corks it per tick)
    const body = new PassThrough({ highWaterMark: Math.max(BODY_HIGH_WATER_MARK, this.plan.streamAfter) });
    const abort = new AbortController();
    // An upload that fits one part needs no multipart upload: one PutObject of the object
    // itself, which S3 makes visible only once every byte came (an aborted one leaves nothing).
    const acknowledged = uploadId === undefined
      ? client
          .putObject({ Bucket: bucket, Key: id, Body: body, ContentLength: part.length }, { abortSignal: abort.signal })
          .then(({ ETag }) => ({ ETag, PartNumber: part.number }))
      : client
          .uploadPart(
            { Bucket: bucket, Key: id, UploadId: uploadId, PartNumber: part.number, Body: body, ContentLength: part.length },
            { abortSignal: abort.signal },
          )
          .then(({ ETag }) => ({ ETag, PartNumber: part.number }));
    const upload: Streaming = { body, abort, acknowledged };
    part.upload = upload;
    acknowledged.catch((error: unknown) => {
      if (!abort.signal.aborted) this.fail(error);
    });
    if (part.tail.bytes > 0) await this.pump(upload, tails.read(part.tail));
    await this.feedKept(part);
  }

  /** Feeds what the body has not got yet of the kept bytes. */
  private async feedKept(part: OpenPart): Promise<void> {
    const { upload } = part;
    if (!upload) return;
    while (part.fed < part.kept.length) {
      const piece = part.kept[part.fed];
      part.fed += 1;
      if (!piece) continue;
      part.fedBytes += piece.length;
      await this.feed(upload, piece);
    }
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    this.open.upload?.body.destroy(this.failure);
    this.open.upload?.abort.abort(this.failure);
  }

  /** Writes into the part's body, waiting when it is full (backpressure from S3). */
  private async feed(upload: Streaming, piece: Buffer): Promise<void> {
    if (upload.body.write(piece)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        upload.body.off('drain', onDrain);
        upload.body.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.failure ?? new Error('the part upload closed'));
      upload.body.on('drain', onDrain);
      upload.body.on('close', onClose);
    });
  }

  private async pump(upload: Streaming, source: Readable): Promise<void> {
    for await (const chunk of source) await this.feed(upload, asBuffer(chunk));
  }

  /** The part is fully received: end its body, wait until fewer than `partsInFlight` are unanswered, and open the next. */
  private async close(part: OpenPart): Promise<void> {
    if (!part.upload) await this.stream(part);
    else await this.feedKept(part);
    const upload = part.upload;
    if (!upload) throw new Error('unreachable: a full part is streaming');
    upload.body.end();
    const sent = part.kept;
    part.kept = []; // fully received: an early end can no longer need them
    part.fed = 0;
    part.fedBytes = 0;
    const before = this.pending;
    this.pending = upload.acknowledged.then(async (done) => {
      // S3 answered, so it has every byte: the chunks' memory is freed now, not when V8 next
      // collects them (kept for a whole part, up to 8 MiB an upload, they kept mark-compacts
      // coming). Only a chunk that is all of its ArrayBuffer (free-buffer.ts).
      for (const chunk of sent) freeBuffer(chunk);
      if (before) await before;
      if (part.whole) this.wroteWhole = true;
      else this.parts.push(done);
      // the tail's bytes are in an acknowledged part now: its objects can go
      await this.target.tails.delete([...part.tail.objects, ...part.tail.stale]).catch(() => {});
      return done;
    });
    this.pending.catch(() => {});
    this.unsettled.push(this.pending);
    // the part about to open is in flight too: at most `partsInFlight` of them
    while (this.unsettled.length > this.plan.partsInFlight - 1) await this.unsettled.shift();
    this.open = this.partAt(part.start + part.length, { start: part.start + part.length, bytes: 0, objects: [], stale: [] });
  }

  /** The body ended: keep what it left of an open part (a tail object, or a part of its own). */
  private async settle(): Promise<void> {
    // the upload's last part (its last bytes held back until now), or a tail that fills it by
    // itself (the length was declared after the bytes came)
    if (this.open.length > 0 && this.filled(this.open) === this.open.length) await this.close(this.open);
    const part = this.open;
    if (part.upload) {
      part.upload.abort.abort(new Error('the body ended before the part was full'));
      part.upload.body.destroy();
      await part.upload.acknowledged.catch(() => {});
      part.upload = undefined;
    }
    if (this.pending) await this.pending;
    if (this.failure) throw this.failure;
    let offset = this.filled(part) + part.start;
    if (part.received > 0) {
      if (part.tail.bytes === 0 && part.received >= this.plan.minPartSize) {
        await this.uploadKept(part);
        offset = part.start + part.received;
      } else {
        const { id, tails, tagging } = this.target;
        await tails.append(id, part.start + part.tail.bytes, part.tail.bytes === 0, part.kept, part.received, tagging);
      }
    }
    const { size } = this.plan;
    const complete = size !== undefined && offset === size && part.received === 0 && part.tail.bytes === 0;
    this.result = { offset, parts: this.parts, complete, whole: this.wroteWhole };
  }

  /** Kept bytes of at least S3's minimum become a (shorter) part instead of a tail. */
  private async uploadKept(part: OpenPart): Promise<void> {
    this.nextNumber = part.number + 1;
    const { client, bucket, id } = this.target;
    const { ETag } = await client.uploadPart({
      Bucket: bucket,
      Key: id,
      UploadId: await this.target.multipart(),
      PartNumber: part.number,
      Body: Buffer.concat(part.kept, part.received),
      ContentLength: part.received,
    });
    this.parts.push({ ETag, PartNumber: part.number });
    part.kept = [];
  }
}

/**
 * Writes `source` into the upload's parts and tail; the caller completes the upload when
 * `complete`. The chunks of `source` become this writer's: one that is all of its
 * ArrayBuffer is freed once S3 acknowledged its part, so the caller must not read it after.
 */
export async function writeParts(source: Readable, target: PartTarget, plan: PartPlan): Promise<PartsWritten> {
  const sink = new PartSink(target, plan);
  try {
    await pipeline(source, sink);
  } catch (error) {
    await sink.quiesce();
    throw error;
  }
  if (!sink.result) throw new Error(`upload ${target.id}: the body ended without a result`);
  return sink.result;
}
