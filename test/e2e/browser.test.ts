/**
 * The demo page in a real browser: Debian's Chromium (installed by the global setup through
 * deploy/services/chromium.sh), driven headless by playwright-core, uploading with the
 * page's own Uppy Dashboard to a real tusgate. Every file is made on the spot (photos with a
 * camera's EXIF, GPS and an orientation; a polyglot; a 40 MiB image).
 *
 * Also takes docs/demo.png, the README's screenshot of the finished state.
 */
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { SignJWT } from 'jose';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import sharp, { type Metadata } from 'sharp';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { demoAssets } from '../../server/demo.ts';
import * as fixtures from '../support/fixtures.ts';
import { request } from '../support/http.ts';
import { ROOT, type LogLine, type RunningServer, startServer, tempDir } from '../support/server.ts';

const MiB = 1024 * 1024;

/**
 * Two photos as a phone makes them, made here (the suite needs nothing beside the clone):
 * a 640x480 JPEG with a camera's EXIF and a GPS position (43.4674 N, 11.8851 E), and a
 * landscape stored 1200x1800 with EXIF orientation 6 (turn 90 degrees clockwise to show).
 */
async function photo(width: number, height: number, label: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#5b8fd6"/><stop offset="1" stop-color="#cfe3f7"/></linearGradient></defs>
    <rect width="100%" height="62%" fill="url(#sky)"/><rect y="62%" width="100%" height="38%" fill="#6b8e3a"/>
    <circle cx="${width * 0.78}" cy="${height * 0.2}" r="${height * 0.08}" fill="#ffe28a"/>
    <path d="M0 ${height * 0.62} L${width * 0.3} ${height * 0.35} L${width * 0.55} ${height * 0.62} Z" fill="#55606e"/>
    <text x="50%" y="${height * 0.12}" font-size="${height * 0.06}" text-anchor="middle" fill="#fff">top</text>
    <text x="50%" y="${height * 0.95}" font-size="${height * 0.06}" text-anchor="middle" fill="#fff">bottom ${label}</text></svg>`;
  return sharp(Buffer.from(svg)).jpeg({ quality: 88 }).toBuffer();
}
const PHOTOS = tempDir('tusgate-photos-');
const GPS_PHOTO = path.join(PHOTOS, 'DSCN0010.jpg');
const ORIENTED_PHOTO = path.join(PHOTOS, 'Landscape_6.jpg');
fs.writeFileSync(
  GPS_PHOTO,
  await sharp(await photo(640, 480, 'gps'))
    .withExif({
      IFD0: { Make: 'NIKON', Model: 'COOLPIX P6000' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '43/1 28/1 264/100', GPSLongitudeRef: 'E', GPSLongitude: '11/1 53/1 624/100' },
    })
    .toBuffer(),
);
// shown upright as 1800x1200: stored turned a quarter counter-clockwise, with orientation 6
fs.writeFileSync(ORIENTED_PHOTO, await sharp(await photo(1800, 1200, '6')).rotate(270).withMetadata({ orientation: 6 }).toBuffer());
afterAll(() => fs.rmSync(PHOTOS, { recursive: true, force: true }));
const SCREENSHOT = path.join(ROOT, 'docs', 'demo.png');

/** What Chromium needs here (the notes): root, no GPU, and nothing phoning home on a closed network. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface Browser {
  context: BrowserContext;
  page: Page;
  /** Every URL the page asked for. */
  requests: string[];
  /** Console errors and uncaught exceptions, less the failed loads that the refusals are. */
  errors: string[];
  close(): Promise<void>;
}

/** A headless Chromium with a fresh profile (its own --user-data-dir), one page open. */
async function openBrowser(): Promise<Browser> {
  const executablePath = inject('chromium');
  if (!executablePath || !fs.existsSync(executablePath)) throw new Error(`no Chromium at "${executablePath}" (deploy/services/chromium.sh ensure)`);
  const profile = tempDir('tusgate-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 960, height: 900 },
    deviceScaleFactor: 1,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // a refusal is a 4xx, which Chromium and Uppy both report on the console: expected; anything else is not
    const refusal = /Failed to load resource: the server responded with a status of 4\d\d|^\[Uppy\].*response code: 4\d\d/;
    if (message.type() === 'error' && !refusal.test(message.text())) {
      errors.push(`console: ${message.text()}`);
    }
  });
  return {
    context,
    page,
    requests,
    errors,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The same page files tusgate serves, from another origin (another port): a tiny static server. */
async function staticDemoServer(): Promise<{ origin: string; close(): Promise<void> }> {
  const assets = demoAssets(ROOT);
  const server = http.createServer((req, res) => {
    const asset = assets.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!asset || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': asset.type, 'Cache-Control': 'no-store' });
    fs.createReadStream(asset.file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A stretch of network between the browser and tusgate (a TCP relay) that the test can
 * cut, with a slow uplink: Chromium's offline emulation does not break a request that is
 * already sending, a network that goes away does.
 */
async function cuttableLink(port: number, uplinkBytesPerSecond: number) {
  let down = false;
  let forwarded = 0;
  let due = 0; // when the uplink is free again (ms)
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      forwarded += chunk.length;
      const now = performance.now();
      due = Math.max(due, now) + (1000 * chunk.length) / uplinkBytesPerSecond;
      if (due - now > 1) {
        client.pause();
        setTimeout(() => client.resume(), due - now);
      }
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    /** Bytes passed on to tusgate so far. */
    forwarded: () => forwarded,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    mend() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        relay.close(() => resolve());
      }),
  };
}

/** Picks files through the Dashboard's own (hidden) file input, as a person's file dialog does. */
async function pick(page: Page, ...files: string[]): Promise<void> {
  // the Dashboard mounts once the page's module and Uppy's have loaded (slower on a busy machine)
  await page.locator('.uppy-Dashboard').first().waitFor({ timeout: 30_000 });
  const input = page.locator('.uppy-Dashboard-input:not([webkitdirectory])');
  // once files are listed, the input is behind the Dashboard's "Add more files" button
  if ((await input.count()) === 0) await page.getByRole('button', { name: 'Add more files' }).click();
  await input.first().setInputFiles(files);
}

/** A file's row, once it has an outcome: done, refused or failed. */
async function outcome(page: Page, name: string, timeout = 60_000) {
  const row = page.locator(`#results li[data-name="${name}"]`);
  await row.and(page.locator('[data-state="done"], [data-state="refused"], [data-state="failed"]')).waitFor({ timeout });
  return {
    row,
    state: await row.getAttribute('data-state'),
    text: (await row.innerText()).replace(/\s+/g, ' '),
    data: await row.evaluate((li: HTMLElement) => ({ ...li.dataset })),
  };
}

