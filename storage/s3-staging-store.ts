/**
 * The S3 staging store: @tus/s3-store's S3Store (its `.info` object, its multipart upload,
 * its metadata cache, deferred length, expiry) with its creation and write path replaced.
 * - create: the `.info`, and the multipart upload only for an upload known to need parts
 *   (longer than one part). An upload that fits one part never has one: it is written as
 *   the object `<id>` in one PutObject (s3-part-writer.ts). One whose length is deferred
 *   gets it when its first part must be uploaded, its id then written into the `.info`.
 *   An upload is complete when the object `<id>` exists.
 *   Uploads @tus/s3-store staged (a multipart upload created with the `.info`) are read and
 *   continued as they are.
 * - write: s3-part-writer.ts streams each part straight into UploadPart (no temporary
 *   file) and keeps what does not fill a part as tail objects (s3-tail.ts), each written
 *   once, read back once, deleted only after the part that holds their bytes is in S3;
 *   @tus/s3-store downloaded, deleted and re-uploaded its `.part` on every PATCH.
 * - getUpload: the offset is the parts plus the tail (a `.part` @tus/s3-store left counts).
 *   `describe` is the upload without its offset: the `.info` alone, no listing (the gated
 *   store knows the offset of an upload that nothing was staged for yet).
 * And three corrections of S3Store 2.0.7:
 * - a deferred-length upload is sized by our maximum, not by S3's 5 TiB (whose part size
 *   is 525 MiB);
 * - `remove` deletes everything of an upload in one DeleteObjects (the object, its `.info`,
 *   its tail): S3Store stops at the abort of an already completed multipart upload
 *   (NoSuchUpload) before deleting the object and its `.info`, and never deletes the tail;
 * - a deferred length, once declared, reaches a shared metadata cache: S3Store updates
 *   `.info` and relies on its in-memory cache holding the same object, so with a Redis
 *   cache the declared size was lost and the last PATCH never completed the upload.
 */
import type { CompletedPart } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { S3Store } from '@tus/s3-store';
import { ERRORS, TUS_RESUMABLE, Upload } from '@tus/utils';
import type { MetadataValue } from '@tus/s3-store';
import { LeaseLostError } from './fenced-stream.ts';
import { writeParts } from './s3-part-writer.ts';
import { type HeldLease, type Listing, ListingMemo } from './s3-listing-memo.ts';
import { isMissingObject, isMissingUpload, S3Tails } from './s3-tail.ts';
import { TailCache } from './s3-tail-cache.ts';
import { countRequests, type S3RequestCounter } from './s3-client.ts';
import { parseCached, parseInfo } from './s3-info.ts';
import { UploadRecordError } from './upload-record.ts';
import { lockKey } from './upload-locker.ts';

export interface StagingS3StoreOptions {
  /** S3Store's own options. */
  s3: ConstructorParameters<typeof S3Store>[0];
  /** Bounds the part size of a deferred length (S3Store assumes 5 TiB otherwise). */
  maxUploadBytes: number;
  /** A part starts streaming into UploadPart once this many of its bytes came in one PATCH. */
  streamAfterBytes: number;
  /** UploadParts of one upload in flight at most. */
  partsInFlight: number;
  /** Bounds of the maps that save S3 round trips: listings under a held lock. */
  bounds: { heldListings: number };
  /** Tail bytes this process wrote, kept for the part they begin (for the whole process). */
  tailCacheBytes: number;
  /** The lease this process holds on an upload's lock: one S3 listing then serves a whole PATCH. */
  heldLease?: HeldLease;
  /** Whether this process still holds upload `id`'s lock, asked of its authority (UploadLocker.confirms); none: not checked. */
  confirmLock?: (id: string) => Promise<boolean>;
  /** Told of every request to S3 (metrics). */
  countRequest?: S3RequestCounter;
}

/** The multipart upload's id in an upload's `.info`; none: not created yet (or S3 dropped the empty value). */
const uploadIdOf = (metadata: MetadataValue): string | undefined => metadata['upload-id'] || undefined;

export class StagingS3Store extends S3Store {
  private readonly tails: S3Tails;
  private readonly streamAfterBytes: number;
  private readonly partsInFlight: number;
  private readonly listings: ListingMemo;
  private readonly confirmLock: ((id: string) => Promise<boolean>) | undefined;

  constructor(options: StagingS3StoreOptions) {
    super(options.s3);
    if (options.countRequest) countRequests(this.client, options.countRequest);
    Object.defineProperty(this, 'maxUploadSize', { value: options.maxUploadBytes });
    this.tails = new S3Tails(this.client, this.bucket, new TailCache(options.tailCacheBytes));
    this.streamAfterBytes = options.streamAfterBytes;
    this.partsInFlight = options.partsInFlight;
    this.listings = new ListingMemo(options.heldLease, options.bounds.heldListings);
    this.confirmLock = options.confirmLock;
  }

