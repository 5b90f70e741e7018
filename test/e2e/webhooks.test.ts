/**
 * Signed webhooks and in-process hooks, end to end: real tusgate processes, a receiver
 * this file starts that verifies every delivery with `standardwebhooks`' Webhook.verify,
 * the real tus-js-client, the sweep command (`server/sweep.ts`), and the suite's Redis.
 * The events of a completed, a refused, a deleted and an expired upload; retries with one
 * webhook-id; events stored while the receiver is down survive a restart (file outbox)
 * and a SIGKILLed instance (Redis outbox, delivered by the other instance); HOOKS_MODULE.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sweepResult } from '../support/faults.ts';
import * as fixtures from '../support/fixtures.ts';
import { patch, request, TUS } from '../support/http.ts';
import { bearer, signHs256 } from '../support/identity.ts';
import { Receiver, webhookSecret, type WebhookPayload } from '../support/receiver.ts';
import { clearRedisPrefix } from '../support/services.ts';
import { filesUnder, ROOT, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { errorCode, upload } from '../support/tus.ts';

const services = inject('services');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const idOf = (url: string) => url.split('/').pop() ?? '';
const SECRET = 'webhooks-e2e-hs256-secret-0123456789abcdef';
const secret = webhookSecret();
const run = randomBytes(4).toString('hex');
/** Fast retries: the tests wait for second and third attempts. */
const RETRIES = { WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_MAX_MS: '500', WEBHOOK_TIMEOUT_MS: '1000' };

interface Artifact {
  id: string;
  url: string;
  width: number;
  height: number;
  format: string;
  bytes: number;
  profile?: string;
  original: { bytes: number; sha256: string };
}

const dirs: string[] = [];
const scratch = () => {
  const dir = tempDir('tusgate-webhooks-');
  dirs.push(dir);
  return dir;
};

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});


async function stopAndClean(server: RunningServer | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!server) return;
  await server.stop(signal);
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The server logged a failed attempt for an event of this type and upload (it was stored, the receiver was down). */
const attemptedWhileDown = (server: RunningServer, uploadId: string, type: string) =>
  server.logs.some((line) => line.msg === 'webhook attempt failed, will retry' && line.uploadId === uploadId && line.type === type);

// ------------------------------------------------------------------------------ one server, receiver up

