/**
 * Everything the gate and the finish refuse, driven by the real tus-js-client: the right
 * status, a JSON body with a stable code and a message naming the limit, a log line with
 * the reason, the upload terminated, and nothing of it in any store.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { head, request, TUS } from '../support/http.ts';
import { filesUnder, startServer, type LogLine, type RunningServer } from '../support/server.ts';
import { errorCode, upload, type UploadOutcome } from '../support/tus.ts';

let server: RunningServer;
const MiB = 1024 * 1024;
const WINDOW = 256 * 1024;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});

function idOf(outcome: UploadOutcome): string {
  const id = outcome.url?.split('/').pop();
  if (!id) throw new Error('the upload was not created');
  return id;
}

/** The server's request log line for the PATCH of an upload that got `status`. */
function patchLog(id: string, status: number): Promise<LogLine> {
  return server.waitForLog((line) => line.msg === 'request' && line.method === 'PATCH' && line.path === `/files/${id}` && line.status === status);
}

/** Nothing of the upload anywhere but its state record. */
function expectNothingStored(id: string): void {
  const leftovers = filesUnder(server.dataDir).filter((file) => file.includes(id) && !file.startsWith('state'));
  expect(leftovers).toEqual([]);
  expect(filesUnder(path.join(server.dataDir, 'public')).filter((f) => !f.startsWith('.incoming'))).toEqual(
    expect.not.arrayContaining([expect.stringContaining(id)]),
  );
}

async function expectTerminated(id: string, code: string): Promise<void> {
  const url = `${server.endpoint}${id}`;
  const again = await head(url);
  expect(again.status).toBe(410);
  const status = await request(`${server.url}/uploads/${id}`);
  expect(status.status).toBe(200);
  expect(status.json()).toMatchObject({ id, state: 'refused', error: { code } });
}

describe('the gate', () => {
  it('refuses a disguised non-image on its first PATCH, having read little of it', async () => {
    const body = fixtures.randomBytesOf(48 * MiB);
    const outcome = await upload(server.endpoint, body, { metadata: { filename: 'holiday.jpg', filetype: 'image/jpeg' } });
    expect(outcome.status).toBe(415);
    expect(errorCode(outcome)).toBe('E_TYPE_UNKNOWN');
    expect((outcome.body as { error: { message: string } }).error.message).toContain('image/jpeg, image/png');
    const id = idOf(outcome);
    const log = await patchLog(id, 415);
    // the window, plus what loopback socket buffers had already taken in
    expect(log.socketBytesRead).toBeLessThan(WINDOW + 8 * MiB);
    const gateLine = await server.waitForLog((line) => line.msg === 'upload refused by the gate' && line.uploadId === id);
    expect(gateLine.code).toBe('E_TYPE_UNKNOWN');
    await expectTerminated(id, 'E_TYPE_UNKNOWN');
    expectNothingStored(id);
  });

  it('refuses a PNG pixel bomb (65535x65535 declared) before its body is read', async () => {
    const bomb = Buffer.concat([fixtures.pngBomb(65535, 65535, 4), Buffer.alloc(32 * MiB)]);
    const outcome = await upload(server.endpoint, bomb, { metadata: { filename: 'bomb.png' } });
    expect(outcome.status).toBe(422);
    expect(errorCode(outcome)).toBe('E_DIMENSIONS_TOO_LARGE');
    expect((outcome.body as { error: { message: string } }).error.message).toMatch(/65535x65535.*16,383.*MAX_DIMENSION/);
    const id = idOf(outcome);
    expect((await patchLog(id, 422)).socketBytesRead).toBeLessThan(WINDOW + 8 * MiB);
    await expectTerminated(id, 'E_DIMENSIONS_TOO_LARGE');
    expectNothingStored(id);
  });

  it('refuses an image over the pixel limit with the limit in the message', async () => {
    const outcome = await upload(server.endpoint, fixtures.pngBomb(10_000, 10_000, 2), { metadata: { filename: 'big.png' } });
    expect(outcome.status).toBe(422);
    expect(errorCode(outcome)).toBe('E_TOO_MANY_PIXELS');
    expect((outcome.body as { error: { message: string } }).error.message).toContain('50,000,000 pixels (MAX_PIXELS)');
  });

  it('refuses a JPEG bomb and a GIF whose frame exceeds its screen', async () => {
    const jpeg = await upload(server.endpoint, fixtures.jpegBomb(), {});
    expect([jpeg.status, errorCode(jpeg)]).toEqual([422, 'E_DIMENSIONS_TOO_LARGE']);
    const gif = await upload(server.endpoint, fixtures.gifFrameBomb(), { metadata: { filename: 'a.gif' } });
    expect([gif.status, errorCode(gif)]).toEqual([422, 'E_DIMENSIONS_TOO_LARGE']);
  });

  it('refuses PNG magic followed by HTML (file-type wants a PNG chunk after the signature)', async () => {
    const outcome = await upload(server.endpoint, fixtures.pngMagicThenHtml(), { metadata: { filename: 'x.png' } });
    expect([outcome.status, errorCode(outcome)]).toEqual([415, 'E_TYPE_UNKNOWN']);
    expectNothingStored(idOf(outcome));
  });

  it('refuses real formats that are not allowed (PDF, TIFF, HEIC) by their bytes, whatever the name says', async () => {
    for (const data of [fixtures.pdfLike(), await fixtures.tiff(), fixtures.heicLike()]) {
      const outcome = await upload(server.endpoint, data, { metadata: { filename: 'photo.jpg', filetype: 'image/jpeg' } });
      expect([outcome.status, errorCode(outcome)]).toEqual([415, 'E_TYPE_NOT_ALLOWED']);
      expectNothingStored(idOf(outcome));
    }
  });

  it('refuses an animation with too many frames', async () => {
    const data = await fixtures.animated('gif', 120, 16, 16);
    const outcome = await upload(server.endpoint, data, { metadata: { filename: 'a.gif' } });
    expect([outcome.status, errorCode(outcome)]).toEqual([422, 'E_TOO_MANY_FRAMES']);
  });

  it('judges an upload smaller than the window when it completes, across 1 KiB chunks', async () => {
    const outcome = await upload(server.endpoint, fixtures.htmlPage(3000), { chunkSize: 1024, metadata: { filename: 'a.png' } });
    expect([outcome.status, errorCode(outcome)]).toEqual([415, 'E_TYPE_UNKNOWN']);
    const id = idOf(outcome);
    // the first two chunks were held back, never staged
    expect(server.logs.filter((line) => line.msg === 'request' && line.path === `/files/${id}` && line.status === 204)).toHaveLength(2);
    expectNothingStored(id);
  });
});