  /** The upload's parts and tail objects, listed together (or as listed earlier under the same lock). */
  private async listing(id: string): Promise<Listing> {
    const known = this.listings.get(id);
    if (known) return known;
    const uploadId = uploadIdOf(await this.getMetadata(id));
    const [parts, staged] = await Promise.all([uploadId ? this.retrieveParts(id) : [], this.tails.list(id)]);
    const listing = { parts, objects: staged.tail, whole: staged.whole };
    this.listings.set(id, listing);
    return listing;
  }

  /**
   * The `.info`, with the multipart upload's id when the upload is known to need parts (its
   * length is more than one part): created now, it is not on the first PATCH's path. An
   * upload that fits one part, or whose length is deferred, gets none yet.
   */
  override async create(upload: Upload): Promise<Upload> {
    upload.creation_date = new Date().toISOString();
    upload.storage = { type: 's3', path: upload.id, bucket: this.bucket };
    const { size } = upload;
    const needsParts = size !== undefined && size > this.calcOptimalPartSize(size);
    await this.saveMetadata(upload, needsParts ? await this.createMultipart(upload.id) : '');
    return upload;
  }

  private async createMultipart(id: string): Promise<string> {
    const { UploadId } = await this.client.createMultipartUpload({ Bucket: this.bucket, Key: id, Metadata: { 'tus-version': TUS_RESUMABLE } });
    if (!UploadId) throw new Error(`upload ${id}: S3 created a multipart upload without an UploadId`);
    return UploadId;
  }

  /**
   * Creates the multipart upload of an upload that has none yet and records its id in the
   * `.info`, under the upload's lock. The lock is confirmed with its authority (Redis)
   * before the `.info` is written: a holder that lost it must not replace the id another
   * holder wrote, and the fenced body checks Redis only at its part boundaries. Such a
   * holder aborts the multipart upload it just created. One left without its `.info` by a
   * crash has no parts worth keeping: S3's lifecycle rule for incomplete multipart uploads
   * removes it (README, "S3"). Between the confirmation and the `.info` write there is one
   * round trip S3 cannot fence (no conditional write on RGW here).
   */
  private async startMultipart(metadata: MetadataValue): Promise<string> {
    const { id } = metadata.file;
    const UploadId = await this.createMultipart(id);
    // lost, or not confirmed (Redis unreachable): nobody will record it; an abort that fails leaves it to the lifecycle rule
    const abandon = () => this.client.abortMultipartUpload({ Bucket: this.bucket, Key: id, UploadId }).catch(() => {});
    const confirmed = await (this.confirmLock?.(id) ?? Promise.resolve(true)).catch(async (error: unknown) => {
      await abandon();
      throw error;
    });
    if (!confirmed) {
      await abandon();
      throw new LeaseLostError(lockKey(id));
    }
    await this.saveMetadata(metadata.file, UploadId);
    return UploadId;
  }