describe('webhooks and HOOKS_MODULE on one server (AUTH_MODE=jwt, profiles)', () => {
  const receiver = new Receiver(secret);
  let server: RunningServer;
  let hookLog: string;
  let photo: Buffer;

  const hookLines = (): Array<{ hook: string; event: WebhookPayload['data'] }> =>
    fs.existsSync(hookLog)
      ? fs.readFileSync(hookLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { hook: string; event: WebhookPayload['data'] })
      : [];

  beforeAll(async () => {
    const dir = scratch();
    hookLog = path.join(dir, 'hooks.jsonl');
    const hooksModule = path.join(dir, 'hooks.mjs');
    fs.writeFileSync(
      hooksModule,
      `import fs from 'node:fs';
const out = ${JSON.stringify(hookLog)};
export async function onCreate(event) {
  fs.appendFileSync(out, JSON.stringify({ hook: 'onCreate', event }) + '\\n');
  if (event.metadata.filename === 'sunday.jpg') return { refuse: 'no uploads on Sundays' };
}
export async function onPublished(event) {
  fs.appendFileSync(out, JSON.stringify({ hook: 'onPublished', event }) + '\\n');
}
`,
    );
    const profiles = path.join(dir, 'profiles.json');
    fs.writeFileSync(profiles, JSON.stringify({ avatar: { output: { fit: 'cover', width: 256, height: 256, format: 'webp' } } }));
    await receiver.listen();
    [server, photo] = await Promise.all([
      startServer({
        env: {
          AUTH_MODE: 'jwt',
          AUTH_JWT_SECRET: SECRET,
          PROFILES_FILE: profiles,
          HOOKS_MODULE: hooksModule,
          WEBHOOK_URL: receiver.url,
          WEBHOOK_SECRET: secret,
          ...RETRIES,
        },
      }),
      fixtures.jpeg(800, 600),
    ]);
  }, 60_000);

  afterAll(async () => {
    await stopAndClean(server);
    await receiver.close();
  });

  afterAll(() => {
    // every request the receiver got was signed right
    expect(receiver.receptions.filter((reception) => reception.error)).toEqual([]);
  });

  it('a completed upload: upload.created, then artifact.published with the artifact record, profile, owner, meta and metadata', async () => {
    const sub = `ada-${run}`;
    const auth = bearer(await signHs256(SECRET, { sub, profile: 'avatar', meta: { userName: 'ada' } }));
    const outcome = await upload(server.endpoint, photo, { headers: auth, metadata: { filename: 'ada.jpg', filetype: 'image/jpeg', other: 'dropped' } });
    expect(outcome.error).toBeUndefined();
    const body = outcome.body as Artifact;
    const id = idOf(outcome.url ?? '');
    const [created, published] = (await receiver.waitForEvents(id, ['upload.created', 'artifact.published'])) as [WebhookPayload, WebhookPayload];

    const about = { uploadId: id, owner: sub, profile: 'avatar', meta: { userName: 'ada' }, metadata: { filename: 'ada.jpg', filetype: 'image/jpeg' } };
    expect(created.data).toEqual(about);
    expect(published.data).toEqual({
      ...about,
      artifact: { id, url: body.url, format: 'webp', width: 256, height: 256, bytes: body.bytes, original: { bytes: photo.length, sha256: sha(photo) } },
    });
    expect(Date.parse(created.timestamp)).toBeLessThanOrEqual(Date.parse(published.timestamp));
    // one attempt each (the receiver answered 204), distinct webhook-ids
    const ids = receiver.receptions.filter((r) => r.payload?.data.uploadId === id).map((r) => r.id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
    expect(ids.every((webhookId) => /^msg_[0-9A-Za-z]+$/.test(webhookId))).toBe(true);

    // HOOKS_MODULE: onCreate and onPublished were told, with the same data
    await until('onPublished wrote its line', () => hookLines().some((line) => line.hook === 'onPublished' && line.event.uploadId === id));
    const told = hookLines().filter((line) => line.event.uploadId === id);
    expect(told.map((line) => line.hook)).toEqual(['onCreate', 'onPublished']);
    expect(told[0]?.event).toEqual(about);
    expect(told[1]?.event).toEqual(published.data);
  }, 20_000);

  it('a disguised upload (HTML named photo.jpg): upload.refused with the gate\'s code', async () => {
    const auth = bearer(await signHs256(SECRET, { sub: `bea-${run}` }));
    const outcome = await upload(server.endpoint, fixtures.htmlPage(20_000), { headers: auth });
    expect(outcome.status).toBe(415);
    const code = errorCode(outcome);
    expect(code).toMatch(/^E_TYPE_/);
    const id = idOf(outcome.url ?? '');
    const [created, refused] = (await receiver.waitForEvents(id, ['upload.created', 'upload.refused'])) as [WebhookPayload, WebhookPayload];
    expect(created.data.owner).toBe(`bea-${run}`);
    expect(refused.data).toMatchObject({ uploadId: id, owner: `bea-${run}`, profile: 'default', error: { code, message: expect.any(String) } });
    expect(refused.data.artifact).toBeUndefined();
  }, 20_000);

  it('DELETE /uploads/:id by its owner: artifact.deleted, and the artifact URL then answers 404', async () => {
    const auth = bearer(await signHs256(SECRET, { sub: `cid-${run}` }));
    const outcome = await upload(server.endpoint, photo, { headers: auth });
    expect(outcome.error).toBeUndefined();
    const body = outcome.body as Artifact;
    expect((await fetch(body.url)).status).toBe(200);
    await receiver.waitForEvents(body.id, ['artifact.published']);

    const deleted = await request(`${server.url}/uploads/${body.id}`, { method: 'DELETE', headers: auth });
    expect(deleted.status).toBe(204);
    const [event] = (await receiver.waitForEvents(body.id, ['artifact.deleted'])) as [WebhookPayload];
    expect(event.data).toMatchObject({ uploadId: body.id, owner: `cid-${run}`, artifact: { url: body.url, original: { sha256: sha(photo) } } });
    expect((await fetch(body.url)).status).toBe(404);
    expect((await request(`${server.url}/uploads/${body.id}`, { headers: auth })).json()).toMatchObject({ state: 'deleted' });
  }, 20_000);

  it('a receiver failing (500) twice, then 200: the same webhook-id and body arrive 3 times, each signed', async () => {
    receiver.behave = (_n, ofId) => (ofId < 2 ? 500 : 200);
    try {
      const auth = bearer(await signHs256(SECRET, { sub: `dan-${run}` }));
      const outcome = await upload(server.endpoint, photo, { headers: auth });
      expect(outcome.error).toBeUndefined();
      const id = idOf(outcome.url ?? '');
      await receiver.waitForEvents(id, ['upload.created', 'artifact.published']);
      for (const type of ['upload.created', 'artifact.published']) {
        const attempts = receiver.receptions.filter((r) => r.payload?.type === type && r.payload.data.uploadId === id);
        expect(attempts.map((r) => r.answered)).toEqual([500, 500, 200]);
        expect(new Set(attempts.map((r) => r.id)).size).toBe(1);
        expect(new Set(attempts.map((r) => r.body)).size).toBe(1);
        expect(attempts.every((r) => r.error === undefined)).toBe(true);
        const stamps = attempts.map((r) => r.timestamp);
        expect([...stamps].sort((x, y) => x - y)).toEqual(stamps);
      }
    } finally {
      receiver.behave = () => 204;
    }
  }, 20_000);

  it('HOOKS_MODULE onCreate refusing "sunday.jpg": 403 E_FORBIDDEN with its message; nothing is created', async () => {
    const auth = bearer(await signHs256(SECRET, { sub: `eve-${run}` }));
    const outcome = await upload(server.endpoint, photo, { headers: auth, metadata: { filename: 'sunday.jpg', filetype: 'image/jpeg' } });
    expect(outcome.status).toBe(403);
    expect(outcome.body).toEqual({ error: { code: 'E_FORBIDDEN', message: 'no uploads on Sundays' } });
    expect(outcome.url).toBeNull();
    expect(hookLines().some((line) => line.hook === 'onCreate' && line.event.metadata.filename === 'sunday.jpg')).toBe(true);
    // the next upload's events arrive; none is about the refused one
    const next = await upload(server.endpoint, photo, { headers: auth, metadata: { filename: 'monday.jpg', filetype: 'image/jpeg' } });
    expect(next.error).toBeUndefined();
    await receiver.waitForEvents(idOf(next.url ?? ''), ['upload.created', 'artifact.published']);
    expect(receiver.accepted().filter((event) => event.payload.data.metadata.filename === 'sunday.jpg')).toEqual([]);
  }, 20_000);
});

// ------------------------------------------------------------------------------ expiry and the sweep command

describe('an expired upload swept by `npm run sweep`', () => {
  const receiver = new Receiver(secret);
  let server: RunningServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    await receiver.listen();
    env = { AUTH_MODE: 'none', UPLOAD_EXPIRES_AFTER_MS: '1500', SWEEP_INTERVAL_MS: '0', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret, ...RETRIES };
    server = await startServer({ env });
  }, 60_000);

  afterAll(async () => {
    await stopAndClean(server);
    await receiver.close();
  });

  it('gives upload.expired (stored by the sweep, delivered by the server), and the upload is gone', async () => {
    const image = await fixtures.noisyJpeg(400, 300);
    const created = await request(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(image.length) } });
    expect(created.status).toBe(201);
    const url = String(created.headers.location);
    const id = idOf(url);
    expect((await patch(url, 0, image.subarray(0, 20_000))).status).toBe(204);
    // Upload-Expires is an HTTP date, whole seconds: the upload expires up to a second after it says
    const expires = Date.parse(String(created.headers['upload-expires'])) + 1000;
    expect(expires).toBeGreaterThan(Date.now() - 5_000);
    await receiver.waitForEvents(id, ['upload.created']);
    await until('the upload expired', () => Date.now() > expires + 200, 10_000);

    // `npm run sweep` is `tsx server/sweep.ts`: run it with the server's configuration and DATA_DIR
    const sweep = spawn(process.execPath, ['--import', 'tsx', 'server/sweep.ts'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(server.port), DATA_DIR: server.dataDir, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    sweep.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    sweep.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    try {
      const exitCode = await new Promise<number | null>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`sweep still running after 20 s: ${stderr}`)), 20_000);
        sweep.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
      });
      expect([exitCode, exitCode === 0 ? '' : stderr]).toEqual([0, '']);
    } finally {
      if (sweep.exitCode === null && sweep.signalCode === null) sweep.kill('SIGKILL');
    }
    expect(sweepResult(stdout)).toMatchObject({ ran: true, uploads: 1 });

    expect(filesUnder(path.join(server.dataDir, 'staging')).filter((file) => file.startsWith(id))).toEqual([]);
    expect([404, 410]).toContain((await request(url, { method: 'HEAD', headers: { ...TUS } })).status);
    // the sweep stored the event in the server's outbox (DATA_DIR/webhooks), unless the
    // running server (it reads its outbox every second) has delivered it already
    const delivered = receiver.eventsOf(id, 'upload.expired').map((event) => ['upload.expired', event.data.uploadId]);
    const stored = filesUnder(path.join(server.dataDir, 'webhooks', 'pending')).map((file) =>
      JSON.parse(fs.readFileSync(path.join(server.dataDir, 'webhooks', 'pending', file), 'utf8')) as { event: { type: string; data: { uploadId: string } } },
    );
    expect([...stored.map((record) => [record.event.type, record.event.data.uploadId]), ...delivered]).toContainEqual(['upload.expired', id]);

    // the running server delivers it (it reads its outbox every second)
    let deliveredWhileRunning = true;
    await receiver.waitForEvents(id, ['upload.expired'], 8_000).catch(() => (deliveredWhileRunning = false));
    if (!deliveredWhileRunning) {
      // diagnosis: a server started on the same DATA_DIR does deliver it
      await server.stop();
      server = await startServer({ env, dataDir: server.dataDir });
      await receiver.waitForEvents(id, ['upload.expired'], 15_000);
    }
    const [expired] = receiver.eventsOf(id, 'upload.expired');
    expect(expired?.data).toMatchObject({ uploadId: id, owner: null, profile: 'default' });
    expect({ deliveredWhileRunning }).toEqual({ deliveredWhileRunning: true });
  }, 45_000);
});

