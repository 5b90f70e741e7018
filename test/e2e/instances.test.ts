/**
 * Several instances behind nginx (round robin, no stickiness), sharing the S3 staging and
 * public stores and their state in Redis: failover mid-upload, racing PATCHes across
 * instances, a refusal that holds on the other instance, the gate's held prefix shared.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { CreateBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch, request, TUS } from '../support/http.ts';
import { freePort, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { s3Client, s3Env, startNginx, type Nginx } from '../support/services.ts';
import { upload } from '../support/tus.ts';

const services = inject('services');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const s3 = s3Client(services);
const tag = Date.now().toString(36);
const buckets = { staging: `multi-stage-${tag}`, public: `multi-public-${tag}` };
const env = { ...s3Env(services, buckets, true), TRUST_PROXY: 'true', LOCK_TTL_MS: '2000' };

const dirs: string[] = [];
let ports: [number, number];
let a: RunningServer;
let b: RunningServer;
let nginx: Nginx;

async function startInstance(port: number): Promise<RunningServer> {
  const dataDir = tempDir();
  dirs.push(dataDir);
  return startServer({ port, dataDir, env });
}

async function publicArtifacts(): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: buckets.public }));
  return (page.Contents ?? []).map((object) => object.Key ?? '');
}

beforeAll(async () => {
  await s3.send(new CreateBucketCommand({ Bucket: buckets.staging }));
  await s3.send(new CreateBucketCommand({ Bucket: buckets.public }));
  ports = [await freePort(), await freePort()];
  [a, b] = await Promise.all(ports.map(startInstance)) as [RunningServer, RunningServer];
  nginx = await startNginx(services, ports);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), nginx?.stop()]);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const idOf = (url: string) => url.split('/').pop() ?? '';

describe('two instances behind nginx', () => {
  it('uploads through the balancer, with the Location pointing at the balancer', async () => {
    const image = await fixtures.noisyJpeg(800, 600);
    const outcome = await upload(`${nginx.url}/files/`, image, { chunkSize: 32 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.url?.startsWith(`${nginx.url}/files/`)).toBe(true);
    expect(outcome.body).toMatchObject({ width: 800, height: 600, original: { sha256: sha(image) } });
    // chunks landed on both instances
    const served = (server: RunningServer) => server.logs.filter((l) => l.msg === 'request' && l.path === `/files/${idOf(outcome.url ?? '')}`).length;
    expect(served(a)).toBeGreaterThan(0);
    expect(served(b)).toBeGreaterThan(0);
  });

  it('keeps the gate\'s held-back prefix where every instance sees it (1 KiB chunks, round robin)', async () => {
    const image = await fixtures.jpegWithLargeApp1(30 * 1024);
    const outcome = await upload(`${nginx.url}/files/`, image, { chunkSize: 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 800, height: 600, original: { sha256: sha(image) } });
  });

  it('SIGKILL of the instance mid-PATCH: the upload resumes through the other, one artifact, same bytes', async () => {
    const image = await fixtures.noisyJpeg(3000, 2000);
    const before = await publicArtifacts();
    const url = await create(`http://127.0.0.1:${ports[0]}/files/`, image.length);
    const id = idOf(url);
    // a PATCH to A that is still sending when A dies
    const inflight = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(image.length) },
    });
    inflight.on('error', () => {});
    await new Promise<void>((resolve) => inflight.write(image.subarray(0, Math.floor(image.length * 0.8)), () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await a.stop('SIGKILL')).toBeNull();
    inflight.destroy();

    const outcome = await upload(`${nginx.url}/files/`, image, { uploadUrl: `${nginx.url}/files/${id}`, retryDelays: [200, 500, 1000, 2000] });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ original: { bytes: image.length, sha256: sha(image) } });
    const after = await publicArtifacts();
    expect(after.length - before.length).toBe(1);
    // a status request on the survivor agrees, and asking does not make a second artifact
    const status = await request(`${nginx.url}/uploads/${id}`);
    expect(status.json()).toMatchObject({ state: 'done' });
    expect((await publicArtifacts()).length).toBe(after.length);

    a = await startInstance(ports[0]); // back for the next tests
  });

  it('two PATCHes to one upload through A and B at once: one is refused, the bytes stay consistent', async () => {
    const image = await fixtures.noisyJpeg(1500, 1000);
    const url = await create(`http://127.0.0.1:${ports[0]}/files/`, image.length);
    const id = idOf(url);
    const first = image.subarray(0, 1_000_000);
    const results = await Promise.all([
      patch(`http://127.0.0.1:${ports[0]}/files/${id}`, 0, first),
      patch(`http://127.0.0.1:${ports[1]}/files/${id}`, 0, first),
    ]);
    const statuses = results.map((res) => res.status).sort();
    expect(statuses).toContain(204);
    expect(statuses.some((status) => [409, 423, 400].includes(status))).toBe(true);
    const offset = Number((await head(`http://127.0.0.1:${ports[1]}/files/${id}`)).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(first.length);
    const outcome = await upload(`${nginx.url}/files/`, image, { uploadUrl: `${nginx.url}/files/${id}` });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ original: { sha256: sha(image) } });
  });

  it('a refused upload stays refused when the next chunk goes to the other instance', async () => {
    const junk = fixtures.randomBytesOf(200_000);
    const url = await create(`http://127.0.0.1:${ports[0]}/files/`, junk.length);
    const id = idOf(url);
    const refused = await patch(`http://127.0.0.1:${ports[0]}/files/${id}`, 0, junk);
    expect(refused.status).toBe(415);
    const again = await patch(`http://127.0.0.1:${ports[1]}/files/${id}`, 0, junk);
    expect(again.status).toBe(410);
    expect(again.json()).toMatchObject({ error: { code: 'E_UPLOAD_REFUSED' } });
    expect((await head(`http://127.0.0.1:${ports[1]}/files/${id}`)).status).toBe(410);
    const staged = await s3.send(new ListObjectsV2Command({ Bucket: buckets.staging, Prefix: id }));
    expect(staged.Contents ?? []).toEqual([]);
  });
});
