/**
 * S3 that cannot be reached (a TCP proxy in front of the suite's Ceph RGW, cut and
 * restored): an upload's requests fail closed with 503 E_STORAGE_UNAVAILABLE, never 404
 * (which tells tus-js-client and Uppy to forget the upload and start again from byte 0),
 * and the upload resumes where it was once S3 is back; a DELETE of an artifact in the
 * public store is refused the same way and keeps it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { idOf } from '../support/faults.ts';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch, request, TUS } from '../support/http.ts';
import { startServer, tempDir, type RunningServer } from '../support/server.ts';
import { createBuckets, emptyBucket, s3Client, s3Env } from '../support/services.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { upload } from '../support/tus.ts';

const services = inject('services');
const MiB = 1024 * 1024;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const bucket = `s3outage-${Date.now().toString(36)}`;
const s3 = s3Client(services);
let proxy: TcpProxy;
let server: RunningServer | undefined;
const dataDir = tempDir();
const publicDataDir = tempDir();

beforeAll(async () => {
  await createBuckets(s3, bucket);
  proxy = await startTcpProxy(Number(new URL(services.s3.endpoint).port));
});

afterAll(async () => {
  await server?.stop();
  await proxy.close();
  await emptyBucket(s3, bucket);
  for (const dir of [dataDir, publicDataDir]) fs.rmSync(dir, { recursive: true, force: true });
});

/** The suite's services with S3 reached through the proxy. */
const viaProxy = () => ({ ...services, s3: { ...services.s3, endpoint: `http://127.0.0.1:${proxy.port}` } });

interface ErrorJson {
  error: { code: string; message: string };
}

describe('S3 unreachable', () => {
  it('HEAD, PATCH and POST answer 503 E_STORAGE_UNAVAILABLE, never 404; once S3 is back the upload resumes where it was', async () => {
    const env = s3Env(viaProxy(), { staging: bucket }, false);
    server = await startServer({ dataDir, env });
    const image = Buffer.concat([await fixtures.jpeg(640, 480), fixtures.randomBytesOf(7 * MiB)]);
    const url = await create(server.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 6 * MiB))).status).toBe(204); // one 5 MiB part and a tail

    // a new process (nothing of the upload cached), S3 gone
    const { port } = server;
    await server.stop();
    await proxy.cut();
    server = await startServer({ dataDir, env, port });

    expect((await head(url)).status).toBe(503); // a HEAD response has no body
    const refused = await patch(url, 6 * MiB, image.subarray(6 * MiB));
    expect(refused.status).toBe(503);
    expect(refused.json<ErrorJson>().error).toMatchObject({ code: 'E_STORAGE_UNAVAILABLE', message: expect.stringMatching(/storage service \(S3\) cannot be reached/) });
    expect(refused.body).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
    const creation = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } });
    expect([creation.status, creation.json<ErrorJson>().error.code, creation.headers.location]).toEqual([503, 'E_STORAGE_UNAVAILABLE', undefined]);
    // the refused creation left no state behind: no record, nothing counted as an active upload
    const records = (dir: string): string[] => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
    expect(records(path.join(dataDir, 'state')).filter((name) => !name.startsWith(idOf(url)))).toEqual([]);
    expect(server.logs.some((line) => line.msg === 'store unavailable: the client is told to retry' && line.code === 'E_STORAGE_UNAVAILABLE')).toBe(true);

    await proxy.restore();
    const back = await head(url);
    expect(back.status).toBe(200);
    expect(back.headers['upload-offset']).toBe(String(6 * MiB));

    // the real client resumes the same upload and gets the artifact
    const outcome = await upload(server.endpoint, image, { uploadUrl: url });
    expect(outcome).toMatchObject({ ok: true, url, status: 200 });
    expect(outcome.body).toMatchObject({ format: 'webp', width: 640, height: 480, original: { bytes: image.length, sha256: sha(image) } });
  });

  it('DELETE /uploads/:id of a published artifact, the public store unreachable: 503 E_STORAGE_UNAVAILABLE with Retry-After, the artifact kept; once S3 is back, 204', async () => {
    await proxy.restore(); // whatever the test before left
    await server?.stop();
    server = await startServer({ dataDir: publicDataDir, env: s3Env(viaProxy(), { public: bucket }, false) });
    const image = await fixtures.jpeg(640, 480);
    const outcome = await upload(server.endpoint, image);
    expect(outcome).toMatchObject({ ok: true, status: 200 });
    const { id, url } = outcome.body as { id: string; url: string };
    const status = `${server.url}/uploads/${id}`;
    const artifact = () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `media/${url.split('/media/')[1] ?? ''}` })).then(() => true, () => false);
    expect(await artifact()).toBe(true);

    await proxy.cut();
    const refused = await request(status, { method: 'DELETE' });
    expect([refused.status, refused.json<ErrorJson>().error.code, refused.headers['retry-after']]).toEqual([503, 'E_STORAGE_UNAVAILABLE', '5']);
    expect((await request(status)).json()).toMatchObject({ state: 'done', id });
    expect(await artifact()).toBe(true);

    await proxy.restore();
    expect((await request(status, { method: 'DELETE' })).status).toBe(204);
    expect((await request(status)).json()).toMatchObject({ state: 'deleted' });
    expect(await artifact()).toBe(false);
  });
});