  /** A request body into parts and tail (s3-part-writer.ts); its chunks become the store's (freed once S3 has them). */
  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const metadata = await this.getMetadata(id);
    const { parts: listed, objects, whole } = await this.listing(id);
    this.listings.forget(id); // what this write does is not in it
    if (whole !== undefined) throw ERRORS.INVALID_OFFSET; // complete already
    let multipart: Promise<string> | undefined;
    const known = uploadIdOf(metadata);
    const multipartId = () => (multipart ??= known ? Promise.resolve(known) : this.startMultipart(metadata));
    const parts: CompletedPart[] = listed.map(({ ETag, PartNumber }) => ({ ETag, PartNumber }));
    const partsEnd = listed.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    let tail = this.tails.chain(objects, partsEnd);
    if (partsEnd + tail.bytes !== offset) throw ERRORS.INVALID_OFFSET;
    if (tail.objects.some((object) => object.unstamped)) tail = await this.tails.stamp(tail);
    const { size } = metadata.file;
    const written = await writeParts(
      src,
      { client: this.client, bucket: this.bucket, id, multipart: multipartId, tails: this.tails, tagging: this.useCompleteTag('false') },
      { size, parts, partsEnd, tail, partSize: this.calcOptimalPartSize(size), minPartSize: this.minPartSize, streamAfter: this.streamAfterBytes, partsInFlight: this.partsInFlight },
    );
    if (written.complete) {
      if (!written.whole) await this.finishMultipartUpload({ ...metadata, 'upload-id': await multipartId() }, written.parts);
      // No rewrite of the `.info` with `Tus-Completed=true` (S3Store's completeMetadata): a
      // complete upload is finished and all its objects removed; until then only its object
      // is read, which no lifecycle rule of ours expires (README, "S3"). Its cache entry stays
      // until `remove` (the finish's), which then needs no GetObject of the `.info`.
    }
    return written.offset;
  }

  /**
   * The `.info` is written (at creation, or with a declared length), and what it holds goes
   * into the metadata cache at once: S3Store fills the cache only when it reads the `.info`
   * back, so the getUpload @tus/server makes right after creating (for Upload-Expires), and
   * every PATCH after it, started with a GetObject of the object just written. The entry is
   * set after S3 acknowledged the `.info`, with what getMetadata would have parsed from it.
   */
  protected override async saveMetadata(upload: Upload, uploadId: string): Promise<void> {
    // S3Store's saveMetadata, but without an `upload-id` while there is no multipart upload
    await this.client.putObject({
      Bucket: this.bucket,
      Key: this.infoKey(upload.id),
      Body: JSON.stringify(upload),
      Tagging: this.useCompleteTag('false'),
      Metadata: { 'tus-version': TUS_RESUMABLE, ...(uploadId ? { 'upload-id': uploadId } : {}) },
    });
    const { id, size, offset, metadata, creation_date, storage } = upload;
    const file = new Upload({ id, size: Number.isFinite(size) ? size : undefined, offset, metadata, creation_date, storage });
    await this.cache.set(id, { 'tus-version': TUS_RESUMABLE, 'upload-id': uploadId, file });
  }

  /**
   * The upload as its `.info` records it (from the metadata cache when it is there), with
   * offset 0: what is staged is not listed. For a caller that knows nothing was staged.
   */
  async describe(id: string): Promise<Upload> {
    const { file } = await this.metadataOf(id);
    return new Upload({ ...file, offset: 0, size: file.size, storage: file.storage });
  }

  /** The upload's `.info`, from the metadata cache when it is there, parsed either way (s3-info.ts). */
  protected override async getMetadata(id: string): Promise<MetadataValue> {
    const cached: unknown = await this.cache.get(id);
    if (cached) return parseCached(id, cached);
    const { Metadata, Body } = await this.client.getObject({ Bucket: this.bucket, Key: this.infoKey(id) });
    if (!Body) throw new Error(`upload ${id}: its .info has no body`);
    const value = parseInfo(id, await Body.transformToString(), Metadata);
    await this.cache.set(id, value);
    return value;
  }

  /** The upload's `.info`; only an `.info` S3 says is not there is "no such upload" (an outage is an error, never a 404). */
  private async metadataOf(id: string): Promise<MetadataValue> {
    try {
      return await this.getMetadata(id);
    } catch (error) {
      if (isMissingObject(error)) throw ERRORS.FILE_NOT_FOUND;
      throw error;
    }
  }

  override async getUpload(id: string): Promise<Upload> {
    const { file } = await this.metadataOf(id);
    let listed: Listing;
    try {
      listed = await this.listing(id);
    } catch (error) {
      // completed (or aborted): the `.info` is there, so every byte is in the object
      if (isMissingUpload(error)) return new Upload({ ...file, offset: file.size ?? 0, size: file.size, metadata: file.metadata, storage: file.storage });
      throw error;
    }
    if (listed.whole !== undefined) {
      // the object exists: every byte is in it
      if (file.size !== undefined && listed.whole !== file.size) throw new Error(`upload ${id}: its object holds ${listed.whole} bytes, its length is ${file.size}`);
      return new Upload({ ...file, offset: listed.whole, size: file.size, storage: file.storage });
    }
    const partsEnd = listed.parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    const tail = this.tails.chain(listed.objects, partsEnd);
    return new Upload({ ...file, offset: partsEnd + tail.bytes, size: file.size, storage: file.storage });
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    this.listings.forget(id);
    await super.declareUploadLength(id, length);
    await this.clearCache(id);
  }

  override async remove(id: string): Promise<void> {
    this.listings.forget(id);
    let uploadId: string | undefined;
    try {
      uploadId = uploadIdOf(await this.getMetadata(id));
    } catch (error) {
      // no `.info`, or one that is not an upload record: delete whatever else is left of the
      // upload; anything else (an outage) is thrown, or its multipart upload would be left open
      if (!isMissingObject(error) && !(error instanceof UploadRecordError)) throw error;
    }
    const abort = async () => {
      if (!uploadId) return;
      await this.client.abortMultipartUpload({ Bucket: this.bucket, Key: id, UploadId: uploadId }).catch((error: unknown) => {
        if (!isMissingUpload(error)) throw error; // completed (or aborted already)
      });
    };
    const [staged] = await Promise.all([this.tails.list(id), abort()]);
    await this.tails.delete(staged.tail, [id, this.infoKey(id)]);
    await this.clearCache(id);
  }

}
