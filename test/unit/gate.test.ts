/**
 * judge(): the gate's verdict from the first bytes of an upload, with the policy the server
 * builds from its configuration (defaults unless a test sets an environment variable).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ERROR_STATUS, groupDigits, type ErrorCode } from '../../hooks/errors.ts';
import { type Verdict, judge } from '../../hooks/gate.ts';
import type { Policy } from '../../hooks/policy.ts';
import { loadConfig, policyOf } from '../../server/config.ts';
import * as fx from '../support/fixtures.ts';
import {
  PNG_SIGNATURE,
  acTL,
  animatedWebpDeclaring,
  apng,
  avifDeclaring,
  gifDeclaring,
  insertPngChunks,
  pngChunk,
  pngChunks,
} from './fixtures-extra.ts';

/** The policy the server derives from its configuration. */
function policyFrom(env: Record<string, string> = {}): Policy {
  return policyOf(loadConfig(env));
}

const ALL_ALLOWED = 'Allowed types: image/jpeg, image/png, image/webp, image/gif, image/avif.';
const KiB = 1024;

let policy: Policy;
beforeAll(() => {
  policy = policyFrom();
});

function refusalOf(verdict: Verdict): { code: ErrorCode; status: number; message: string } {
  if (verdict.kind !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(verdict)}`);
  return { code: verdict.refusal.code, status: verdict.refusal.status_code, message: verdict.refusal.message };
}

async function refused(data: Uint8Array, complete = true, p: Policy = policy) {
  return refusalOf(await judge(data, complete, p));
}

describe('the default policy', () => {
  it('is what the configuration documents', () => {
    expect(policy).toEqual({
      names: {
        allowedTypes: 'ALLOWED_TYPES',
        maxUploadBytes: 'MAX_UPLOAD_BYTES',
        maxPixels: 'MAX_PIXELS',
        maxDimension: 'MAX_DIMENSION',
        maxFrames: 'MAX_FRAMES',
        maxTotalPixels: 'MAX_TOTAL_PIXELS',
      },
      allowedTypes: ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif'],
      maxUploadBytes: 50 * KiB * KiB,
      maxPixels: 50_000_000,
      maxDimension: 16383,
      maxFrames: 100,
      maxTotalPixels: 200_000_000,
      windowBytes: 256 * KiB,
      metadataBytes: 2 * KiB * KiB,
    });
  });
});

describe('allowed images', () => {
  const cases: [string, () => Promise<Buffer> | Buffer, object][] = [
    ['baseline JPEG', () => fx.jpeg(640, 480), { mime: 'image/jpeg', width: 640, height: 480, frames: 1 }],
    ['progressive JPEG', () => fx.gradient(320, 200).jpeg({ progressive: true }).toBuffer(), { mime: 'image/jpeg', width: 320, height: 200, frames: 1 }],
    ['JPEG behind a 60 KiB APP1', () => fx.jpegWithLargeApp1(), { mime: 'image/jpeg', width: 800, height: 600, frames: 1 }],
    ['PNG', () => fx.png(640, 480), { mime: 'image/png', width: 640, height: 480, frames: 1 }],
    ['APNG (reported as image/png)', () => apng(3, 32, 24), { mime: 'image/png', width: 32, height: 24, frames: 3 }],
    ['still GIF', () => fx.gif(320, 240), { mime: 'image/gif', width: 320, height: 240, frames: 1 }],
    ['animated GIF', () => fx.animated('gif', 3, 64, 48), { mime: 'image/gif', width: 64, height: 48, frames: 3 }],
    ['lossy WebP', () => fx.webp(640, 480), { mime: 'image/webp', width: 640, height: 480, frames: 1 }],
    ['lossless WebP', () => fx.webpLossless(64, 48), { mime: 'image/webp', width: 64, height: 48, frames: 1 }],
    ['animated WebP', () => fx.animated('webp', 3, 64, 48), { mime: 'image/webp', width: 64, height: 48, frames: 3 }],
    ['AVIF', () => fx.avif(320, 240), { mime: 'image/avif', width: 320, height: 240, frames: 1 }],
  ];

  it.each(cases)('%s: allowed with its facts', async (_name, make, facts) => {
    expect(await judge(await make(), true, policy)).toEqual({ kind: 'allow', image: { ...facts, framesKnown: true } });
  });
});

describe('the type, from the bytes', () => {
  it('random bytes: E_TYPE_UNKNOWN (415), listing the allowed types', async () => {
    const refusal = await refused(fx.randomBytesOf(64 * KiB), false);
    expect(refusal).toMatchObject({ code: 'E_TYPE_UNKNOWN', status: 415 });
    expect(refusal.message).toContain(ALL_ALLOWED);
  });

  it('unknown bytes: need-more until file-type has its 4,100 bytes, unless the upload is complete', async () => {
    const data = fx.randomBytesOf(8 * KiB);
    expect(await judge(data.subarray(0, 4099), false, policy)).toEqual({ kind: 'need-more' });
    expect((await refused(data.subarray(0, 4100), false)).code).toBe('E_TYPE_UNKNOWN');
    expect((await refused(data.subarray(0, 100), true)).code).toBe('E_TYPE_UNKNOWN');
  });

  it('an HTML page: E_TYPE_UNKNOWN (415), since file-type names no text format', async () => {
    expect(await refused(fx.htmlPage(10_000), false)).toMatchObject({ code: 'E_TYPE_UNKNOWN', status: 415 });
  });

  it.each([
    ['PDF', () => fx.pdfLike(), 'application/pdf'],
    ['TIFF', () => fx.tiff(), 'image/tiff'],
    ['HEIC', () => fx.heicLike(), 'image/heic'],
  ])('%s: E_TYPE_NOT_ALLOWED (415), naming the detected type and the allowed list', async (_name, make, mime) => {
    const refusal = await refused(await make(), true);
    expect(refusal).toMatchObject({ code: 'E_TYPE_NOT_ALLOWED', status: 415 });
    expect(refusal.message).toContain(`The upload is ${mime} `);
    expect(refusal.message).toContain(ALL_ALLOWED);
  });

  it('a type left out of ALLOWED_TYPES is refused, and the message lists only the allowed ones', async () => {
    const jpegAndWebp = policyFrom({ ALLOWED_TYPES: 'image/jpeg,image/webp' });
    const refusal = await refused(await fx.png(), true, jpegAndWebp);
    expect(refusal).toMatchObject({ code: 'E_TYPE_NOT_ALLOWED', status: 415 });
    expect(refusal.message).toContain('image/png');
    expect(refusal.message).toContain('Allowed types: image/jpeg, image/webp.');
    expect((await judge(await fx.jpeg(), true, jpegAndWebp)).kind).toBe('allow');
  });

  it('a disallowed type is refused once file-type has seen 4,100 bytes (or the whole upload), not on a shorter prefix', async () => {
    const pdf = fx.pdfLike();
    expect(await judge(pdf.subarray(0, 100), false, policy)).toEqual({ kind: 'need-more' });
    expect((await refused(pdf.subarray(0, 4100), false)).code).toBe('E_TYPE_NOT_ALLOWED');
    expect((await refused(pdf.subarray(0, 100), true)).code).toBe('E_TYPE_NOT_ALLOWED');
  });

  it('an AVIF is never refused on a short prefix (its first 9-11 bytes look like video/mp4 to file-type)', async () => {
    const avif = await fx.avif();
    for (let n = 0; n <= 64; n++) {
      expect({ n, kind: (await judge(avif.subarray(0, n), false, policy)).kind }).toEqual({ n, kind: 'need-more' });
    }
  });
});

describe('a recognised type whose header does not parse', () => {
  it('PNG magic followed by HTML: E_TYPE_UNKNOWN (file-type wants a PNG chunk after the signature)', async () => {
    expect(await refused(fx.pngMagicThenHtml(), false)).toMatchObject({ code: 'E_TYPE_UNKNOWN', status: 415 });
  });

  it.each([
    ['PNG whose IHDR declares 0x0', () => fx.pngBomb(0, 0, 1), 'image/png'],
    // Apple's CgBI PNG: file-type accepts a CgBI chunk before IHDR; the reader wants IHDR first
    ['PNG whose first chunk is not IHDR (CgBI)', () => Buffer.concat([PNG_SIGNATURE, pngChunk('CgBI', Buffer.alloc(4)), fx.pngBomb(64, 64, 1).subarray(8)]), 'image/png'],
    ['JPEG SOI then a segment of length 1', () => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01]), fx.htmlPage(5000)]), 'image/jpeg'],
    ['GIF signature then HTML', () => Buffer.concat([Buffer.from('GIF89a', 'latin1'), fx.htmlPage(5000)]), 'image/gif'],
    ['RIFF/WEBP then HTML', () => Buffer.concat([Buffer.from('RIFF\x00\x20\x00\x00WEBP', 'latin1'), fx.htmlPage(5000)]), 'image/webp'],
    ['AVIF ftyp then HTML', () => Buffer.concat([avifDeclaring([[1, 1]]).subarray(0, 28), fx.htmlPage(5000)]), 'image/avif'],
    ['truncated JPEG header', async () => (await fx.jpeg()).subarray(0, 100), 'image/jpeg'],
  ])('%s: E_HEADER_UNREADABLE (422)', async (_name, make, mime) => {
    const verdict = await judge(await make(), true, policy);
    expect(refusalOf(verdict)).toMatchObject({ code: 'E_HEADER_UNREADABLE', status: 422, message: expect.stringContaining(`The ${mime} header is broken`) });
  });
});

describe('declared size', () => {
  it('a 65535x65535 PNG bomb: E_DIMENSIONS_TOO_LARGE (422) from its first 33 bytes', async () => {
    const bomb = fx.pngBomb(65535, 65535, 4);
    const refusal = await refused(bomb.subarray(0, 33), false);
    expect(refusal).toMatchObject({ code: 'E_DIMENSIONS_TOO_LARGE', status: 422 });
    expect(refusal.message).toMatch(/65535x65535 pixels.*at most 16,383 pixels \(MAX_DIMENSION\)/);
    expect((await refused(bomb, true)).code).toBe('E_DIMENSIONS_TOO_LARGE');
  });

  it.each([
    ['JPEG bomb (65500x65500)', () => fx.jpegBomb()],
    ['GIF frame bomb (1x1 screen, 60000x60000 frame)', () => fx.gifFrameBomb()],
    ['AVIF declaring 20000x100', () => avifDeclaring([[20_000, 100]])],
    ['animated WebP declaring 100x20000', () => animatedWebpDeclaring(100, 20_000, 2)],
  ])('%s: E_DIMENSIONS_TOO_LARGE', async (_name, make) => {
    expect(await refused(make(), true)).toMatchObject({ code: 'E_DIMENSIONS_TOO_LARGE', status: 422 });
  });

  it('MAX_DIMENSION is inclusive, on either side', async () => {
    expect(await judge(fx.pngBomb(16383, 1, 1), true, policy)).toMatchObject({ kind: 'allow', image: { width: 16383, height: 1 } });
    expect((await refused(fx.pngBomb(16384, 1, 1))).code).toBe('E_DIMENSIONS_TOO_LARGE');
    expect((await refused(fx.pngBomb(1, 16384, 1))).code).toBe('E_DIMENSIONS_TOO_LARGE');
  });

  it('over MAX_PIXELS: E_TOO_MANY_PIXELS (422), naming the count, the limit and the variable', async () => {
    const refusal = await refused(fx.pngBomb(10_000, 10_000, 1));
    expect(refusal).toMatchObject({ code: 'E_TOO_MANY_PIXELS', status: 422 });
    expect(refusal.message).toContain('10000x10000 = 100,000,000 pixels');
    expect(refusal.message).toContain('the limit is 50,000,000 pixels (MAX_PIXELS)');
    expect((await refused(fx.jpegBomb(8000, 8000))).code).toBe('E_TOO_MANY_PIXELS');
  });

  it('MAX_PIXELS is inclusive', async () => {
    expect((await judge(fx.pngBomb(10_000, 5_000, 1), true, policy)).kind).toBe('allow');
    expect((await refused(fx.pngBomb(10_000, 5_001, 1))).code).toBe('E_TOO_MANY_PIXELS');
  });

  it('the limits follow MAX_PIXELS and MAX_DIMENSION from the environment', async () => {
    const jpeg = await fx.jpeg(640, 480);
    const pixels = await refused(jpeg, true, policyFrom({ MAX_PIXELS: '300000' }));
    expect(pixels).toMatchObject({ code: 'E_TOO_MANY_PIXELS', message: expect.stringContaining('300,000 pixels (MAX_PIXELS)') });
    const side = await refused(jpeg, true, policyFrom({ MAX_DIMENSION: '600' }));
    expect(side).toMatchObject({ code: 'E_DIMENSIONS_TOO_LARGE', message: expect.stringContaining('at most 600 pixels (MAX_DIMENSION)') });
    expect((await judge(jpeg, true, policyFrom({ MAX_PIXELS: '307200', MAX_DIMENSION: '640' }))).kind).toBe('allow');
  });
});

describe('frames', () => {
  it.each(['gif', 'webp'] as const)('animated %s: 100 frames pass, 101 are E_TOO_MANY_FRAMES (422)', async (format) => {
    expect(await judge(await fx.animated(format, 100, 8, 8), true, policy)).toMatchObject({ kind: 'allow', image: { frames: 100, framesKnown: true } });
    const refusal = await refused(await fx.animated(format, 101, 8, 8));
    expect(refusal).toMatchObject({ code: 'E_TOO_MANY_FRAMES', status: 422 });
    expect(refusal.message).toContain('the limit is 100 frames (MAX_FRAMES)');
  });

  it('APNG: the acTL count is checked from the header alone', async () => {
    const file = apng(101, 4, 4);
    const actl = pngChunks(file).find((chunk) => chunk.type === 'acTL');
    const headerOnly = file.subarray(0, (actl?.offset ?? 0) + 16);
    expect((await refused(headerOnly, false)).code).toBe('E_TOO_MANY_FRAMES');
    expect((await judge(apng(100, 4, 4), true, policy)).kind).toBe('allow');
  });

  it('a GIF is refused as soon as the frame over the limit is seen, before its end', async () => {
    const file = await fx.animated('gif', 150, 8, 8);
    let first: { n: number; verdict: Verdict } | undefined;
    for (let n = 256; n < file.length && !first; n += 256) {
      const verdict = await judge(file.subarray(0, n), false, policy);
      if (verdict.kind !== 'need-more') first = { n, verdict };
    }
    expect(first?.n).toBeLessThan(file.length * 0.8);
    expect(first && refusalOf(first.verdict).code).toBe('E_TOO_MANY_FRAMES');
  });

  it('MAX_FRAMES comes from the environment', async () => {
    const refusal = await refused(await fx.animated('gif', 3, 8, 8), true, policyFrom({ MAX_FRAMES: '2' }));
    expect(refusal).toMatchObject({ code: 'E_TOO_MANY_FRAMES', message: expect.stringContaining('the limit is 2 frames (MAX_FRAMES)') });
  });

  it.each([
    ['GIF', (frames: number) => gifDeclaring(10_000, 5_000, frames)],
    ['WebP', (frames: number) => animatedWebpDeclaring(10_000, 5_000, frames)],
    ['APNG', (frames: number) => insertPngChunks(fx.pngBomb(10_000, 5_000, 1), 'IDAT', acTL(frames))],
  ])('%s of 10000x5000 frames: 4 frames (200 MP, the limit) pass, 5 (250 MP) are E_TOO_MANY_TOTAL_PIXELS', async (_name, make) => {
    expect(await judge(make(4), true, policy)).toMatchObject({ kind: 'allow', image: { width: 10_000, height: 5_000, frames: 4 } });
    const refusal = await refused(make(5));
    expect(refusal).toMatchObject({ code: 'E_TOO_MANY_TOTAL_PIXELS', status: 422 });
    expect(refusal.message).toContain('5 frames of 50,000,000 pixels = 250,000,000 pixels');
    expect(refusal.message).toContain('the limit is 200,000,000 pixels (MAX_TOTAL_PIXELS)');
  });
});

describe('empty uploads', () => {
  it('zero bytes, complete: E_EMPTY_UPLOAD (422)', async () => {
    expect(await refused(new Uint8Array(0), true)).toMatchObject({ code: 'E_EMPTY_UPLOAD', status: 422 });
  });

  it('zero bytes, more to come: need-more', async () => {
    expect(await judge(new Uint8Array(0), false, policy)).toEqual({ kind: 'need-more' });
  });
});

// --- fed in pieces ---

type Summary = { kind: 'need-more' } | { kind: 'refuse'; code: ErrorCode } | { kind: 'allow'; mime: string; width: number; height: number; frames: number };

function summarise(verdict: Verdict): Summary {
  if (verdict.kind === 'refuse') return { kind: 'refuse', code: verdict.refusal.code };
  if (verdict.kind === 'allow') {
    const { mime, width, height, frames } = verdict.image;
    return { kind: 'allow', mime, width, height, frames };
  }
  return { kind: 'need-more' };
}

/**
 * Feeds `data` as a growing prefix (every byte up to 256, then `step` bytes at a time, then
 * the whole upload as complete) and returns what breaks the gate's streaming contract.
 */
async function streamProblems(data: Buffer, p: Policy, step = KiB): Promise<string[]> {
  const problems: string[] = [];
  const whole = summarise(await judge(data, true, p));
  if (whole.kind === 'need-more') problems.push('the whole upload got need-more');
  const lengths: number[] = [];
  for (let n = 0; n <= Math.min(256, data.length - 1); n++) lengths.push(n);
  for (let n = step; n < data.length; n += step) if (n > 256) lengths.push(n);
  let decided: { n: number; summary: Summary } | undefined;
  for (const n of lengths) {
    const summary = summarise(await judge(data.subarray(0, n), false, p));
    if (summary.kind === 'need-more') {
      if (n >= p.windowBytes) problems.push(`need-more at ${n} bytes, at or beyond the ${p.windowBytes}-byte window`);
      if (decided) problems.push(`need-more at ${n} bytes after a verdict at ${decided.n}`);
      continue;
    }
    if (!decided) {
      decided = { n, summary };
      const expected = summary.kind === 'refuse' ? { kind: whole.kind, code: whole.kind === 'refuse' ? whole.code : undefined } : whole;
      const got = summary.kind === 'refuse' ? { kind: summary.kind, code: summary.code } : summary;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        problems.push(`first verdict at ${n} bytes ${JSON.stringify(summary)} differs from the whole upload's ${JSON.stringify(whole)}`);
      }
    } else if (summary.kind !== decided.summary.kind || (summary.kind === 'refuse' && decided.summary.kind === 'refuse' && summary.code !== decided.summary.code)) {
      problems.push(`verdict at ${n} bytes ${JSON.stringify(summary)} contradicts the one at ${decided.n}: ${JSON.stringify(decided.summary)}`);
    }
  }
  return problems.slice(0, 10);
}