async function fetchImage(url: string): Promise<{ buffer: Buffer; meta: Metadata }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const buffer = Buffer.from(await response.arrayBuffer());
  return { buffer, meta: await sharp(buffer).metadata() };
}

function stopped(server: RunningServer | undefined): Promise<unknown> {
  if (!server) return Promise.resolve();
  return server.stop().then(() => fs.rmSync(server.dataDir, { recursive: true, force: true }));
}

/** A PNG signature, then PHP: a disguise that passes a naive magic-number check. */
function polyglot(): Buffer {
  return Buffer.concat([fixtures.PNG_SIGNATURE, Buffer.from('<?php system($_GET["c"]); ?>'.padEnd(4096, ' '))]);
}

/** A ~40 MiB PNG of noise (it does not compress): allowed by the gate, and decodes at the finish. */
async function bigPng(file: string): Promise<number> {
  await fixtures.raw(3640, 3640, 11).png({ compressionLevel: 1 }).toFile(file);
  return fs.statSync(file).size;
}

describe('the demo page, on tusgate itself (no auth on loopback)', () => {
  let server: RunningServer;
  let browser: Browser;
  let work: string;

  beforeAll(async () => {
    work = tempDir('tusgate-browser-');
    server = await startServer();
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await stopped(server);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('serves the page and Uppy’s prebuilt build with their types and caching', async () => {
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await page.text()).toContain('<div id="dashboard">');
    const uppy = await fetch(`${server.url}/demo/uppy.min.mjs`);
    expect(uppy.status).toBe(200);
    expect(uppy.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(uppy.headers.get('cache-control')).toBe('public, max-age=86400');
    const etag = uppy.headers.get('etag') ?? '';
    expect(etag).toMatch(/^".+"$/);
    expect((await uppy.text()).length).toBeGreaterThan(100_000);
    expect((await request(`${server.url}/demo/uppy.min.mjs`, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    const css = await fetch(`${server.url}/demo/uppy.min.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${server.url}/demo/nothing.js`)).status).toBe(404);
  });

  it('uploads two real photos and shows upright copies without EXIF or GPS', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/`);
    // the page learns its endpoint from settings.json: wait for it, the first paint shows '…'
    await expect.poll(() => page.locator('#endpoint').innerText(), { timeout: 15_000 }).toBe(`${server.url}/files/`);
    await pick(page, GPS_PHOTO, ORIENTED_PHOTO);

    const gps = await outcome(page, 'DSCN0010.jpg');
    expect(gps.state, gps.text).toBe('done');
    expect(gps.data).toMatchObject({ format: 'webp', width: '640', height: '480' });
    expect(gps.text).toContain('640 × 480 px');
    expect(gps.text).toMatch(/Metadata removed .*EXIF.*GPS position 43\.46\d*° N, 11\.88\d*° E/);
    expect(gps.text).toContain('NIKON');
    const gpsImage = await fetchImage(gps.data.url ?? '');
    expect(gpsImage.meta.format).toBe('webp');
    expect(gpsImage.meta.exif).toBeUndefined();
    expect(gpsImage.meta.xmp).toBeUndefined();
    expect(gpsImage.buffer.includes(Buffer.from('NIKON'))).toBe(false);
    expect(Number(gps.data.bytes)).toBe(gpsImage.buffer.length);

    const oriented = await outcome(page, 'Landscape_6.jpg');
    expect(oriented.state, oriented.text).toBe('done');
    // stored 1200x1800 with orientation 6: upright it is 1800x1200, landscape
    expect(Number(oriented.data.width)).toBeGreaterThan(Number(oriented.data.height));
    expect(oriented.text).toContain('1800 × 1200 px');
    expect(oriented.text).toContain('orientation 6 (applied to the pixels)');
    const orientedImage = await fetchImage(oriented.data.url ?? '');
    expect([orientedImage.meta.width, orientedImage.meta.height]).toEqual([1800, 1200]);
    expect(orientedImage.meta.orientation).toBeUndefined();
    expect(orientedImage.meta.exif).toBeUndefined();

    // the page shows the published images themselves, decoded by the browser, landscape
    const shown = await oriented.row.locator('img').evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]));
    expect(shown).toEqual([1800, 1200]);
    expect(await gps.row.locator('img').getAttribute('src')).toBe(gps.data.url);
  });

  it('shows the server’s own words for a disguised file (PNG magic, then PHP)', async () => {
    const { page } = browser;
    const file = path.join(work, 'avatar.png');
    fs.writeFileSync(file, polyglot());
    await pick(page, file);
    const refused = await outcome(page, 'avatar.png');
    expect(refused.state, refused.text).toBe('refused');
    const logged = await server.waitForLog((line) => line.msg === 'upload refused by the gate');
    const reason = String(logged.reason);
    expect(reason.length).toBeGreaterThan(10);
    expect(refused.text).toContain(reason);
    expect(refused.text).toContain(String(logged.code));
    expect(refused.text).not.toMatch(/response code|response text/);
  });

  it('asks nothing of any other origin, breaks no policy, and leaves a screenshot', async () => {
    const { page } = browser;
    const elsewhere = browser.requests.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith('blob:') && !url.startsWith('data:'));
    expect(elsewhere).toEqual([]);
    expect(browser.errors).toEqual([]);
    await page.locator('#results li[data-state="done"] img').evaluateAll((imgs: HTMLImageElement[]) => Promise.all(imgs.map((img) => img.decode())));
    const shot = await page.screenshot({ fullPage: true });
    // keep the repository small: a 256-colour PNG
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await sharp(shot).png({ palette: true, colours: 128, compressionLevel: 9, effort: 10 }).toFile(SCREENSHOT);
    expect(fs.statSync(SCREENSHOT).size).toBeLessThan(400 * 1024);
  });
});

describe('the page on another origin, offline in the middle of a 40 MiB upload', () => {
  let server: RunningServer;
  let site: Awaited<ReturnType<typeof staticDemoServer>>;
  let browser: Browser;
  let work: string;

  let big: string;
  let size: number;

  beforeAll(async () => {
    work = tempDir('tusgate-browser-');
    big = path.join(work, 'noise.png');
    size = await bigPng(big);
    site = await staticDemoServer();
    server = await startServer({ env: { ALLOWED_ORIGINS: site.origin } });
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await stopped(server);
    await site?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('resumes from where the server stopped receiving, through CORS', { timeout: 180_000 }, async () => {
    const file = big;
    expect(size).toBeGreaterThan(38 * MiB);
    expect(size).toBeLessThan(42 * MiB);

    const { page } = browser;
    await page.goto(`${site.origin}/?api=${encodeURIComponent(server.url)}`);
    // the page learns its endpoint from settings.json: wait for it, the first paint shows '…'
    await expect.poll(() => page.locator('#endpoint').innerText(), { timeout: 15_000 }).toBe(`${server.url}/files/`);
    // Chromium's offline emulation fails new requests but lets one already sending finish:
    // with 1 MiB chunks, the next chunk after the drop is the one that fails
    await page.selectOption('#chunk-size', { label: '1 MiB' });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    const online = { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
    // a slow uplink, so that there is a middle to cut: 40 MiB at 8 MiB/s
    await cdp.send('Network.emulateNetworkConditions', { ...online, latency: 5, uploadThroughput: 8 * MiB });

    await pick(page, file);
    const row = page.locator('#results li[data-name="noise.png"]');
    const sent = () => row.locator('progress').evaluate((progress: HTMLProgressElement) => progress.value).catch(() => 0);
    await expect.poll(sent, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0.25);
    expect(await sent()).toBeLessThan(0.75);

    await cdp.send('Network.emulateNetworkConditions', { ...online, offline: true });
    await expect.poll(() => page.locator('#network').innerText(), { timeout: 10_000 }).toContain('Offline');
    await expect.poll(() => row.locator('.status').innerText(), { timeout: 10_000 }).toMatch(/Connection lost after [\d.]+ MiB sent/);
    await page.waitForTimeout(3_000);
    const beforeReconnect = server.logs.length;
    await cdp.send('Network.emulateNetworkConditions', online);

    const done = await outcome(page, 'noise.png', 120_000);
    expect(done.state, done.text).toBe('done');
    expect(done.text).toContain('Published (the upload resumed after the network dropped)');
    expect(done.data).toMatchObject({ format: 'webp', width: '2048', height: '2048' });
    expect(await row.locator('img').evaluate((img: HTMLImageElement) => img.decode().then(() => img.naturalWidth))).toBe(2048);

    const id = String(done.data.uploadId);
    expect(server.logs.find((line) => line.msg === 'upload received' && line.uploadId === id)?.bytes).toBe(size);
    // the final PATCH is logged when its response has gone out: the page may have it first
    await server.waitForLog((line) => line.msg === 'request' && line.method === 'PATCH' && line.path === `/files/${id}` && line.status === 200);
    type RequestLine = LogLine & { method: string; path: string; status: number; uploadOffset?: number };
    const requests = server.logs.filter((line): line is RequestLine => line.msg === 'request' && line.path === `/files/${id}`);
    const trace = JSON.stringify(requests.map(({ method, status, uploadOffset }) => [method, status, uploadOffset]));
    // after the reconnect the client asked where to resume (HEAD), then sent the rest from there
    const after = requests.filter((line) => server.logs.indexOf(line) >= beforeReconnect);
    expect(after[0]?.method, trace).toBe('HEAD');
    const resumedAt = Number(after[1]?.uploadOffset);
    expect(after[1]?.method, trace).toBe('PATCH');
    expect(resumedAt, trace).toBeGreaterThan(0);
    expect(resumedAt, trace).toBeLessThan(size);
    // nothing was sent twice: every PATCH starts where the previous one ended, 1 MiB further
    const offsets = requests.filter((line) => line.method === 'PATCH').map((line) => Number(line.uploadOffset));
    expect(offsets, trace).toEqual(Array.from({ length: Math.ceil(size / MiB) }, (_, i) => i * MiB));
    expect(requests.every((line) => line.status < 400), trace).toBe(true);

    // cross-origin for real: the page's origin is not tusgate's, and tusgate allowed it by name
    expect(browser.requests.some((url) => url.startsWith(`${server.url}/files/`))).toBe(true);
    expect(browser.requests.some((url) => url.startsWith(`${site.origin}/demo/uppy.min.mjs`))).toBe(true);
    expect(browser.requests.filter((url) => !url.startsWith(site.origin) && !url.startsWith(server.url) && !/^(blob|data):/.test(url))).toEqual([]);
    // the chunk that went out while offline failed, as it should
    expect(browser.errors.filter((error) => !/Failed to load resource: net::ERR_/.test(error))).toEqual([]);
  });

  it('with no chunk size, resumes the one PATCH a dropped connection broke, from the server’s offset', { timeout: 180_000 }, async () => {
    const link = await cuttableLink(server.port, 8 * MiB);
    try {
      const file = path.join(work, 'noise-again.png');
      fs.copyFileSync(big, file);
      const { page } = browser;
      const cdp = await page.context().newCDPSession(page);
      const online = { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 };
      await cdp.send('Network.emulateNetworkConditions', online);
      await page.goto(`${site.origin}/?api=${encodeURIComponent(link.url)}`);
      await expect(page.locator('#chunk-size').inputValue()).resolves.toBe('0');
      await pick(page, file);
      // a quarter of the file has reached tusgate (the relay's uplink runs at 8 MiB/s)
      await expect.poll(() => link.forwarded(), { timeout: 60_000, interval: 50 }).toBeGreaterThan(size / 4);
      expect(link.forwarded()).toBeLessThan(0.75 * size);

      // the network goes away: the browser is offline and the connection is gone
      await cdp.send('Network.emulateNetworkConditions', { ...online, offline: true });
      link.cut();
      await expect.poll(() => page.locator('#network').innerText(), { timeout: 10_000 }).toContain('Offline');
      await page.waitForTimeout(3_000);
      const beforeReconnect = server.logs.length;
      link.mend();
      await cdp.send('Network.emulateNetworkConditions', online);

      const done = await outcome(page, 'noise-again.png', 120_000);
      expect(done.state, done.text).toBe('done');
      expect(done.text).toContain('Published (the upload resumed after the network dropped)');
      const id = String(done.data.uploadId);
      expect(server.logs.find((line) => line.msg === 'upload received' && line.uploadId === id)?.bytes).toBe(size);
      await server.waitForLog((line) => line.msg === 'request' && line.method === 'PATCH' && line.path === `/files/${id}` && line.status === 200);
      type RequestLine = LogLine & { method: string; path: string; status: number; uploadOffset?: number };
      const after = server.logs.slice(beforeReconnect).filter((line): line is RequestLine => line.msg === 'request' && line.path === `/files/${id}`);
      const trace = JSON.stringify(after.map(({ method, status, uploadOffset }) => [method, status, uploadOffset]));
      expect(after.map((line) => line.method), trace).toEqual(['HEAD', 'PATCH']);
      expect(after[1]?.status, trace).toBe(200);
      // it went on from the bytes the server had kept, not from the start
      expect(Number(after[1]?.uploadOffset), trace).toBeGreaterThan(size / 5);
      expect(Number(after[1]?.uploadOffset), trace).toBeLessThan(0.8 * size);
      // the request the drop broke failed, as it should
      expect(browser.errors.filter((error) => !/Failed to load resource: net::ERR_/.test(error))).toEqual([]);
    } finally {
      await link.close();
    }
  });
});

describe('with AUTH_MODE=jwt and DEMO=1', () => {
  const secret = 'browser-test-secret-that-is-32-chars-or-more';
  let server: RunningServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret, DEMO: '1' } });
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await stopped(server);
  });

  it('shows the 401’s message without a token, and uploads with one pasted in', async () => {
    const { page } = browser;
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.locator('#auth').isVisible(), { timeout: 15_000 }).toBe(true);
    await expect.poll(() => page.locator('#auth pre').innerText(), { timeout: 15_000 }).toContain("req.setHeader('Authorization', `Bearer ${await getToken()}`)");

    await pick(page, GPS_PHOTO);
    const anonymous = await outcome(page, 'DSCN0010.jpg');
    expect(anonymous.state, anonymous.text).toBe('refused');
    const unauthenticated = (await (await fetch(`${server.url}/files/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } })).json()) as {
      error: { code: string; message: string };
    };
    expect(unauthenticated.error.code).toBe('E_UNAUTHENTICATED');
    expect(anonymous.text).toContain(`Refused (401 E_UNAUTHENTICATED): ${unauthenticated.error.message}`);

    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('demo-user').setExpirationTime('10m').sign(new TextEncoder().encode(secret));
    await page.locator('#token').fill(token);
    await page.evaluate(() => (window as unknown as { uppy: { clear(): void } }).uppy.clear());
    await page.evaluate(() => document.querySelector('#results')?.replaceChildren());
    await pick(page, ORIENTED_PHOTO);
    const signedIn = await outcome(page, 'Landscape_6.jpg');
    expect(signedIn.state, signedIn.text).toBe('done');
    expect(Number(signedIn.data.width)).toBeGreaterThan(Number(signedIn.data.height));
    // the server's log line arrives through a pipe, possibly after the page showed the result
    await server.waitForLog((line) => line.msg === 'request' && line.method === 'POST' && line.status === 201, 10_000);
    expect(browser.errors).toEqual([]);
  });

  it('is off with auth unless DEMO=1', async () => {
    const closed = await startServer({ env: { AUTH_MODE: 'jwt', AUTH_JWT_SECRET: secret } });
    try {
      for (const where of ['/', '/demo/uppy.min.mjs', '/demo/settings.json']) {
        const response = await fetch(`${closed.url}${where}`);
        expect(response.status, where).toBe(404);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('E_NOT_FOUND');
      }
      expect(closed.logs.some((line) => String(line.msg).startsWith('demo page off (AUTH_MODE=jwt)'))).toBe(true);
    } finally {
      await stopped(closed);
    }
  });
});
