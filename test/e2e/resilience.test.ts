/**
 * Networks drop, servers restart, processes die: uploads resume and results appear once.
 * Each test owns its server(s) and data directory.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, cutPatch, head, patch, request, TUS } from '../support/http.ts';
import { filesUnder, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { upload } from '../support/tus.ts';
import { parseState } from '../../storage/upload-state.ts';

const servers: RunningServer[] = [];
const dirs: string[] = [];

async function start(dataDir: string, env: Record<string, string> = {}): Promise<RunningServer> {
  const server = await startServer({ dataDir, env });
  servers.push(server);
  return server;
}

function newDir(): string {
  const dir = tempDir();
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop('SIGKILL')));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function artifacts(dataDir: string): string[] {
  return filesUnder(path.join(dataDir, 'public')).filter((file) => !file.startsWith('.incoming'));
}

async function poll<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const idOf = (url: string) => url.split('/').pop() ?? '';

describe('resume', () => {
  it('resumes from the stored offset after a PATCH is cut mid-body', async () => {
    const server = await start(newDir());
    const image = await fixtures.noisyJpeg(1200, 900);
    const url = await create(server.endpoint, image.length);
    await cutPatch(url, 0, image.subarray(0, Math.floor(image.length / 2)), image.length);
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(Math.floor(image.length / 2));
    const outcome = await upload(server.endpoint, image, { uploadUrl: url });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 1200, height: 900 });
  });

  it('tus-js-client resumes after its own abort', async () => {
    const server = await start(newDir());
    const image = await fixtures.noisyJpeg(1500, 1000);
    let url = '';
    await new Promise<void>((resolve) => {
      void upload(server.endpoint, image, {
        chunkSize: 64 * 1024,
        onStart: (client) => {
          const original = client.options.onProgress;
          client.options.onProgress = (sent, total) => {
            original?.(sent, total);
            if (sent > total / 3 && client.url) {
              url = client.url;
              void client.abort().then(() => resolve());
            }
          };
        },
      });
    });
    expect(url).toMatch(/\/files\/[0-9a-f]{32}$/);
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThan(image.length);
    const outcome = await upload(server.endpoint, image, { uploadUrl: url, chunkSize: 64 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 1500, height: 1000 });
  });

  it('keeps a held-back prefix across a restart and reports it as the offset', async () => {
    const dataDir = newDir();
    const first = await start(dataDir);
    const image = await fixtures.jpegWithLargeApp1(120 * 1024); // the SOF sits after 120 KiB
    const url = await create(first.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 10_000))).status).toBe(204);
    expect((await patch(url, 10_000, image.subarray(10_000, 20_000))).status).toBe(204);
    expect(fs.readdirSync(path.join(dataDir, 'staging')).filter((f) => f === idOf(url)).map((f) => fs.statSync(path.join(dataDir, 'staging', f)).size)).toEqual([0]);
    expect(await first.stop()).toBe(0);

    const second = await start(dataDir);
    const moved = `${second.endpoint}${idOf(url)}`;
    expect((await head(moved)).headers['upload-offset']).toBe('20000');
    const status = await request(`${second.url}/uploads/${idOf(url)}`);
    expect(status.json()).toEqual({ id: idOf(url), state: 'receiving', offset: 20_000, size: image.length });
    const outcome = await upload(second.endpoint, image, { uploadUrl: moved, chunkSize: 8 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 800, height: 600 });
  });

  it('a server stopped with SIGTERM mid-upload exits 0 and the upload completes after restart', async () => {
    const dataDir = newDir();
    const first = await start(dataDir, { SHUTDOWN_TIMEOUT_MS: '500' });
    const image = await fixtures.noisyJpeg(1600, 1200);
    const url = await create(first.endpoint, image.length);
    // an in-flight PATCH that never finishes sending its body
    const stalled = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(image.length) },
    });
    stalled.on('error', () => {});
    await new Promise<void>((resolve) => stalled.write(image.subarray(0, 300_000), () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await first.stop('SIGTERM')).toBe(0);
    stalled.destroy();

    const second = await start(dataDir);
    const moved = `${second.endpoint}${idOf(url)}`;
    const offset = Number((await head(moved)).headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    const outcome = await upload(second.endpoint, image, { uploadUrl: moved });
    expect(outcome.error).toBeUndefined();
    expect(outcome.body).toMatchObject({ width: 1600, height: 1200 });
  });
});

describe('crashes during the finish', () => {
  it('a process killed mid-transcode: the finish is redone on restart, one artifact in the end', async () => {
    const dataDir = newDir();
    const env = { TRANSCODE_CONCURRENCY: '1' };
    const first = await start(dataDir, env);
    const image = await fixtures.noisyJpeg(4000, 3000);
    const url = await create(first.endpoint, image.length);
    const id = idOf(url);
    const finalPatch = patch(url, 0, image).catch(() => undefined);
    // the finish has recorded that it started (asking /uploads/:id could itself start it)
    const recordFile = path.join(dataDir, 'state', `${id}.json`);
    await poll(async () => {
      if (!fs.existsSync(recordFile)) return undefined;
      return parseState(fs.readFileSync(recordFile, 'utf8')).phase === 'processing' ? true : undefined;
    });
    expect(await first.stop('SIGKILL')).toBeNull();
    await finalPatch;
    expect(artifacts(dataDir)).toEqual([]);

    const second = await start(dataDir, env);
    await second.waitForLog((line) => line.msg === 'redoing an interrupted finish' && line.uploadId === id);
    const record = await poll(async () => {
      const res = await request(`${second.url}/uploads/${id}`);
      const body = res.json<{ state: string; url?: string; width?: number }>();
      return body.state === 'done' ? body : undefined;
    }, 60_000);
    expect(record).toMatchObject({ state: 'done', width: 2048, height: 1536, format: 'webp' });
    expect(artifacts(dataDir)).toHaveLength(1);
    const served = Buffer.from(await (await fetch(String(record.url))).arrayBuffer());
    expect((await sharp(served).metadata()).format).toBe('webp');
    expect(fs.existsSync(path.join(dataDir, 'staging', id))).toBe(false);
    // asking again changes nothing
    await request(`${second.url}/uploads/${id}`);
    expect(artifacts(dataDir)).toHaveLength(1);
  });

  it('an upload complete in staging but never finished is finished by a status request', async () => {
    const dataDir = newDir();
    const first = await start(dataDir);
    const image = await fixtures.jpeg(640, 480);
    const url = await create(first.endpoint, image.length);
    const id = idOf(url);
    // all bytes but the last arrive; then the process dies; the last byte is written by hand as a
    // crash between the write and the finish would leave it
    expect((await patch(url, 0, image.subarray(0, image.length - 1))).status).toBe(204);
    expect(await first.stop('SIGKILL')).toBeNull();
    fs.appendFileSync(path.join(dataDir, 'staging', id), image.subarray(image.length - 1));

    const second = await start(dataDir);
    const moved = `${second.endpoint}${id}`;
    expect((await head(moved)).headers['upload-offset']).toBe(String(image.length));
    const record = await poll(async () => {
      const body = (await request(`${second.url}/uploads/${id}`)).json<{ state: string }>();
      return body.state === 'done' ? body : undefined;
    });
    expect(record).toMatchObject({ width: 640, height: 480 });
    expect(artifacts(dataDir)).toHaveLength(1);
  });
});

describe('racing requests', () => {
  it('two PATCHes racing on an undecided gate: one lands, the other is refused, bytes stay consistent', async () => {
    const server = await start(newDir());
    const image = await fixtures.jpegWithLargeApp1(100 * 1024);
    const url = await create(server.endpoint, image.length);
    const part = image.subarray(0, 50_000);
    const results = await Promise.all([patch(url, 0, part), patch(url, 0, part)]);
    const statuses = results.map((res) => res.status).sort();
    expect(statuses[0]).toBe(204);
    expect([409, 423, 400]).toContain(statuses[1]);
    expect((await head(url)).headers['upload-offset']).toBe('50000');
    const rest = await patch(url, 50_000, image.subarray(50_000));
    expect(rest.status).toBe(200);
    expect(rest.json()).toMatchObject({ width: 800, height: 600 });
  });

  it('two PATCHes racing on a disguised file: neither gets bytes in', async () => {
    const server = await start(newDir());
    const junk = fixtures.randomBytesOf(300_000);
    const url = await create(server.endpoint, junk.length);
    const results = await Promise.all([patch(url, 0, junk), patch(url, 0, junk)]);
    for (const res of results) expect(res.status).toBeGreaterThanOrEqual(400);
    expect(results.map((res) => res.status)).toContain(415);
    expect((await head(url)).status).toBe(410);
    expect(filesUnder(server.dataDir).filter((file) => file.includes(idOf(url)) && !file.startsWith('state'))).toEqual([]);
  });
});

describe('timeouts', () => {
  it('cuts an idle connection, keeps a slow one that keeps sending, and both stay resumable', async () => {
    const server = await start(newDir(), { IDLE_TIMEOUT_MS: '1500' });
    const image = await fixtures.noisyJpeg(800, 600);
    const url = await create(server.endpoint, image.length);
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(image.length) },
    });
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      req.on('error', () => resolve(Date.now() - started));
      req.on('response', (res) => {
        res.resume();
        res.on('close', () => resolve(Date.now() - started));
      });
    });
    // slow but steady: 8 KiB every 400 ms for 4 s, longer than the idle timeout
    let sent = 0;
    for (let i = 0; i < 10; i++) {
      req.write(image.subarray(sent, sent + 8192));
      sent += 8192;
      await new Promise((resolve) => setTimeout(resolve, 400));
    }
    expect(req.destroyed).toBe(false);
    // then silence: the server cuts it
    const lifetime = await closed;
    expect(lifetime).toBeGreaterThan(4_000);
    expect(lifetime).toBeLessThan(4_000 + 10_000);
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBe(sent);
    const outcome = await upload(server.endpoint, image, { uploadUrl: url });
    expect(outcome.error).toBeUndefined();
  });
});

describe('start-up', () => {
  it('a bad configuration value stops start-up with a message naming the variable', async () => {
    await expect(startServer({ env: { MAX_PIXELS: 'lots', OUTPUT_FORMAT: 'bmp' } })).rejects.toThrow(/MAX_PIXELS.*[\s\S]*OUTPUT_FORMAT/);
  });

  it('a DATA_DIR it cannot write stops start-up before listening, with a message naming it and no stack trace', async () => {
    const parent = tempDir();
    const file = path.join(parent, 'a-file');
    fs.writeFileSync(file, '');
    try {
      // a directory under a regular file cannot be made (ENOTDIR), as one on a read-only disk or owned by another user
      const error = await startServer({ dataDir: path.join(file, 'data') }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      const message = String(error);
      expect(message).toMatch(/server exited before the log line was seen/); // never "listening" first
      expect(message).toMatch(/tusgate: failed to start: DATA_DIR=\S+a-file\/data cannot be used.*ENOTDIR/);
      expect(message).not.toMatch(/\n\s+at |node_modules/);
      // a store's own directory that cannot be made, the rest of DATA_DIR fine
      for (const store of ['staging', 'state']) {
        const dataDir = path.join(parent, `data-${store}`);
        fs.mkdirSync(dataDir);
        fs.writeFileSync(path.join(dataDir, store), '');
        const failure = String(await startServer({ dataDir }).catch((e: unknown) => e));
        expect(failure).toMatch(new RegExp(`tusgate: failed to start: (ENOTDIR|EEXIST): .*data-${store}/${store}`));
        expect(failure).not.toMatch(/\n\s+at |node_modules/);
      }
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});
