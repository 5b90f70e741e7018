/**
 * Upload profiles (PROFILES_FILE) and per-account limits (rate-limiter-flexible), end to
 * end: real tusgate processes, HS256 tokens, raw HTTP and tus-js-client; the avatar profile
 * crops to exactly 512 x 512 (checked by decoding the served artifact with sharp), a
 * profile is chosen by the credential (or PUBLIC_PROFILES without auth), its size limit
 * applies at creation; RATE_LIMIT_CREATES_PER_MIN, MAX_ACTIVE_UPLOADS, QUOTA_BYTES_PER_DAY,
 * and one create budget shared by two instances behind nginx through the suite's Redis.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { patch, request, TUS, type RawResponse } from '../support/http.ts';
import { bearer, signHs256 } from '../support/identity.ts';
import { freePort, startServer, tempDir, type RunningServer } from '../support/server.ts';
import { clearRedisPrefix, type Nginx, startNginx } from '../support/services.ts';
import { errorCode, upload as authUpload } from '../support/tus.ts';

const services = inject('services');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const idOf = (url: string) => url.split('/').pop() ?? '';
const b64 = (text: string) => Buffer.from(text).toString('base64');
const SECRET = 'profiles-and-quotas-hs256-secret-0123456789';
const MiB = 1024 * 1024;
/** Subjects unique to this run (Redis outlives a run; the file state does not). */
const run = randomBytes(4).toString('hex');
const token = (sub: string, profile?: string) => signHs256(SECRET, { sub: `${sub}-${run}`, ...(profile ? { profile } : {}) });

const PROFILES = {
  avatar: {
    allowedTypes: ['image/jpeg', 'image/png', 'image/webp'],
    maxUploadBytes: 5 * MiB,
    maxFrames: 1,
    output: { fit: 'cover', width: 512, height: 512, format: 'webp' },
    animation: 'first-frame',
  },
  banner: { output: { fit: 'inside', longEdge: 300 } },
};

interface Artifact {
  id: string;
  url: string;
  format: string;
  width: number;
  height: number;
  profile?: string;
  original: { bytes: number; sha256: string };
}

const dirs: string[] = [];
let profilesFile: string;

beforeAll(() => {
  const dir = tempDir('tusgate-profiles-');
  dirs.push(dir);
  profilesFile = path.join(dir, 'profiles.json');
  fs.writeFileSync(profilesFile, JSON.stringify(PROFILES));
});

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}


async function stopAndClean(server: RunningServer | undefined): Promise<void> {
  if (!server) return;
  await server.stop();
  fs.rmSync(server.dataDir, { recursive: true, force: true });
}

function post(endpoint: string, length: number, headers: Record<string, string> = {}): Promise<RawResponse> {
  return request(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), ...headers } });
}

function refusal(res: RawResponse): { code: string; message: string } {
  return res.json<{ error: { code: string; message: string } }>().error;
}

/** The artifact as served: decoded by sharp. */
async function served(url: string): Promise<Metadata> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return sharp(Buffer.from(await response.arrayBuffer())).metadata();
}

// ------------------------------------------------------------------------------ profiles, jwt

