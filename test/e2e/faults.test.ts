/**
 * Faults that lose or corrupt uploads: a Redis that forgets, a sweep during the finish
 * queue, `npm run sweep` beside a server holding in-process locks, a lost distributed
 * lock, a waiter on a held lock, a chunked body past Upload-Length, a slow-loris body.
 * Real servers, real Redis, real Ceph RGW, real clients.
 * Each test owns what it starts and removes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import {
  KiB,
  MiB,
  idOf,
  poll,
  rssBytes,
  runSweep,
  sweepResult,
  s3StagedBytes,
  sha,
  sleep,
  startOwnRedis,
  tricklePatch,
  uploadRecorded,
  type RecordedOutcome,
  type Trickle,
  type TrickleEnd,
} from '../support/faults.ts';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch, request, type RawResponse } from '../support/http.ts';
import { startServer, tempDir, type RunningServer } from '../support/server.ts';
import { emptyBucket, s3Client, s3Env } from '../support/services.ts';

const services = inject('services');
const s3 = s3Client(services);
const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 5)}`;

/** What each test started, undone in reverse order after it. */
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const later = (step: () => Promise<unknown> | unknown) => cleanups.push(step);

afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      console.warn('cleanup step failed:', error);
    }
  }
});

async function start(env: Record<string, string> = {}): Promise<RunningServer> {
  const dataDir = tempDir();
  const server = await startServer({ dataDir, env });
  later(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  later(() => server.stop('SIGKILL'));
  return server;
}

async function bucket(name: string): Promise<string> {
  const full = `${name}-${tag}`;
  await s3.send(new CreateBucketCommand({ Bucket: full }));
  later(async () => {
    await emptyBucket(s3, full);
    await s3.send(new DeleteBucketCommand({ Bucket: full }));
  });
  return full;
}

/** A started trickle is cut after the test, whatever happened. */
function trickle(...args: Parameters<typeof tricklePatch>): Trickle {
  const t = tricklePatch(...args);
  later(() => t.cut());
  return t;
}

function artifactOf(outcome: RecordedOutcome): { id?: string; original?: { bytes?: number; sha256?: string } } {
  return (outcome.body ?? {}) as { id?: string; original?: { bytes?: number; sha256?: string } };
}

const describeEnd = (end: TrickleEnd | undefined, since: number) =>
  !end ? 'still open' : end.kind === 'response' ? `answered ${end.status} after ${end.at - since} ms` : `closed${end.byUs ? ' by the test' : ''} after ${end.at - since} ms`;

/** Sends the rest of a trickle that is still open: its PATCH completes the upload (200), whose artifact names the sha256 of `image`. */
async function expectCompletedIntact(trickled: Trickle, image: Buffer): Promise<void> {
  trickled.sendRest();
  const end = await trickled.ended;
  expect(end.kind === 'response' ? end.status : describeEnd(end, trickled.startedAt)).toBe(200);
  const body = JSON.parse(end.kind === 'response' ? end.body : '{}') as { original?: { sha256?: string } };
  expect(body.original?.sha256).toBe(sha(image));
}

function expectNo5xx(outcome: RecordedOutcome): void {
  expect(outcome.responses.filter((r) => r.status >= 500), JSON.stringify(outcome.responses)).toEqual([]);
}

describe('a lost gate verdict', () => {
  /*
   * Observed on 0782dcf (three runs): after the Redis restart, HEAD on the new instance answered
   * 200 with Upload-Offset: 0 while S3 held 12,582,912 bytes (two 5 MiB parts and a 2 MiB
   * `.part`): `expected 0 to be greater than 0` at the offset check. (The gate state said
   * "pending, nothing held", so the held-prefix length 0 became the offset; resuming from 0
   * appends the whole file after the staged parts.)
   */
  it('a Redis that forgot every key does not rewind a 12 MiB S3 upload to 0, and the upload completes intact', async () => {
    const redis = await startOwnRedis('none');
    later(() => redis.stop());
    const staging = await bucket('faults-verdict');
    const env = {
      ...s3Env(services, { staging }, false), // S3_PART_SIZE 5 MiB
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `fv${tag}:`,
      UPLOAD_EXPIRES_AFTER_MS: '0',
      OUTPUT_LONG_EDGE: '512', // the finish is not what this test is about
    };
    const image = await fixtures.noisyJpeg(5400, 3800);
    expect(image.length).toBeGreaterThan(15_000_000);

    const first = await start(env);
    const url = await create(first.endpoint, image.length);
    const id = idOf(url);
    expect((await patch(url, 0, image.subarray(0, 6 * MiB))).status).toBe(204);
    expect((await patch(url, 6 * MiB, image.subarray(6 * MiB, 12 * MiB))).status).toBe(204);
    expect((await head(url)).headers['upload-offset']).toBe(String(12 * MiB));
    await first.stop();

    await redis.restart();
    const probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await probe.connect();
    expect(await probe.dbsize()).toBe(0); // the verdict, the metadata cache: all forgotten
    probe.disconnect();

    const second = await start(env);
    const moved = `${second.endpoint}${id}`;
    const staged = await s3StagedBytes(s3, staging, id);
    expect(staged).toBe(12 * MiB);
    const res = await head(moved);
    if (res.status !== 503) {
      expect(res.status).toBe(200);
      const offset = Number(res.headers['upload-offset']);
      expect(offset).toBeGreaterThan(0);
      expect(offset).toBeLessThanOrEqual(staged);
    }

    // resume this upload (no endpoint: a 503 on HEAD is retried, never a fresh upload)
    const outcome = await uploadRecorded(null, image, { uploadUrl: moved, retryDelays: [500, 1000, 2000, 3000, 5000] });
    expect(outcome.error, JSON.stringify(outcome.responses)).toBeUndefined();
    expect(outcome.status).toBe(200);
    expect(artifactOf(outcome)).toMatchObject({ id, original: { bytes: image.length, sha256: sha(image) } });
  }, 180_000);
});

describe('the sweeper and the finish queue', () => {
  /*
   * The brief's setting is eight 24 MP noisy JPEGs to AVIF at a 2048 long edge; here a noisy
   * 24 MP JPEG takes ~50 s to encode to AVIF on one core, and even a smooth one ~5 s. So: eight
   * 24 MP (6000x4000) smooth JPEGs (~170 KB each), OUTPUT_FORMAT=avif, OUTPUT_LONG_EDGE=1536
   * (~2.5 s a finish, measured), one finish slot. The essence is kept: the sweep runs once every
   * upload is complete and expired (5 s after its creation) while most still wait for the slot.
   * ~30-40 s alone, up to ~90 s beside the rest of the e2e suite (hence the timeout).
   *
   * Observed on 0782dcf (four runs): 6-7 of 8 uploads were still waiting for the slot when the
   * sweep started; it printed {"ran":true,"uploads":5 to 7,...} (it removed that many complete
   * uploads), and 4 to 6 of the 8 final PATCHes answered 500 E_INTERNAL: `expected [ 200, 200,
   * 200, '500 E_INTERNAL' ×5 ] to deeply equal [ 200 ×8 ]`.
   */
  it('a sweep while complete uploads wait for the finish slot removes none of them', async () => {
    const env = {
      UPLOAD_EXPIRES_AFTER_MS: '5000',
      SWEEP_INTERVAL_MS: '0',
      TRANSCODE_CONCURRENCY: '1',
      SHARP_THREADS: '1',
      OUTPUT_FORMAT: 'avif',
      // slow on purpose (the default effort is faster): the finishes must queue behind the one slot
      AVIF_EFFORT: '4',
      OUTPUT_LONG_EDGE: '1536',
    };
    const server = await start(env);
    const images = await Promise.all(Array.from({ length: 8 }, (_, i) => fixtures.gradient(6000, 4000).jpeg({ quality: 80 + i }).toBuffer()));
    const urls: string[] = [];
    let lastCreated = 0;
    const done: boolean[] = images.map(() => false);
    const outcomes = Promise.all(
      images.map((image, i) =>
        uploadRecorded(server.endpoint, image, {
          onUploadUrlAvailable: (url) => {
            urls[i] = url;
            lastCreated = Date.now();
          },
        }).then((outcome) => {
          done[i] = true;
          return outcome;
        }),
      ),
    );
    // every upload is complete (HEAD answers offset = length) ...
    await poll(async () => {
      if (urls.filter(Boolean).length < images.length) return undefined;
      const offsets = await Promise.all(urls.map(async (url) => Number((await head(url)).headers['upload-offset'])));
      return offsets.every((offset, i) => offset === images[i]?.length) ? true : undefined;
    }, 30_000);
    // ... and expired (UPLOAD_EXPIRES_AFTER_MS after its creation), but most wait for the slot
    await sleep(Math.max(0, lastCreated + 5_300 - Date.now()));
    const waitingAtSweep = done.filter((d) => !d).length;
    expect(waitingAtSweep, 'uploads still waiting for the finish when the sweep starts').toBeGreaterThanOrEqual(3);
    const sweep = await runSweep({ ...env, DATA_DIR: server.dataDir, LOG_LEVEL: 'warn' });
    expect(sweep.code, sweep.stderr).toBe(0);

    const results = await outcomes;
    const codeOf = (r: RecordedOutcome) => (r.body as { error?: { code?: string } } | null)?.error?.code;
    expect(
      results.map((r) => (r.status === 200 ? 200 : `${r.status} ${codeOf(r)}`)),
      `${waitingAtSweep} waiting when the sweep started; sweep said ${sweep.stdout.trim()}`,
    ).toEqual(images.map(() => 200));
    results.forEach((outcome, i) => {
      expectNo5xx(outcome);
      expect(artifactOf(outcome).original?.sha256).toBe(sha(images[i] as Buffer));
    });
  }, 240_000);
});

describe('`npm run sweep` beside a running server (file staging, no Redis)', () => {
  /*
   * The sweep runs in a process of its own, and without Redis the server's upload locks
   * live in the server's memory: the sweep cannot see them. A PATCH that began before the
   * upload expired may still be arriving when it runs.
   * Observed on 797a99f (the one run before a held lock marked the upload's record): the
   * sweep printed {"ran":true,"uploads":1,...}, removing the upload under the PATCH.
   */
  it('leaves an expired upload whose PATCH is still arriving; the PATCH completes it intact', async () => {
    const env = { UPLOAD_EXPIRES_AFTER_MS: '3000', SWEEP_INTERVAL_MS: '0', LOCK_TTL_MS: '1500', MIN_RECEIVE_BYTES_PER_S: '1000', RECEIVE_RATE_WINDOW_MS: '2000' };
    const server = await start(env);
    const image = await fixtures.noisyJpeg(800, 600);
    expect(image.length).toBeGreaterThan(150 * KiB);
    const createdAt = Date.now();
    const url = await create(server.endpoint, image.length);
    // 4 KiB every 200 ms (20 KiB/s): fewer bytes than one write buffer reach the staged file
    const steady = trickle(url, 0, image, 4 * KiB, 200);
    await sleep(Math.max(0, createdAt + 3_500 - Date.now()));
    expect(describeEnd(steady.end, steady.startedAt), 'the PATCH when the sweep starts').toBe('still open');
    const sweep = await runSweep({ ...env, DATA_DIR: server.dataDir, LOG_LEVEL: 'warn' });
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(sweepResult(sweep.stdout), sweep.stdout).toMatchObject({ ran: true, uploads: 0, skipped: 1 });

    expect(describeEnd(steady.end, steady.startedAt), 'the PATCH after the sweep').toBe('still open');
    await expectCompletedIntact(steady, image);
  }, 90_000);

  it('removes an expired upload that no request holds any more', async () => {
    const env = { UPLOAD_EXPIRES_AFTER_MS: '1000', SWEEP_INTERVAL_MS: '0', LOCK_TTL_MS: '1500' };
    const server = await start(env);
    const image = await fixtures.noisyJpeg(800, 600);
    const url = await create(server.endpoint, image.length);
    expect((await patch(url, 0, image.subarray(0, 100 * KiB))).status).toBe(204);
    await sleep(1_000 + 300); // expired; its PATCH released its lock (and the lock's mark) when it ended
    const sweep = await runSweep({ ...env, DATA_DIR: server.dataDir, LOG_LEVEL: 'warn' });
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(sweepResult(sweep.stdout), sweep.stdout).toMatchObject({ ran: true, uploads: 1, skipped: 0 });
    expect([404, 410]).toContain((await head(url)).status);
  }, 60_000);

  it('an expired upload without state is removed, one whose staging record cannot be read is not', async () => {
    const env = { UPLOAD_EXPIRES_AFTER_MS: '1000', SWEEP_INTERVAL_MS: '0', LOCK_TTL_MS: '1500' };
    const server = await start(env);
    const image = await fixtures.noisyJpeg(800, 600);
    const [readable, unreadable] = [await create(server.endpoint, image.length), await create(server.endpoint, image.length)].map(idOf) as [string, string];
    for (const id of [readable, unreadable]) {
      expect((await patch(`${server.endpoint}${id}`, 0, image.subarray(0, 100 * KiB))).status).toBe(204); // allowed, staged
    }
    await server.stop();
    const staged = path.join(server.dataDir, 'staging');
    for (const id of [readable, unreadable]) fs.rmSync(path.join(server.dataDir, 'state', `${id}.json`)); // the state is lost
    fs.rmSync(path.join(staged, `${unreadable}.json`));
    fs.mkdirSync(path.join(staged, `${unreadable}.json`)); // reading it fails, as EIO or EMFILE would
    await sleep(1_000 + 300);
    const sweep = await runSweep({ ...env, DATA_DIR: server.dataDir, LOG_LEVEL: 'warn' });
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(sweepResult(sweep.stdout), sweep.stdout).toMatchObject({ ran: true, uploads: 1 });
    expect(fs.existsSync(path.join(staged, readable))).toBe(false);
    expect(fs.statSync(path.join(staged, unreadable)).size).toBe(100 * KiB); // not taken for a missing upload
  }, 60_000);

  it('a DATA_DIR it cannot use: exit 1 with one line naming it, no stack trace', async () => {
    const parent = tempDir();
    const file = path.join(parent, 'a-file');
    fs.writeFileSync(file, '');
    try {
      const sweep = await runSweep({ DATA_DIR: path.join(file, 'data'), LOG_LEVEL: 'warn' });
      expect(sweep.code).toBe(1);
      expect(sweep.stderr.trim()).toMatch(/^tusgate sweep: failed: DATA_DIR=\S+a-file\/data cannot be used: ENOTDIR[^\n]*$/);
      expect(sweep.stdout).toBe('');
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('a lost distributed lock', () => {
  /*
   * Observed on 0782dcf (three runs): A was never stopped (still open, the test cut it 2.5-3 s
   * after its lock vanished, having sent ~1.1-1.3 MB); B's PATCH answered 204 with
   * Upload-Offset 17,825,792; then A's bytes (the file's bytes from 10 MiB) were stored as
   * the upload's `.part`, i.e. at 15 MiB, replacing B's: HEAD then answered e.g. 16,875,520
   * (15 MiB + A's 1,146,880 bytes), not B's 17,825,792. The resumed upload ended 200 with the wrong original:
   * `expected { bytes: 19776418, sha256: '7bb0…' } to deeply equal` one with sha256 '5249…'.
   */
  it('a holder that lost its lock is fenced: its stale PATCH writes nothing, the upload ends with the right bytes', async () => {
    const staging = await bucket('faults-lock');
    const env: Record<string, string> = {
      ...s3Env(services, { staging }, true), // suite's Redis, a key prefix of this test's own, S3 parts of 5 MiB
      LOCK_TTL_MS: '3000',
      LOCK_DRAIN_MS: '1000',
      UPLOAD_EXPIRES_AFTER_MS: '0',
      OUTPUT_LONG_EDGE: '512',
    };
    const prefix = env.REDIS_KEY_PREFIX ?? '';
    const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
    later(() => redis.quit());
    const [a, b] = await Promise.all([start(env), start(env)]);
    const image = await fixtures.noisyJpeg(6000, 4000);
    expect(image.length).toBeGreaterThan(18 * MiB);

    const urlA = await create(a.endpoint, image.length);
    const id = idOf(urlA);
    const urlB = `${b.endpoint}${id}`;
    expect((await patch(urlA, 0, image.subarray(0, 10 * MiB))).status).toBe(204);

    // A: a slow PATCH from 10 MiB declaring the rest of the file (32 KiB every 100 ms)
    const slow = trickle(urlA, 10 * MiB, image.subarray(10 * MiB), 32 * KiB, 100);
    await sleep(1_000);
    expect(slow.end, 'A is still sending').toBeUndefined();
    // A's lock vanishes (an eviction, a failover to a replica that had not got it)
    expect(await redis.del(`${prefix}lock:${id}`)).toBe(1);
    const lostAt = Date.now();

    // B: HEAD, then 7 MiB of the true bytes from B's offset
    const headB = await head(urlB);
    expect(headB.status).toBe(200);
    const offsetB = Number(headB.headers['upload-offset']);
    const patchB = await patch(urlB, offsetB, image.subarray(offsetB, offsetB + 7 * MiB));
    expect([204, 409, 423], `B's PATCH: ${patchB.status} ${patchB.body}`).toContain(patchB.status);

    // A goes on a little, then its network drops (if the server has not stopped it by then)
    await Promise.race([slow.ended, sleep(2_000)]);
    slow.cut();
    const endA = await slow.ended;
    if (endA.kind === 'response') {
      expect(endA.status, `A's stale PATCH: ${endA.status} ${endA.body}`).toBeGreaterThanOrEqual(400);
      expect(endA.status, `A's stale PATCH: ${endA.status} ${endA.body}`).toBeLessThan(500);
    }

    await sleep(500);
    const offsetAfter = (await head(urlB)).headers['upload-offset'];
    const outcome = await uploadRecorded(null, image, { uploadUrl: urlB, retryDelays: [500, 1000, 2000, 3000, 5000] });
    const context = `A ${describeEnd(endA, lostAt)} (sent ${slow.sent} bytes from ${10 * MiB}); B's PATCH from ${offsetB}: ${patchB.status} ${String(patchB.headers['upload-offset'])}; HEAD then ${String(offsetAfter)}; client saw ${JSON.stringify(outcome.responses)}`;
    expect(outcome.error, context).toBeUndefined();
    expect(outcome.status, context).toBe(200);
    expectNo5xx(outcome);
    expect(artifactOf(outcome), context).toMatchObject({ id, original: { bytes: image.length, sha256: sha(image) } });
    // what /uploads/:id says agrees
    const record = (await request(`${b.url}/uploads/${id}`)).json<{ state: string; original?: { sha256: string } }>();
    expect(record).toMatchObject({ state: 'done', original: { sha256: sha(image) } });
  }, 180_000);
});

describe('a PATCH waiting for a held lock', () => {
  /*
   * Observed on 0782dcf (three runs alone): the server's RSS grew by 156-264 MB while B waited
   * (`expected 227590144 to be less than 67108864`): the in-memory locker retries with
   * setImmediate and nests a promise each time. B did get an answer, 409 after ~3.1 s, and A
   * answered 204 after ~3.0 s: @tus/server's default lockDrainTimeout of 3 s, LOCK_DRAIN_MS=1000
   * is not applied. In a run beside two other e2e files (a loaded machine) the RSS grew by
   * only 59 MB, under the guard, and the assertion that failed was A's stop: `expected 3204 to
   * be less than or equal to 2500` (deterministic: @tus/server's drain timer cannot fire
   * before 3 s). The brief's "B waited 30 s" was not reproduced here.
   */
  it('stops the holder within LOCK_DRAIN_MS, answers the waiter soon, without eating memory', async () => {
    const server = await start({ LOCK_DRAIN_MS: '1000' }); // file staging, no Redis: the in-memory locker
    const pid = server.process.pid ?? 0;
    const image = await fixtures.noisyJpeg(2000, 1500); // ~2.5 MB: A cannot finish at 160 KiB/s within the test
    const url = await create(server.endpoint, image.length);
    const start0 = 64 * KiB;
    expect((await patch(url, 0, image.subarray(0, start0))).status).toBe(204);

    // A: 16 KiB every 100 ms, declaring the rest of the image
    const slow = trickle(url, start0, image.subarray(start0), 16 * KiB, 100);
    await sleep(500);
    expect(slow.end, 'A is still sending').toBeUndefined();

    // B: another PATCH for the same upload (a client that retried) arrives
    const rssBefore = rssBytes(pid);
    const bStarted = Date.now();
    let bAnswer: RawResponse | Error | undefined;
    const pending = patch(url, start0, image.subarray(start0, start0 + 1000)).then(
      (res) => (bAnswer = res),
      (error: Error) => (bAnswer = error),
    );
    let rssPeak = rssBefore;
    while (bAnswer === undefined && Date.now() - bStarted < 10_000) {
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      await sleep(100);
    }
    const bMs = Date.now() - bStarted;
    rssPeak = Math.max(rssPeak, rssBytes(pid));
    void pending;
    const growthMb = Math.round((rssPeak - rssBefore) / 1e6);
    const context = `B ${bAnswer === undefined ? 'no answer' : bAnswer instanceof Error ? bAnswer.message : bAnswer.status} after ${bMs} ms; A ${describeEnd(slow.end, bStarted)}; RSS +${growthMb} MB`;

    expect(bAnswer === undefined ? 'no answer' : bAnswer instanceof Error ? 'error' : 'answered', context).toBe('answered');
    const b = bAnswer as RawResponse;
    expect([204, 409, 423], `${context}: ${b.body}`).toContain(b.status);
    expect(bMs, context).toBeLessThan(10_000);
    expect(rssPeak - rssBefore, context).toBeLessThan(64 * MiB);

    // A was stopped about LOCK_DRAIN_MS after B asked for the lock (not @tus/server's 3 s
    // default, not never): an answer with a resumable offset, or a closed connection
    const endA = await Promise.race([slow.ended, sleep(Math.max(0, bStarted + 2_500 - Date.now())).then(() => undefined)]);
    expect(endA, context).toBeDefined();
    expect((endA?.at ?? Date.now()) - bStarted, context).toBeLessThanOrEqual(2_500);
    if (endA?.kind === 'response') {
      expect(endA.status, `${context}: ${endA.body}`).toBeLessThan(500);
      if (endA.headers['upload-offset'] !== undefined) {
        expect(Number(endA.headers['upload-offset'])).toBeLessThanOrEqual(start0 + slow.sent);
      }
    } else if (endA) {
      expect(endA.byUs, context).toBe(false);
    }

    // the upload completes from where HEAD says it is
    const offset = Number((await head(url)).headers['upload-offset']);
    expect(offset).toBeGreaterThanOrEqual(start0);
    expect(offset).toBeLessThanOrEqual(start0 + slow.sent + 1000);
    const outcome = await uploadRecorded(null, image, { uploadUrl: url, retryDelays: [200, 500, 1000] });
    expect(outcome.error, JSON.stringify(outcome.responses)).toBeUndefined();
    expect(outcome.status).toBe(200);
    expect(artifactOf(outcome)).toMatchObject({ id: idOf(url), original: { sha256: sha(image) } });
  }, 120_000);
});

/** A PATCH whose body is sent with Transfer-Encoding: chunked (no Content-Length). */
function chunkedPatch(url: string, offset: number, pieces: Buffer[]): Promise<RawResponse> {
  return patch(url, offset, Buffer.concat(pieces), { 'Transfer-Encoding': 'chunked' });
}

describe('a body past Upload-Length', () => {
  /*
   * Observed on 0782dcf (every run): the chunked overrun answered 500 E_INTERNAL
   * (`expected 500 to be 413`); the Content-Length overrun answered 413 E_UPLOAD_TOO_LARGE
   * already (checked with the chunked assertion disabled).
   */
  it('a chunked PATCH carrying 1000 bytes more than Upload-Length gets 413 E_UPLOAD_TOO_LARGE, like a Content-Length one', async () => {
    const server = await start();
    const image = await fixtures.png(320, 240);
    const junk = fixtures.randomBytesOf(1000);

    const chunkedUrl = await create(server.endpoint, image.length);
    const pieces = [image.subarray(0, 4096), image.subarray(4096), junk];
    const chunked = await chunkedPatch(chunkedUrl, 0, pieces);
    expect(chunked.status, chunked.body).toBe(413);
    expect(chunked.json()).toMatchObject({ error: { code: 'E_UPLOAD_TOO_LARGE' } });

    const lengthUrl = await create(server.endpoint, image.length);
    const sized = await patch(lengthUrl, 0, Buffer.concat([image, junk]));
    expect(sized.status, sized.body).toBe(413);
    expect(sized.json()).toMatchObject({ error: { code: 'E_UPLOAD_TOO_LARGE' } });
  }, 60_000);
});

describe('slow bodies', () => {
  /*
   * Observed on 0782dcf (every run): the one-byte-every-400-ms PATCH was still open after
   * 8 s, 20 bytes sent (`expected 'still open' to be 'closed by the server'`). With that
   * assertion disabled, the rest passed: the steady 20 KiB/s client is not cut.
   */
  it('cuts a PATCH slower than MIN_RECEIVE_BYTES_PER_S over the window, keeps it resumable, and keeps a slow but steady one', async () => {
    const server = await start({ MIN_RECEIVE_BYTES_PER_S: '1000', RECEIVE_RATE_WINDOW_MS: '2000' });
    const image = await fixtures.noisyJpeg(800, 600);
    expect(image.length).toBeGreaterThan(150 * KiB);

    // one byte every 400 ms: 2.5 bytes/s
    const lorisUrl = await create(server.endpoint, image.length);
    const loris = trickle(lorisUrl, 0, image, 1, 400);
    const end = await Promise.race([loris.ended, sleep(8_000).then(() => undefined)]);
    const ms = end ? end.at - loris.startedAt : Date.now() - loris.startedAt;
    const verdict = !end ? 'still open' : end.kind === 'response' && end.status < 300 ? `answered ${end.status}` : end.kind === 'closed' && end.byUs ? 'cut by the test' : 'closed by the server';
    expect(verdict, `after ${ms} ms, ${loris.sent} bytes sent`).toBe('closed by the server');
    expect(ms).toBeLessThan(8_000);

    const after = await head(lorisUrl);
    expect(after.status).toBe(200);
    const offset = Number(after.headers['upload-offset']);
    expect(offset).toBeGreaterThanOrEqual(0);
    expect(offset).toBeLessThanOrEqual(loris.sent);
    const resumed = await uploadRecorded(null, image, { uploadUrl: lorisUrl, retryDelays: [200, 500, 1000, 2000] });
    expect(resumed.error, JSON.stringify(resumed.responses)).toBeUndefined();
    expect(resumed.status).toBe(200);
    expect(artifactOf(resumed)).toMatchObject({ id: idOf(lorisUrl), original: { sha256: sha(image) } });

    // slow but steady, well above the minimum: 4 KiB every 200 ms (20 KiB/s) for 5 s, then the rest
    const steadyUrl = await create(server.endpoint, image.length);
    const steady = trickle(steadyUrl, 0, image, 4 * KiB, 200);
    await sleep(5_000);
    expect(describeEnd(steady.end, steady.startedAt)).toBe('still open');
    await expectCompletedIntact(steady, image);
  }, 90_000);
});