// ------------------------------------------------------------------------------ durability, file outbox

describe('events stored while the receiver is down survive a restart (file outbox)', () => {
  const receiver = new Receiver(secret);
  let server: RunningServer | undefined;
  let dataDir: string;

  beforeAll(async () => {
    await receiver.reserve(); // a port where nothing listens yet
    dataDir = scratch();
  });

  afterAll(async () => {
    await server?.stop();
    await receiver.close();
  });

  it('receiver down while an upload completes; SIGTERM; receiver up; the server restarted on the same DATA_DIR delivers them', async () => {
    const env = { AUTH_MODE: 'none', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret, ...RETRIES };
    server = await startServer({ env, dataDir });
    const image = await fixtures.jpeg(640, 480);
    const outcome = await upload(server.endpoint, image);
    expect(outcome.error).toBeUndefined();
    const id = idOf(outcome.url ?? '');
    const first = server;
    await until('both events were attempted while the receiver was down', () =>
      attemptedWhileDown(first, id, 'upload.created') && attemptedWhileDown(first, id, 'artifact.published'),
    );
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(filesUnder(path.join(dataDir, 'webhooks')).length).toBeGreaterThanOrEqual(2);
    expect(receiver.receptions).toEqual([]);

    await receiver.listen();
    server = await startServer({ env, dataDir });
    const [created, published] = (await receiver.waitForEvents(id, ['upload.created', 'artifact.published'], 20_000)) as [WebhookPayload, WebhookPayload];
    expect(created.data.uploadId).toBe(id);
    expect(published.data.artifact).toMatchObject({ url: (outcome.body as Artifact).url, original: { sha256: sha(image) } });
    await until('the outbox is empty', () => (server?.logs.filter((line) => line.msg === 'webhook delivered').length ?? 0) >= 2);
  }, 60_000);
});