describe('profiles with AUTH_MODE=jwt', () => {
  let server: RunningServer;
  let photo: Buffer;

  beforeAll(async () => {
    [server, photo] = await Promise.all([
      startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET, PROFILES_FILE: profilesFile } }),
      fixtures.jpeg(1200, 800),
    ]);
  }, 60_000);
  afterAll(() => stopAndClean(server));

  it('a token with profile "avatar": a 1200x800 JPEG becomes exactly 512x512 WebP; the body and the record carry the profile', async () => {
    const auth = bearer(await token('ada', 'avatar'));
    const outcome = await authUpload(server.endpoint, photo, { headers: auth, chunkSize: 64 * 1024 });
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(200);
    const body = outcome.body as Artifact;
    expect(body).toMatchObject({ format: 'webp', width: 512, height: 512, profile: 'avatar', original: { bytes: photo.length, sha256: sha(photo) } });
    const decoded = await served(body.url);
    expect([decoded.format, decoded.width, decoded.height]).toEqual(['webp', 512, 512]);
    const record = await request(`${server.url}/uploads/${idOf(outcome.url ?? '')}`, { headers: auth });
    expect(record.json()).toMatchObject({ state: 'done', profile: 'avatar', width: 512, height: 512, url: body.url });
  }, 20_000);

  it('a token without the claim asking for "avatar" in Upload-Metadata: 403 E_PROFILE_NOT_ALLOWED at creation', async () => {
    const res = await post(server.endpoint, photo.length, { ...bearer(await token('bea')), 'Upload-Metadata': `profile ${b64('avatar')},filename ${b64('a.jpg')}` });
    expect([res.status, refusal(res).code]).toEqual([403, 'E_PROFILE_NOT_ALLOWED']);
    expect(refusal(res).message).toContain('"avatar"');
    expect(res.headers.location).toBeUndefined();
    // the same with tus-js-client: the refusal reaches onError
    const outcome = await authUpload(server.endpoint, photo, { headers: bearer(await token('bea')), metadata: { filename: 'a.jpg', filetype: 'image/jpeg', profile: 'avatar' } });
    expect([outcome.status, errorCode(outcome)]).toEqual([403, 'E_PROFILE_NOT_ALLOWED']);
  }, 15_000);

  it('a token granting "avatar" cannot ask for another profile, and a claim naming no profile is refused', async () => {
    const other = await post(server.endpoint, photo.length, { ...bearer(await token('cid', 'avatar')), 'Upload-Metadata': `profile ${b64('banner')}` });
    expect([other.status, refusal(other).code]).toEqual([403, 'E_PROFILE_NOT_ALLOWED']);
    const ghost = await post(server.endpoint, photo.length, bearer(await token('cid', 'ghost')));
    expect([ghost.status, refusal(ghost).code]).toEqual([403, 'E_PROFILE_NOT_ALLOWED']);
  }, 10_000);

  it('a token with profile "avatar" and an Upload-Length over its 5 MiB: 413 E_UPLOAD_TOO_LARGE naming the profile\'s limit; exactly 5 MiB is created', async () => {
    const auth = bearer(await token('dan', 'avatar'));
    const over = await post(server.endpoint, 5 * MiB + 1, auth);
    expect([over.status, refusal(over).code]).toEqual([413, 'E_UPLOAD_TOO_LARGE']);
    expect(refusal(over).message).toContain('5,242,880');
    expect(refusal(over).message).toContain('profile avatar');
    expect(over.headers.location).toBeUndefined();
    const exact = await post(server.endpoint, 5 * MiB, auth);
    expect(exact.status).toBe(201);
    // the default profile (no claim) has the default 50 MiB limit
    expect((await post(server.endpoint, 5 * MiB + 1, bearer(await token('dan')))).status).toBe(201);
  }, 10_000);

  it('the avatar profile\'s allowed types bind its uploads: a GIF is refused (415 E_TYPE_NOT_ALLOWED) for avatar, admitted for default', async () => {
    const gif = await fixtures.gif(320, 240);
    const avatar = await authUpload(server.endpoint, gif, { headers: bearer(await token('eli', 'avatar')), metadata: { filename: 'a.gif', filetype: 'image/gif' } });
    expect([avatar.status, errorCode(avatar)]).toEqual([415, 'E_TYPE_NOT_ALLOWED']);
    const plain = await authUpload(server.endpoint, gif, { headers: bearer(await token('eli')), metadata: { filename: 'a.gif', filetype: 'image/gif' } });
    expect(plain.error).toBeUndefined();
    expect(plain.body).toMatchObject({ profile: 'default', width: 320, height: 240 });
  }, 15_000);
});

// ------------------------------------------------------------------------------ profiles, no auth

describe('profiles with AUTH_MODE=none and PUBLIC_PROFILES=avatar', () => {
  let server: RunningServer;
  let photo: Buffer;

  beforeAll(async () => {
    [server, photo] = await Promise.all([
      startServer({ env: { AUTH_MODE: 'none', PROFILES_FILE: profilesFile, PUBLIC_PROFILES: 'avatar' } }),
      fixtures.jpeg(1200, 800),
    ]);
  }, 60_000);
  afterAll(() => stopAndClean(server));

  it('the metadata key `profile avatar` selects it: 512x512, and the record says avatar', async () => {
    const outcome = await authUpload(server.endpoint, photo, { metadata: { filename: 'me.jpg', filetype: 'image/jpeg', profile: 'avatar' } });
    expect(outcome.error).toBeUndefined();
    const body = outcome.body as Artifact;
    expect(body).toMatchObject({ width: 512, height: 512, profile: 'avatar' });
    const decoded = await served(body.url);
    expect([decoded.width, decoded.height]).toEqual([512, 512]);
    expect((await request(`${server.url}/uploads/${body.id}`)).json()).toMatchObject({ state: 'done', profile: 'avatar' });
  }, 15_000);

  it('without the key: the default profile (the aspect kept)', async () => {
    const outcome = await authUpload(server.endpoint, photo);
    expect(outcome.body).toMatchObject({ width: 1200, height: 800, profile: 'default' });
  }, 15_000);

  it('a profile not in PUBLIC_PROFILES (defined or not): 403 E_PROFILE_NOT_ALLOWED', async () => {
    for (const name of ['banner', 'nope']) {
      const res = await post(server.endpoint, photo.length, { 'Upload-Metadata': `profile ${b64(name)}` });
      expect([name, res.status, refusal(res).code]).toEqual([name, 403, 'E_PROFILE_NOT_ALLOWED']);
      expect(res.headers.location).toBeUndefined();
    }
  }, 10_000);
});