describe('creation', () => {
  it('refuses an empty upload', async () => {
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '0' } });
    expect(res.status).toBe(422);
    expect(res.json()).toMatchObject({ error: { code: 'E_EMPTY_UPLOAD' } });
  });

  it('refuses an Upload-Length over the maximum with 413, creating nothing', async () => {
    const before = filesUnder(path.join(server.dataDir, 'staging')).length;
    const res = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(50 * MiB + 1) } });
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.json()).toMatchObject({ error: { code: 'E_UPLOAD_TOO_LARGE' } });
    expect(res.json<{ error: { message: string } }>().error.message).toContain('52,428,800 bytes (MAX_UPLOAD_BYTES)');
    expect(filesUnder(path.join(server.dataDir, 'staging')).length).toBe(before);
  });

  it('refuses an obviously wrong file name or declared type at creation', async () => {
    const exe = await upload(server.endpoint, await fixtures.jpeg(), { metadata: { filename: 'setup.exe' } });
    expect([exe.status, errorCode(exe), exe.url]).toEqual([415, 'E_TYPE_NOT_ALLOWED', null]);
    const html = await upload(server.endpoint, await fixtures.jpeg(), { metadata: { filename: 'a', filetype: 'text/html' } });
    expect([html.status, errorCode(html)]).toEqual([415, 'E_TYPE_NOT_ALLOWED']);
  });

  it('lets the bytes decide when the name lies the other way', async () => {
    const outcome = await upload(server.endpoint, await fixtures.png(), { metadata: { filename: 'document', filetype: 'application/octet-stream' } });
    expect(outcome.error).toBeUndefined();
  });
});

describe('the finish', () => {
  it('fails a truncated image with 422, publishing nothing and cleaning staging', async () => {
    const whole = await fixtures.noisyJpeg(800, 600);
    const outcome = await upload(server.endpoint, fixtures.truncated(whole, 0.6), { metadata: { filename: 'cut.jpg' } });
    expect(outcome.status).toBe(422);
    expect(errorCode(outcome)).toBe('E_IMAGE_CORRUPT');
    const id = idOf(outcome);
    await server.waitForLog((line) => line.msg === 'upload failed at finish' && line.uploadId === id);
    const status = await request(`${server.url}/uploads/${id}`);
    expect(status.json()).toMatchObject({ id, state: 'failed', error: { code: 'E_IMAGE_CORRUPT' } });
    expectNothingStored(id);
  });
});
