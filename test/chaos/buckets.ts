/** The run's two buckets on RGW: created (the public one world-readable, as a CDN origin would be), counted at the end, removed. */
import {
  DeleteBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createBuckets, emptyBucket } from '../support/services.ts';

export interface Buckets {
  staging: string;
  public: string;
}

/** Creates both; answers whether the public bucket could be made world-readable (else artifacts are read with GetObject). */
export async function createRunBuckets(s3: S3Client, buckets: Buckets): Promise<boolean> {
  await createBuckets(s3, buckets.staging, buckets.public);
  const policy = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${buckets.public}/*` }],
  };
  try {
    await s3.send(new PutBucketPolicyCommand({ Bucket: buckets.public, Policy: JSON.stringify(policy) }));
    return true;
  } catch {
    return false;
  }
}

export interface Inventory {
  publicObjects: number;
  stagingObjects: string[];
  stagingMultipart: string[];
}

async function keys(s3: S3Client, bucket: string): Promise<string[]> {
  const found: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key) found.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

export async function inventory(s3: S3Client, buckets: Buckets): Promise<Inventory> {
  const multipart = await s3.send(new ListMultipartUploadsCommand({ Bucket: buckets.staging }));
  return {
    publicObjects: (await keys(s3, buckets.public)).length,
    stagingObjects: await keys(s3, buckets.staging),
    stagingMultipart: (multipart.Uploads ?? []).map((u) => u.Key ?? '?'),
  };
}

export async function removeRunBuckets(s3: S3Client, buckets: Buckets): Promise<void> {
  for (const bucket of [buckets.staging, buckets.public]) {
    await emptyBucket(s3, bucket);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  }
}
