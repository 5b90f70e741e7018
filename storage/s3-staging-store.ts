/**
 * The S3 staging store: @tus/s3-store's S3Store (its `.info` object, its multipart upload,
 * its metadata cache, creation, deferred length, expiry) with its write path replaced.
 * - write: s3-part-writer.ts streams each part straight into UploadPart (no temporary
 *   file) and keeps what does not fill a part as tail objects (s3-tail.ts), each written
 *   once, read back once, deleted only after the part that holds their bytes is in S3;
 *   @tus/s3-store downloaded, deleted and re-uploaded its `.part` on every PATCH.
 * - getUpload: the offset is the parts plus the tail (a `.part` @tus/s3-store left counts).
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
import { writeParts } from './s3-part-writer.ts';
import { type HeldLease, type Listing, ListingMemo } from './s3-listing-memo.ts';
import { isMissingUpload, S3Tails } from './s3-tail.ts';
import { TailCache } from './s3-tail-cache.ts';

export interface StagingS3StoreOptions {
  /** S3Store's own options. */
  s3: ConstructorParameters<typeof S3Store>[0];
  /** Bounds the part size of a deferred length (S3Store assumes 5 TiB otherwise). */
  maxUploadBytes: number;
  /** A part starts streaming into UploadPart once this many of its bytes came in one PATCH. */
  streamAfterBytes: number;
  /** Tail bytes this process wrote, kept for the part they begin (for the whole process). */
  tailCacheBytes: number;
  /** The lease this process holds on an upload's lock: one S3 listing then serves a whole PATCH. */
  heldLease?: HeldLease;
}

export class StagingS3Store extends S3Store {
  private readonly tails: S3Tails;
  private readonly streamAfterBytes: number;
  private readonly listings: ListingMemo;

  constructor(options: StagingS3StoreOptions) {
    super(options.s3);
    Object.defineProperty(this, 'maxUploadSize', { value: options.maxUploadBytes });
    this.tails = new S3Tails(this.client, this.bucket, new TailCache(options.tailCacheBytes));
    this.streamAfterBytes = options.streamAfterBytes;
    this.listings = new ListingMemo(options.heldLease);
  }

  /** The upload's parts and tail objects, listed together (or as listed earlier under the same lock). */
  private async listing(id: string): Promise<Listing> {
    const known = this.listings.get(id);
    if (known) return known;
    const [parts, objects] = await Promise.all([this.retrieveParts(id), this.tails.list(id)]);
    const listing = { parts, objects };
    this.listings.set(id, listing);
    return listing;
  }

  override async write(src: Readable, id: string, offset: number): Promise<number> {
    const metadata = await this.getMetadata(id);
    const { parts: listed, objects } = await this.listing(id);
    this.listings.forget(id); // what this write does is not in it
    const parts: CompletedPart[] = listed.map(({ ETag, PartNumber }) => ({ ETag, PartNumber }));
    const partsEnd = listed.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    let tail = this.tails.chain(objects, partsEnd);
    if (partsEnd + tail.bytes !== offset) throw ERRORS.INVALID_OFFSET;
    if (tail.objects.some((object) => object.unstamped)) tail = await this.tails.stamp(tail);
    const { size } = metadata.file;
    const written = await writeParts(
      src,
      { client: this.client, bucket: this.bucket, id, uploadId: metadata['upload-id'], tails: this.tails, tagging: this.useCompleteTag('false') },
      { size, parts, partsEnd, tail, partSize: this.calcOptimalPartSize(size), minPartSize: this.minPartSize, streamAfter: this.streamAfterBytes },
    );
    if (written.complete) {
      await this.finishMultipartUpload(metadata, written.parts);
      await this.completeMetadata(metadata.file);
      await this.clearCache(id);
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
    await super.saveMetadata(upload, uploadId);
    const { id, size, offset, metadata, creation_date, storage } = upload;
    const file = new Upload({ id, size: Number.isFinite(size) ? size : undefined, offset, metadata, creation_date, storage });
    await this.cache.set(id, { 'tus-version': TUS_RESUMABLE, 'upload-id': uploadId, file });
  }

  override async getUpload(id: string): Promise<Upload> {
    let metadata: Awaited<ReturnType<S3Store['getMetadata']>>;
    try {
      metadata = await this.getMetadata(id);
    } catch {
      throw ERRORS.FILE_NOT_FOUND;
    }
    const { file } = metadata;
    let listed: Listing;
    try {
      listed = await this.listing(id);
    } catch (error) {
      // completed (or aborted): the `.info` is there, so every byte is in the object
      if (isMissingUpload(error)) return new Upload({ ...file, offset: file.size ?? 0, size: file.size, metadata: file.metadata, storage: file.storage });
      throw error;
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
      uploadId = (await this.getMetadata(id))['upload-id'];
    } catch {
      // no `.info`: delete whatever else is left of the upload
    }
    const abort = async () => {
      if (!uploadId) return;
      await this.client.abortMultipartUpload({ Bucket: this.bucket, Key: id, UploadId: uploadId }).catch((error: unknown) => {
        if (!isMissingUpload(error)) throw error; // completed (or aborted already)
      });
    };
    const [tails] = await Promise.all([this.tails.list(id), abort()]);
    await this.tails.delete(tails, [id, this.infoKey(id)]);
    await this.clearCache(id);
  }

}
