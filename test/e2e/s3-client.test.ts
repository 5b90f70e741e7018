/**
 * The S3 client tusgate builds (storage/s3-client.ts) against the real RGW, through a TCP
 * proxy that counts the connections made to it. Parts and objects of several MiB reuse the
 * client's keep-alive connections: with `Expect: 100-continue` (the SDK's default for bodies
 * of 2 MB or more) the SDK sends each such request on a connection of its own, opened for it
 * and closed after it, and waits a round trip for RGW's 100 before the first byte.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { s3ClientConfig } from '../../storage/s3-client.ts';
import { z } from 'zod';
import { createBuckets, emptyBucket, s3Client } from '../support/services.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const services = inject('services');
const MiB = 1024 * 1024;
const bucket = `s3client-${Date.now().toString(36)}`;
/** The headers of the HTTP request the SDK is about to send. */
const requestHeaders = z.object({ headers: z.record(z.string(), z.string()) });

describe('the S3 client', () => {
  const admin = s3Client(services);
  let proxy: TcpProxy;

  beforeAll(async () => {
    await createBuckets(admin, bucket);
    proxy = await startTcpProxy(Number(new URL(services.s3.endpoint).port));
  });

  afterAll(async () => {
    await proxy.close();
    await emptyBucket(admin, bucket);
  });

  it('sends large objects one after another on one kept-alive connection, without waiting for a 100 Continue', async () => {
    const client = new S3Client({
      ...s3ClientConfig({ endpoint: `http://127.0.0.1:${proxy.port}`, region: services.s3.region, forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' }),
      credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
    });
    const expects: string[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        const { headers } = requestHeaders.parse(args.request);
        expects.push(headers.Expect ?? headers.expect ?? 'none');
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordExpect', priority: 'low' },
    );
    const data = [randomBytes(3 * MiB), randomBytes(6 * MiB)];
    for (const [i, body] of data.entries()) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `big-${i}`, Body: body, ContentLength: body.length }));
    }
    const back = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big-1' }));
    expect(Buffer.from(await back.Body?.transformToByteArray() ?? []).equals(data[1] ?? Buffer.alloc(0))).toBe(true);
    expect(proxy.connections()).toBe(1);
    expect(expects).toEqual(['none', 'none', 'none']);
    client.destroy();
  });
});