describe('fed in pieces', () => {
  const files: [string, () => Promise<Buffer> | Buffer][] = [
    ['JPEG', () => fx.jpeg(640, 480)],
    ['JPEG behind a 60 KiB APP1', () => fx.jpegWithLargeApp1()],
    ['PNG', () => fx.png(640, 480)],
    ['APNG', () => apng(5, 64, 64)],
    ['still GIF', () => fx.gif(320, 240)],
    ['animated GIF', () => fx.animated('gif', 12, 64, 48)],
    ['lossy WebP', () => fx.webp(640, 480)],
    ['animated WebP', () => fx.animated('webp', 12, 64, 48)],
    ['AVIF', () => fx.avif(320, 240)],
    ['PNG bomb', () => fx.pngBomb(65535, 65535, 4)],
    ['JPEG bomb', () => fx.jpegBomb()],
    ['GIF of 150 frames', () => fx.animated('gif', 150, 8, 8)],
    ['GIF over MAX_TOTAL_PIXELS', () => gifDeclaring(7000, 7000, 5)],
    ['random bytes', () => fx.randomBytesOf(20 * KiB)],
    ['PDF', () => fx.pdfLike(20_000)],
    ['HEIC', () => fx.heicLike()],
  ];

  it.each(files)('%s: the verdict on a growing prefix is the verdict on the whole upload (default window)', async (_name, make) => {
    expect(await streamProblems(await make(), policy)).toEqual([]);
  });

  it.each(files)('%s: the same with an 8 KiB window, never need-more at or beyond it', async (_name, make) => {
    const small = policyFrom({ GATE_WINDOW_BYTES: String(8 * KiB), GATE_METADATA_BYTES: String(8 * KiB) });
    expect(await streamProblems(await make(), small)).toEqual([]);
  });

  it('an animated GIF smaller than the window: need-more on every incomplete prefix, allowed when complete', async () => {
    const gif = await fx.animated('gif', 5, 64, 48);
    expect(gif.length).toBeLessThan(policy.windowBytes);
    const lengths = [...Array.from({ length: Math.floor(gif.length / KiB) }, (_, i) => (i + 1) * KiB), ...Array.from({ length: 64 }, (_, i) => gif.length - 64 + i)];
    for (const n of lengths) {
      expect({ n, verdict: await judge(gif.subarray(0, n), false, policy) }).toEqual({ n, verdict: { kind: 'need-more' } });
    }
    expect(await judge(gif, true, policy)).toEqual({ kind: 'allow', image: { mime: 'image/gif', width: 64, height: 48, frames: 5, framesKnown: true } });
  });

  it('a JPEG whose SOF lies beyond the window: E_HEADER_UNREADABLE naming GATE_WINDOW_BYTES', async () => {
    const small = policyFrom({ GATE_WINDOW_BYTES: String(8 * KiB), GATE_METADATA_BYTES: String(8 * KiB) });
    const jpeg = await fx.jpegWithLargeApp1();
    expect(await judge(jpeg.subarray(0, 8 * KiB - 1), false, small)).toEqual({ kind: 'need-more' });
    const expected = {
      code: 'E_HEADER_UNREADABLE',
      status: 422,
      message: 'The image/jpeg header does not say the image size within the first 8,192 bytes (GATE_WINDOW_BYTES).',
    };
    expect(await refused(jpeg.subarray(0, 8 * KiB), false, small)).toEqual(expected);
    // the whole file at once, complete: the gate still looks at the window only
    expect(await refused(jpeg, true, small)).toEqual(expected);
  });

  it('a JPEG behind 300 KiB of APP segments (a big ICC profile) is followed past the window to its SOF', async () => {
    const jpeg = await fx.jpegWithLargeApp1(300 * KiB);
    expect(await judge(jpeg.subarray(0, 256 * KiB), false, policy)).toEqual({ kind: 'need-more' });
    expect(await judge(jpeg.subarray(0, 300 * KiB + 2 * KiB), false, policy)).toEqual({
      kind: 'allow',
      image: { mime: 'image/jpeg', width: 800, height: 600, frames: 1, framesKnown: true },
    });
  });

  it('a JPEG whose SOF lies beyond GATE_METADATA_BYTES is refused there, naming it', async () => {
    const tight = policyFrom({ GATE_METADATA_BYTES: String(512 * KiB) });
    const jpeg = await fx.jpegWithLargeApp1(600 * KiB);
    expect(await judge(jpeg.subarray(0, 512 * KiB - 1), false, tight)).toEqual({ kind: 'need-more' });
    const refusal = await refused(jpeg.subarray(0, 512 * KiB), false, tight);
    expect(refusal).toMatchObject({ code: 'E_HEADER_UNREADABLE', message: expect.stringContaining('524,288 bytes (GATE_METADATA_BYTES)') });
  });

  it('a broken segment chain is refused at once, not followed', async () => {
    const jpeg = Buffer.from(await fx.jpegWithLargeApp1(300 * KiB));
    const secondSegment = 2 + 2 + ((jpeg[4] ?? 0) << 8) + (jpeg[5] ?? 0);
    expect(jpeg[secondSegment]).toBe(0xff);
    jpeg[secondSegment] = 0x00;
    expect(await refused(jpeg.subarray(0, 100 * KiB), false)).toMatchObject({
      code: 'E_HEADER_UNREADABLE',
      message: expect.stringContaining(`expected a marker at byte ${secondSegment}`),
    });
  });

  it('a complete upload larger than the window is judged on the window, not as a truncated file', async () => {
    const small = policyFrom({ GATE_WINDOW_BYTES: String(8 * KiB) });
    // the GIF trailer and the PNG's IDAT lie beyond the window: the window is not a broken file
    const gif = await fx.gif(320, 240);
    expect(gif.length).toBeGreaterThan(8 * KiB);
    expect(await judge(gif, true, small)).toEqual({ kind: 'allow', image: { mime: 'image/gif', width: 320, height: 240, frames: 1, framesKnown: false } });
    const text = pngChunk('tEXt', Buffer.concat([Buffer.from('Comment\0', 'latin1'), Buffer.alloc(10 * KiB, 0x41)]));
    const png = insertPngChunks(await fx.png(64, 48), 'IDAT', text);
    expect(await judge(png, true, small)).toEqual({ kind: 'allow', image: { mime: 'image/png', width: 64, height: 48, frames: 1, framesKnown: false } });
  });
});