// ------------------------------------------------------------------------------ durability, Redis outbox

describe('two instances on one Redis outbox: the instance that stored the events is SIGKILLed', () => {
  const receiver = new Receiver(secret);
  let a: RunningServer | undefined;
  let b: RunningServer | undefined;

  beforeAll(async () => {
    await receiver.reserve();
    const env = {
      AUTH_MODE: 'none',
      REDIS_URL: services.redisUrl,
      REDIS_KEY_PREFIX: `wh${run}:`,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: secret,
      ...RETRIES,
    };
    [a, b] = await Promise.all([startServer({ env }), startServer({ env })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopAndClean(a, 'SIGKILL'), stopAndClean(b)]);
    await receiver.close();
    await clearRedisPrefix(services.redisUrl, `wh${run}:`);
  });

  it('the surviving instance delivers every event, at least once, when the receiver comes up', async () => {
    if (!a || !b) throw new Error('instances did not start');
    const first = a;
    const ids: string[] = [];
    for (const [width, height] of [[320, 240], [400, 300], [480, 360]] as const) {
      const outcome = await upload(first.endpoint, await fixtures.jpeg(width, height));
      expect(outcome.error).toBeUndefined();
      ids.push(idOf(outcome.url ?? ''));
    }
    await until('A stored and attempted every event', () =>
      ids.every((id) => attemptedWhileDown(first, id, 'upload.created') && attemptedWhileDown(first, id, 'artifact.published')),
    );
    expect(await first.stop('SIGKILL')).toBeNull();

    await receiver.listen();
    for (const id of ids) await receiver.waitForEvents(id, ['upload.created', 'artifact.published'], 30_000);
    const events = receiver.accepted().filter((event) => ids.includes(event.payload.data.uploadId));
    expect(events.map((event) => `${event.payload.data.uploadId} ${event.payload.type}`).sort()).toEqual(
      ids.flatMap((id) => [`${id} artifact.published`, `${id} upload.created`]).sort(),
    );
    const survivor = b;
    await until('B logged the deliveries', () => survivor.logs.filter((line) => line.msg === 'webhook delivered' && ids.includes(String(line.uploadId))).length >= 6);
  }, 60_000);
});
