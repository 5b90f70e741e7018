/** The public store in an S3 bucket: loaded only when PUBLIC_STORE=s3. */
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { isArtifactKey } from './keys.ts';
import type { PublicStore } from './public-store.ts';
import { countRequests, type S3RequestCounter } from './s3-client.ts';

export interface S3PublicStoreOptions {
  client: S3ClientConfig;
  bucket: string;
  keyPrefix: string;
  cacheControl: string;
  /** Told of every request to S3 (metrics). */
  countRequest?: S3RequestCounter;
}

/** Artifacts as objects in a bucket (served by a CDN or the bucket's own origin). A PUT is atomic in S3. */
export class S3PublicStore implements PublicStore {
  private readonly client: S3Client;

  constructor(private readonly options: S3PublicStoreOptions) {
    this.client = new S3Client(options.client);
    if (options.countRequest) countRequests(this.client, options.countRequest);
  }

  private objectKey(key: string): string {
    if (!isArtifactKey(key)) throw new Error(`not an artifact key: ${key}`);
    return `${this.options.keyPrefix}${key}`;
  }

  async put(key: string, data: Buffer, contentType: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: this.objectKey(key),
        Body: data,
        ContentLength: data.length,
        ContentType: contentType,
        CacheControl: this.options.cacheControl,
        ContentDisposition: 'inline',
      }),
    );
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(key) }));
  }

  async list(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: this.options.keyPrefix, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(this.options.keyPrefix.length);
        if (key && isArtifactKey(key)) keys.push(key);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }
}
