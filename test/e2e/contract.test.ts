/**
 * The store contract, against every combination of staging store {file, s3} and public
 * store {file, s3}, on a real S3 server (Ceph RGW) and real Redis: gate refusals, finish
 * and promotion, resume, termination, expiration with the sweeper, restart.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, cutPatch, head, patch, request, TUS } from '../support/http.ts';
import { ROOT, filesUnder, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { s3Client, s3Env } from '../support/services.ts';
import { upload } from '../support/tus.ts';

const run = promisify(execFile);
const services = inject('services');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

type Kind = 'file' | 's3';
const combos: Array<[Kind, Kind]> = [
  ['file', 'file'],
  ['file', 's3'],
  ['s3', 'file'],
  ['s3', 's3'],
];

describe.each(combos)('staging %s, public %s', (stagingKind, publicKind) => {
  const tag = `${stagingKind}-${publicKind}-${Date.now().toString(36)}`;
  const buckets = {
    staging: stagingKind === 's3' ? `stage-${tag}` : undefined,
    public: publicKind === 's3' ? `public-${tag}` : undefined,
  };
  const env = stagingKind === 's3' || publicKind === 's3' ? s3Env(services, buckets, stagingKind === 's3') : {};
  const s3: S3Client = s3Client(services);
  const dataDir = tempDir();
  let server: RunningServer;

  beforeAll(async () => {
    for (const bucket of [buckets.staging, buckets.public]) {
      if (bucket) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    }
    server = await startServer({ dataDir, env });
  });

  afterAll(async () => {
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Objects and multipart uploads of one upload left in the staging store. */
  async function stagedLeftovers(id: string, dir = dataDir): Promise<string[]> {
    if (!buckets.staging) return filesUnder(path.join(dir, 'staging')).filter((file) => file.startsWith(id) && !file.endsWith('.json'));
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: buckets.staging, Prefix: id }));
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: buckets.staging, Prefix: id }));
    return [...(objects.Contents ?? []).map((o) => o.Key ?? ''), ...(uploads.Uploads ?? []).map((u) => `multipart:${u.Key ?? ''}`)];
  }

  async function artifactBytes(url: string): Promise<Buffer> {
    if (!buckets.public) return Buffer.from(await (await fetch(url)).arrayBuffer());
    const key = url.slice(`${services.s3.endpoint}/${buckets.public}/`.length);
    const object = await s3.send(new GetObjectCommand({ Bucket: buckets.public, Key: key }));
    expect(object.ContentType).toBe('image/webp');
    expect(object.CacheControl).toMatch(/immutable/);
    expect(object.Metadata ?? {}).toEqual({});
    return Buffer.from(await (object.Body?.transformToByteArray() ?? new Uint8Array()));
  }

  it('finishes and promotes: the artifact in the public store, the original gone from staging', async () => {
    const photo = await fixtures.jpegOriented6WithGps(600, 400);
    const outcome = await upload(server.endpoint, photo, { chunkSize: 64 * 1024, metadata: { filename: 'p.jpg', filetype: 'image/jpeg', secret: 'client-said' } });
    expect(outcome.error).toBeUndefined();
    const body = outcome.body as { id: string; url: string; width: number; height: number; original: { sha256: string } };
    expect(body).toMatchObject({ width: 400, height: 600, format: 'webp' });
    expect(body.original.sha256).toBe(sha(photo));
    const artifact = await artifactBytes(body.url);
    const meta = await sharp(artifact).metadata();
    expect([meta.format, meta.width, meta.height, meta.exif]).toEqual(['webp', 400, 600, undefined]);
    expect(artifact.includes(Buffer.from('client-said'))).toBe(false);
    expect(await stagedLeftovers(body.id)).toEqual([]);
  });

  it('refuses at the gate with nothing of the upload reaching staging', async () => {
    const junk = fixtures.randomBytesOf(7 * 1024 * 1024);
    const outcome = await upload(server.endpoint, junk, { metadata: { filename: 'a.jpg' } });
    expect(outcome.status).toBe(415);
    const id = outcome.url?.split('/').pop() ?? '';
    expect(await stagedLeftovers(id)).toEqual([]);
    expect((await head(`${server.endpoint}${id}`)).status).toBe(410);
  });

  it('resumes after a cut PATCH, and what was received is exactly what was sent', async () => {
    const image = await fixtures.noisyJpeg(2000, 1500); // several MiB: more than one S3 part
    const url = await create(server.endpoint, image.length);
    await cutPatch(url, 0, image.subarray(0, Math.floor(image.length * 0.7)), image.length, 500);
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    const outcome = await upload(server.endpoint, image, { uploadUrl: url });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 2000, height: 1500, original: { bytes: image.length, sha256: sha(image) } });
  });

  it('takes a deferred length, declared with the last chunk, bounded by the maximum', async () => {
    const image = await fixtures.noisyJpeg(1400, 1000);
    const outcome = await upload(server.endpoint, image, { uploadLengthDeferred: true, chunkSize: 256 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 1400, height: 1000, original: { sha256: sha(image) } });
    const created = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': '1' } });
    const tooLong = await patch(String(created.headers.location), 0, Buffer.alloc(0), { 'Upload-Length': String(50 * 1024 * 1024 + 1) });
    expect(tooLong.status).toBe(413);
  });

  it('terminates an unfinished upload and removes its staged data', async () => {
    const image = await fixtures.noisyJpeg(1200, 900);
    const url = await create(server.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 100_000))).status).toBe(204);
    const id = url.split('/').pop() ?? '';
    expect((await request(url, { method: 'DELETE', headers: { ...TUS } })).status).toBe(204);
    expect((await head(url)).status).toBe(404);
    expect(await stagedLeftovers(id)).toEqual([]);
  });

  it('survives a restart: an upload started before it completes after it', async () => {
    const image = await fixtures.noisyJpeg(1600, 1200);
    const url = await create(server.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 200_000))).status).toBe(204);
    expect(await server.stop()).toBe(0);
    server = await startServer({ dataDir, env });
    const moved = `${server.endpoint}${url.split('/').pop() ?? ''}`;
    expect(Number((await head(moved)).headers['upload-offset'])).toBe(200_000);
    const outcome = await upload(server.endpoint, image, { uploadUrl: moved });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ original: { sha256: sha(image) } });
  });

  it('expires unfinished uploads (410) and the sweep command removes their data', async () => {
    const expiringEnv = { ...env, UPLOAD_EXPIRES_AFTER_MS: '1500', SWEEP_INTERVAL_MS: '0' };
    const expiringDir = tempDir();
    const short = await startServer({ dataDir: expiringDir, env: expiringEnv });
    try {
      const image = await fixtures.noisyJpeg(1200, 900);
      const created = await request(short.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } });
      expect(created.headers['upload-expires']).toBeTruthy();
      const url = String(created.headers.location);
      const id = url.split('/').pop() ?? '';
      expect((await patch(url, 0, image.subarray(0, 50_000))).status).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect((await head(url)).status).toBe(410);
      expect((await patch(url, 50_000, image.subarray(50_000, 60_000))).status).toBe(410);
      expect(await stagedLeftovers(id, expiringDir)).not.toEqual([]); // still there until swept
      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'server/sweep.ts'], {
        cwd: ROOT,
        env: { ...process.env, ...expiringEnv, DATA_DIR: expiringDir, LOG_LEVEL: 'silent' },
      });
      const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { ran: boolean; uploads: number };
      expect(result.ran).toBe(true);
      expect(result.uploads).toBeGreaterThanOrEqual(1);
      expect(await stagedLeftovers(id, expiringDir)).toEqual([]);
    } finally {
      await short.stop();
      fs.rmSync(expiringDir, { recursive: true, force: true });
    }
  });
});
