/**
 * The path every user takes: real tus-js-client uploads to the real server on loopback,
 * the artifact published and served, the original nowhere public.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { request } from '../support/http.ts';
import { filesUnder, startServer, type RunningServer } from '../support/server.ts';
import { upload } from '../support/tus.ts';
import { parseState } from '../../storage/upload-state.ts';

interface ArtifactBody {
  id: string;
  url: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
}

let server: RunningServer;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

function publicFiles(): string[] {
  return filesUnder(path.join(server.dataDir, 'public')).filter((file) => !file.startsWith('.incoming'));
}

describe('a JPEG with EXIF orientation 6 and GPS', () => {
  let photo: Buffer;
  let body: ArtifactBody;
  let uploadUrl: string;

  beforeAll(async () => {
    photo = await fixtures.jpegOriented6WithGps(600, 400);
    const before = await sharp(photo).metadata();
    expect(before.orientation).toBe(6);
    expect(before.exif?.includes(Buffer.from('TusgateTestCam'))).toBe(true);
    const outcome = await upload(server.endpoint, photo, { chunkSize: 16 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    body = outcome.body as ArtifactBody;
    uploadUrl = outcome.url ?? '';
  });

  it('answers the final PATCH with the artifact record', () => {
    expect(body).toMatchObject({ format: 'webp', width: 400, height: 600 });
    expect(uploadUrl.endsWith(`/files/${body.id}`)).toBe(true);
    expect(body.url).toMatch(new RegExp(`^${server.url}/media/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\\.webp$`));
    expect(body.url).not.toContain(body.id); // the public name is not the upload id
    expect(body.bytes).toBeGreaterThan(0);
  });

  it('logs the upload in order: allowed by the gate, received whole, published', () => {
    const at = (msg: string) => server.logs.findIndex((line) => line.msg === msg && line.uploadId === body.id);
    const received = server.logs[at('upload received')];
    expect(received?.bytes).toBe(photo.length);
    expect(at('upload allowed by the gate')).toBeGreaterThanOrEqual(0);
    expect(at('upload allowed by the gate')).toBeLessThan(at('upload received'));
    expect(at('upload received')).toBeLessThan(at('artifact published'));
  });

  it('serves an upright WebP with no metadata at all', async () => {
    const response = await fetch(body.url);
    expect(response.status).toBe(200);
    const image = Buffer.from(await response.arrayBuffer());
    expect(image.length).toBe(body.bytes);
    const meta = await sharp(image).metadata();
    expect(meta.format).toBe('webp');
    expect([meta.width, meta.height]).toEqual([400, 600]);
    expect(meta.exif).toBeUndefined();
    expect(meta.xmp).toBeUndefined();
    expect(meta.icc).toBeUndefined();
    expect(meta.orientation).toBeUndefined();
    expect(image.includes(Buffer.from('TusgateTestCam'))).toBe(false);
    expect(image.includes(Buffer.from('GPS'))).toBe(false);
    // The stored image has its white quarter top-left; turned 90° clockwise it is top-right.
    const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
    const pixel = (x: number, y: number) => data[(y * info.width + x) * info.channels] ?? 0;
    expect(pixel(info.width - 10, 10)).toBeGreaterThan(230);
    expect(pixel(10, 10)).toBeLessThan(230);
  });

  it('serves media with safe, cacheable headers and conditional GET', async () => {
    const response = await fetch(body.url);
    expect(response.headers.get('content-type')).toBe('image/webp');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(response.headers.get('cache-control')).toMatch(/max-age=\d+.*immutable/);
    const etag = response.headers.get('etag');
    const lastModified = response.headers.get('last-modified');
    expect(etag).toBeTruthy();
    expect(lastModified).toBeTruthy();
    // raw requests: fetch() adds Cache-Control: no-cache to conditional requests, which forbids a 304
    const again = await request(body.url, { headers: { 'If-None-Match': etag ?? '' } });
    expect(again.status).toBe(304);
    const since = await request(body.url, { headers: { 'If-Modified-Since': lastModified ?? '' } });
    expect(since.status).toBe(304);
    const changed = await request(body.url, { headers: { 'If-None-Match': '"something-else"' } });
    expect(changed.status).toBe(200);
    const head = await fetch(body.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(body.bytes));
  });

  it('returns the same record from GET /uploads/:id', async () => {
    const response = await fetch(`${server.url}/uploads/${body.id}`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ state: 'done', ...body });
  });

  it('still answers HEAD on the upload as complete (a client whose response was lost)', async () => {
    const response = await fetch(uploadUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('upload-offset')).toBe(String(photo.length));
    expect(response.headers.get('upload-length')).toBe(String(photo.length));
  });

  it('keeps the original out of every store', () => {
    expect(filesUnder(path.join(server.dataDir, 'staging')).filter((f) => f.startsWith(body.id))).toEqual([]);
    for (const file of filesUnder(server.dataDir)) {
      expect(sha(fs.readFileSync(path.join(server.dataDir, file)))).not.toBe(sha(photo));
    }
  });
});

describe('every allowed format', () => {
  const cases: Array<[string, () => Promise<Buffer>, number, number]> = [
    ['png', () => fixtures.png(3000, 1000), 2048, 683],
    ['gif', () => fixtures.gif(320, 240), 320, 240],
    ['webp', () => fixtures.webp(640, 480), 640, 480],
    ['avif', () => fixtures.avif(320, 240), 320, 240],
    ['jpeg', () => fixtures.jpeg(300, 200), 300, 200],
  ];
  it.each(cases)('%s is re-encoded to WebP within the long edge', async (name, make, width, height) => {
    const data = await make();
    const outcome = await upload(server.endpoint, data, { metadata: { filename: `x.${name}`, filetype: `image/${name}` } });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ format: 'webp', width, height });
  });

  it('an animated GIF stays animated (WebP) with every frame', async () => {
    const data = await fixtures.animated('gif', 12, 80, 60);
    const outcome = await upload(server.endpoint, data, { metadata: { filename: 'a.gif' } });
    expect(outcome.error).toBeUndefined();
    const body = outcome.body as ArtifactBody;
    const image = Buffer.from(await (await fetch(body.url)).arrayBuffer());
    const meta = await sharp(image, { animated: true }).metadata();
    expect(meta.pages).toBe(12);
    expect([meta.width, meta.pageHeight]).toEqual([80, 60]);
  });
});

describe('chunking and creation', () => {
  it('accepts 1 KiB chunks (a phone on a bad network)', async () => {
    const data = await fixtures.jpegWithLargeApp1(20 * 1024);
    const outcome = await upload(server.endpoint, data, { chunkSize: 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ format: 'webp', width: 800, height: 600 });
  });

  it('accepts a deferred length, declared with the last chunk', async () => {
    const data = await fixtures.png(400, 300);
    const outcome = await upload(server.endpoint, data, { chunkSize: 4096, uploadLengthDeferred: true });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 400, height: 300 });
  });

  it('publishes exactly one artifact per completed upload', () => {
    const records = filesUnder(path.join(server.dataDir, 'state'))
      .filter((file) => file.endsWith('.json'))
      .map((file) => parseState(fs.readFileSync(path.join(server.dataDir, 'state', file), 'utf8')));
    const done = records.filter((record) => record.phase === 'done').length;
    expect(done).toBeGreaterThan(0);
    expect(publicFiles()).toHaveLength(done);
  });
});