describe('numbers in messages', () => {
  it("groupDigits writes what toLocaleString('en-US') writes, without Intl", () => {
    for (const n of [0, 7, 999, 1000, -1000, 12_345, 999_999, 1_000_000, 50_000_000, 2 ** 31, Number.MAX_SAFE_INTEGER, 1.5]) {
      expect(groupDigits(n)).toBe(n.toLocaleString('en-US'));
    }
  });
});

describe('refusals carry their contract status', () => {
  it('every gate code maps to the documented HTTP status', () => {
    expect({
      E_EMPTY_UPLOAD: ERROR_STATUS.E_EMPTY_UPLOAD,
      E_TYPE_UNKNOWN: ERROR_STATUS.E_TYPE_UNKNOWN,
      E_TYPE_NOT_ALLOWED: ERROR_STATUS.E_TYPE_NOT_ALLOWED,
      E_HEADER_UNREADABLE: ERROR_STATUS.E_HEADER_UNREADABLE,
      E_DIMENSIONS_TOO_LARGE: ERROR_STATUS.E_DIMENSIONS_TOO_LARGE,
      E_TOO_MANY_PIXELS: ERROR_STATUS.E_TOO_MANY_PIXELS,
      E_TOO_MANY_FRAMES: ERROR_STATUS.E_TOO_MANY_FRAMES,
      E_TOO_MANY_TOTAL_PIXELS: ERROR_STATUS.E_TOO_MANY_TOTAL_PIXELS,
    }).toEqual({
      E_EMPTY_UPLOAD: 422,
      E_TYPE_UNKNOWN: 415,
      E_TYPE_NOT_ALLOWED: 415,
      E_HEADER_UNREADABLE: 422,
      E_DIMENSIONS_TOO_LARGE: 422,
      E_TOO_MANY_PIXELS: 422,
      E_TOO_MANY_FRAMES: 422,
      E_TOO_MANY_TOTAL_PIXELS: 422,
    });
  });
});