// ------------------------------------------------------------------------------ quotas, one instance

describe('RATE_LIMIT_CREATES_PER_MIN=3 (in process)', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET, RATE_LIMIT_CREATES_PER_MIN: '3', MAX_ACTIVE_UPLOADS: '0' } });
  }, 60_000);
  afterAll(() => stopAndClean(server));

  it('the 4th POST of a subject: 429 E_RATE_LIMITED with Retry-After, naming RATE_LIMIT_CREATES_PER_MIN; another subject is not affected', async () => {
    const first = bearer(await token('rate-1'));
    for (let i = 0; i < 3; i++) expect((await post(server.endpoint, 1000, first)).status).toBe(201);
    const fourth = await post(server.endpoint, 1000, first);
    expect([fourth.status, refusal(fourth).code]).toEqual([429, 'E_RATE_LIMITED']);
    expect(refusal(fourth).message).toContain('RATE_LIMIT_CREATES_PER_MIN');
    const retryAfter = Number(fourth.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(fourth.headers.location).toBeUndefined();
    // tus-js-client sees the 429 too
    const viaClient = await authUpload(server.endpoint, await fixtures.jpeg(64, 48), { headers: first });
    expect([viaClient.status, errorCode(viaClient)]).toEqual([429, 'E_RATE_LIMITED']);

    const second = bearer(await token('rate-2'));
    expect((await post(server.endpoint, 1000, second)).status).toBe(201);
  }, 15_000);
});

describe('MAX_ACTIVE_UPLOADS=2 and QUOTA_BYTES_PER_DAY=3000000 (in process)', () => {
  let server: RunningServer;
  let image: Buffer;

  beforeAll(async () => {
    [server, image] = await Promise.all([
      startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: SECRET, MAX_ACTIVE_UPLOADS: '2', QUOTA_BYTES_PER_DAY: '3000000', RATE_LIMIT_CREATES_PER_MIN: '0' } }),
      fixtures.jpeg(640, 480),
    ]);
  }, 60_000);
  afterAll(() => stopAndClean(server));

  it('a third unfinished upload: 429 E_QUOTA_EXCEEDED naming MAX_ACTIVE_UPLOADS; after one completes (or is terminated), creating works again', async () => {
    const auth = bearer(await token('active'));
    const created = [];
    for (let i = 0; i < 2; i++) {
      const res = await post(server.endpoint, image.length, auth);
      expect(res.status).toBe(201);
      created.push(String(res.headers.location));
    }
    const third = await post(server.endpoint, image.length, auth);
    expect([third.status, refusal(third).code]).toEqual([429, 'E_QUOTA_EXCEEDED']);
    expect(refusal(third).message).toContain('MAX_ACTIVE_UPLOADS');
    expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // another subject has its own count
    expect((await post(server.endpoint, image.length, bearer(await token('active-other')))).status).toBe(201);

    const done = await patch(created[0] ?? '', 0, image, auth);
    expect(done.status).toBe(200);
    const again = await post(server.endpoint, image.length, auth);
    expect(again.status).toBe(201);
    expect((await post(server.endpoint, image.length, auth)).status).toBe(429);

    // terminating an unfinished upload frees its place as well
    const terminated = await request(created[1] ?? '', { method: 'DELETE', headers: { ...TUS, ...auth } });
    expect(terminated.status).toBe(204);
    expect((await post(server.endpoint, image.length, auth)).status).toBe(201);
  }, 20_000);

  it('an Upload-Length over QUOTA_BYTES_PER_DAY: 429 E_QUOTA_EXCEEDED naming it, with Retry-After', async () => {
    const res = await post(server.endpoint, 3_000_001, bearer(await token('bytes-1')));
    expect([res.status, refusal(res).code]).toEqual([429, 'E_QUOTA_EXCEEDED']);
    expect(refusal(res).message).toContain('QUOTA_BYTES_PER_DAY');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(res.headers.location).toBeUndefined();
  }, 10_000);

  it('the day\'s bytes add up: 2,900,000 then 200,000 more is over the quota', async () => {
    const auth = bearer(await token('bytes-2'));
    expect((await post(server.endpoint, 2_900_000, auth)).status).toBe(201);
    const over = await post(server.endpoint, 200_000, auth);
    expect([over.status, refusal(over).code]).toEqual([429, 'E_QUOTA_EXCEEDED']);
    expect(refusal(over).message).toContain('QUOTA_BYTES_PER_DAY');
  }, 10_000);

  it('a refused creation is not charged: what was refused does not count against QUOTA_BYTES_PER_DAY', async () => {
    const outcome = (res: RawResponse) => (res.status === 201 ? 'created' : `${res.status} ${refusal(res).message}`);
    // 3,000,001 bytes refused, then 2,900,000 bytes fit the untouched quota
    const first = bearer(await token('bytes-3'));
    expect((await post(server.endpoint, 3_000_001, first)).status).toBe(429);
    const afterRefusal = await post(server.endpoint, 2_900_000, first);
    // 2,900,000 bytes charged, 200,000 more refused, then 100,000 bytes fit what is left
    const second = bearer(await token('bytes-4'));
    expect((await post(server.endpoint, 2_900_000, second)).status).toBe(201);
    expect((await post(server.endpoint, 200_000, second)).status).toBe(429);
    const rest = await post(server.endpoint, 100_000, second);
    // 2,900,000 bytes of a PDF refused at creation (415, after the quota check), then 2,900,000 bytes of an image fit
    const third = bearer(await token('bytes-5'));
    const pdf = await post(server.endpoint, 2_900_000, { ...third, 'Upload-Metadata': `filename ${b64('doc.pdf')},filetype ${b64('application/pdf')}` });
    expect(pdf.status).toBe(415);
    const afterTypeRefusal = await post(server.endpoint, 2_900_000, third);
    expect({ afterRefusal: outcome(afterRefusal), rest: outcome(rest), afterTypeRefusal: outcome(afterTypeRefusal) }).toEqual({
      afterRefusal: 'created',
      rest: 'created',
      afterTypeRefusal: 'created',
    });
  }, 10_000);
});

// ------------------------------------------------------------------------------ quotas, two instances

describe('RATE_LIMIT_CREATES_PER_MIN=4 shared by two instances behind nginx (Redis)', () => {
  let a: RunningServer;
  let b: RunningServer;
  let nginx: Nginx;

  beforeAll(async () => {
    const env = {
      AUTH_MODE: 'jwt',
      AUTH_JWT_SECRET: SECRET,
      REDIS_URL: services.redisUrl,
      REDIS_KEY_PREFIX: `rl${run}:`,
      RATE_LIMIT_CREATES_PER_MIN: '4',
      MAX_ACTIVE_UPLOADS: '0',
      TRUST_PROXY: 'true',
    };
    const ports = [await freePort(), await freePort()];
    [a, b] = (await Promise.all(ports.map((port) => startServer({ port, env })))) as [RunningServer, RunningServer];
    nginx = await startNginx(services, ports);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([stopAndClean(a), stopAndClean(b), nginx?.stop()]);
    await clearRedisPrefix(services.redisUrl, `rl${run}:`);
  });

  const createsAnswered = (server: RunningServer, status: number) =>
    server.logs.filter((line) => line.msg === 'request' && line.method === 'POST' && line.status === status).length;

  it('4 POSTs through nginx succeed (on both instances), the 5th is 429 whichever instance answers', async () => {
    const auth = bearer(await token('shared'));
    const endpoint = `${nginx.url}/files/`;
    for (let i = 0; i < 4; i++) {
      const res = await post(endpoint, 1000, auth);
      expect([i, res.status]).toEqual([i, 201]);
      expect(String(res.headers.location).startsWith(`${nginx.url}/files/`)).toBe(true);
    }
    // the budget was spent on both instances: neither has 4 of its own (log lines arrive through a pipe: wait for them)
    await until('both instances logged the 4 creations', () => createsAnswered(a, 201) + createsAnswered(b, 201) >= 4);
    expect(createsAnswered(a, 201)).toBeGreaterThan(0);
    expect(createsAnswered(b, 201)).toBeGreaterThan(0);
    expect(createsAnswered(a, 201) + createsAnswered(b, 201)).toBe(4);

    const fifth = await post(endpoint, 1000, auth);
    expect([fifth.status, refusal(fifth).code]).toEqual([429, 'E_RATE_LIMITED']);
    for (const server of [a, b]) {
      const direct = await post(server.endpoint, 1000, auth);
      expect([server.port, direct.status, refusal(direct).code]).toEqual([server.port, 429, 'E_RATE_LIMITED']);
      expect(Number(direct.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // another subject has its own budget
    expect((await post(endpoint, 1000, bearer(await token('shared-other')))).status).toBe(201);
  }, 20_000);
});
