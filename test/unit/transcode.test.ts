/**
 * transcode(): the server-made re-encode of a staged original, on generated files written
 * to a temporary directory. Output properties are checked by decoding the output with sharp.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileTypeFromBuffer } from 'file-type';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Refusal } from '../../hooks/errors.ts';
import type { Policy } from '../../hooks/policy.ts';
import { type TranscodeOptions, configureSharp, transcode } from '../../hooks/transcode.ts';
import { loadConfig, policyOf, transcodeOf } from '../../server/config.ts';
import { freeBuffer } from '../../storage/free-buffer.ts';
import * as fx from '../support/fixtures.ts';
import { solidAnimation, webpChunks } from './fixtures-extra.ts';

const config = loadConfig({});
const policy: Policy = policyOf(config);
const options: TranscodeOptions = transcodeOf(config);

let dir: string;
let counter = 0;

beforeAll(() => {
  configureSharp(config.SHARP_THREADS);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tusgate-transcode-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `data` to a fresh file in the temporary directory (as the staging store would). */
function stage(data: Buffer): string {
  const file = path.join(dir, `upload-${++counter}`);
  fs.writeFileSync(file, data);
  return file;
}

type Rgb = [number, number, number];

/** The decoded pixels of an image, as RGB. */
async function pixels(image: Buffer | string): Promise<{ width: number; height: number; at: (x: number, y: number) => Rgb }> {
  const { data, info } = await sharp(image).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    at: (x, y) => {
      const i = (y * info.width + x) * info.channels;
      return [data[i] ?? -1, data[i + 1] ?? -1, data[i + 2] ?? -1];
    },
  };
}

const isWhite = ([r, g, b]: Rgb) => r >= 235 && g >= 235 && b >= 235;

/** Mean absolute difference per channel between two same-size images, over a grid of samples. */
async function meanDifference(a: Buffer, b: Buffer): Promise<number> {
  const [pa, pb] = [await pixels(a), await pixels(b)];
  expect([pa.width, pa.height]).toEqual([pb.width, pb.height]);
  let sum = 0;
  let count = 0;
  for (let y = 0; y < pa.height; y += Math.max(1, Math.floor(pa.height / 24))) {
    for (let x = 0; x < pa.width; x += Math.max(1, Math.floor(pa.width / 24))) {
      const [p, q] = [pa.at(x, y), pb.at(x, y)];
      sum += Math.abs(p[0] - q[0]) + Math.abs(p[1] - q[1]) + Math.abs(p[2] - q[2]);
      count += 3;
    }
  }
  return sum / count;
}

async function refusalFrom(promise: Promise<unknown>): Promise<Refusal> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Refusal);
  return error as Refusal;
}

describe('the configured defaults', () => {
  it('are WebP, long edge 2048, animations kept', () => {
    expect(options).toMatchObject({ format: 'webp', longEdge: 2048, animation: 'animate' });
  });
});

describe('the WebP effort', () => {
  it('is the one configured: the default 2, and WEBP_EFFORT=4 encodes the same image otherwise', async () => {
    expect(options.webpEffort).toBe(2);
    const file = stage(await fx.noisyJpeg(320, 240));
    const fast = await transcode(file, policy, options);
    const slow = await transcode(file, policy, transcodeOf(loadConfig({ WEBP_EFFORT: '4' })));
    const direct = (effort: number) => sharp(file).webp({ quality: options.quality, effort }).toBuffer();
    expect(fast.data.equals(await direct(2))).toBe(true);
    expect(slow.data.equals(await direct(4))).toBe(true);
    expect(fast.data.equals(slow.data)).toBe(false);
  });
});

describe('the encoded bytes', () => {
  it('are a Buffer of their own, which the finish frees once the public store has them (freeBuffer)', async () => {
    const { data } = await transcode(stage(await fx.jpeg()), policy, options);
    expect(data.length).toBeGreaterThan(0);
    const before = process.memoryUsage().external;
    freeBuffer(data);
    expect(data.length).toBe(0);
    expect(process.memoryUsage().external).toBeLessThan(before);
  });
});

describe('orientation and metadata', () => {
  let original: Buffer;
  let output: Buffer;

  beforeAll(async () => {
    original = await fx.jpegOriented6WithGps(600, 400);
    const result = await transcode(stage(original), policy, options);
    expect(result).toMatchObject({ format: 'webp', mime: 'image/webp', width: 400, height: 600, frames: 1 });
    output = result.data;
  });

  it('test-side sanity: the original is stored 600x400 with orientation 6, EXIF and GPS', async () => {
    const meta = await sharp(original).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 600, height: 400, orientation: 6 });
    expect(meta.exif).toBeDefined();
    expect(original.includes('TusgateTestCam')).toBe(true);
    // little-endian TIFF ("II") with a GPSInfo IFD pointer (tag 0x8825)
    expect(meta.exif?.subarray(6, 8).toString('latin1')).toBe('II');
    expect(meta.exif?.includes(Buffer.from([0x25, 0x88]))).toBe(true);
  });

  it('the output is an upright 400x600 WebP', async () => {
    const meta = await sharp(output).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 400, height: 600 });
    expect((await fileTypeFromBuffer(output))?.mime).toBe('image/webp');
  });

  it('the output carries no EXIF, XMP, ICC profile or orientation', async () => {
    const meta = await sharp(output).metadata();
    expect({ exif: meta.exif, xmp: meta.xmp, icc: meta.icc, orientation: meta.orientation }).toEqual({
      exif: undefined,
      xmp: undefined,
      icc: undefined,
      orientation: undefined,
    });
    const chunks = webpChunks(output).map((chunk) => chunk.name);
    expect(chunks).not.toContain('EXIF');
    expect(chunks).not.toContain('XMP ');
    expect(chunks).not.toContain('ICCP');
    for (const secret of ['TusgateTestCam', 'secret-owner', 'Exif']) expect(output.includes(secret)).toBe(false);
  });

  it('the white top-left quarter of the stored pixels ends up top-right (rotated 90° clockwise)', async () => {
    const stored = await pixels(original);
    expect(isWhite(stored.at(75, 50))).toBe(true); // sanity: white in the stored top-left
    const out = await pixels(output);
    expect(isWhite(out.at(350, 75))).toBe(true); // top-right
    expect(isWhite(out.at(50, 75))).toBe(false); // top-left
    expect(isWhite(out.at(50, 525))).toBe(false); // bottom-left (where a counter-clockwise turn would put it)
    expect(isWhite(out.at(350, 525))).toBe(false); // bottom-right (a 180° turn)
    // the white block is 100 wide and 150 tall once upright
    expect(isWhite(out.at(305, 145))).toBe(true);
    expect(isWhite(out.at(290, 75))).toBe(false);
    expect(isWhite(out.at(350, 160))).toBe(false);
  });
});

describe('size', () => {
  it('a 4000x3000 image is fitted to the 2048 long edge', async () => {
    const result = await transcode(stage(await fx.jpeg(4000, 3000)), policy, options);
    expect([result.width, result.height]).toEqual([2048, 1536]);
    const meta = await sharp(result.data).metadata();
    expect([meta.width, meta.height]).toEqual([2048, 1536]);
  });

  it('a portrait image is fitted by its height', async () => {
    const result = await transcode(stage(await fx.png(600, 1000)), policy, { ...options, longEdge: 500 });
    expect([result.width, result.height]).toEqual([300, 500]);
  });

  it('a 300x200 image is not enlarged', async () => {
    const result = await transcode(stage(await fx.jpeg(300, 200)), policy, options);
    expect([result.width, result.height]).toEqual([300, 200]);
    const meta = await sharp(result.data).metadata();
    expect([meta.width, meta.height]).toEqual([300, 200]);
  });
});

describe('colour', () => {
  it('a CMYK JPEG comes out as 8-bit sRGB with the same colours', async () => {
    const cmyk = await fx.gradient(320, 240).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer();
    expect(await sharp(cmyk).metadata()).toMatchObject({ format: 'jpeg', space: 'cmyk', channels: 4 });
    const result = await transcode(stage(cmyk), policy, options);
    const meta = await sharp(result.data).metadata();
    expect(meta).toMatchObject({ format: 'webp', space: 'srgb', channels: 3, depth: 'uchar', width: 320, height: 240 });
    expect(meta.icc).toBeUndefined();
    const reference = await fx.gradient(320, 240).png().toBuffer();
    expect(await meanDifference(result.data, reference)).toBeLessThan(12);
    const out = await pixels(result.data);
    expect(isWhite(out.at(30, 30))).toBe(true);
    const [r, , b] = out.at(319, 239); // the gradient ends in blue (#1040d0)
    expect(b - r).toBeGreaterThan(100);
  });

  it('a 16-bit PNG is read and written as 8-bit sRGB', async () => {
    const deep = await fx.gradient(200, 100).toColourspace('rgb16').png().toBuffer();
    expect(await sharp(deep).metadata()).toMatchObject({ format: 'png', depth: 'ushort' });
    const result = await transcode(stage(deep), policy, options);
    const meta = await sharp(result.data).metadata();
    expect(meta).toMatchObject({ format: 'webp', space: 'srgb', depth: 'uchar', width: 200, height: 100 });
    expect(await meanDifference(result.data, await fx.gradient(200, 100).png().toBuffer())).toBeLessThan(12);
  });
});

const COLOURS = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 255],
] as const;

function nearestColour([r, g, b]: Rgb): string {
  const names = ['red', 'green', 'blue', 'white'];
  const distances = COLOURS.map(([cr, cg, cb]) => Math.abs(r - cr) + Math.abs(g - cg) + Math.abs(b - cb));
  const best = Math.min(...distances);
  return best < 60 ? (names[distances.indexOf(best)] ?? '?') : `none (${r},${g},${b})`;
}

describe('animation', () => {
  let gif: Buffer;

  beforeAll(async () => {
    gif = await fx.animated('gif', 4, 64, 48);
  });

  it("animated GIF with animation='animate': an animated WebP with the same frame count", async () => {
    const result = await transcode(stage(gif), policy, { ...options, animation: 'animate' });
    expect(result).toMatchObject({ format: 'webp', width: 64, height: 48, frames: 4 });
    const meta = await sharp(result.data, { animated: true }).metadata();
    expect(meta).toMatchObject({ format: 'webp', pages: 4, pageHeight: 48, width: 64 });
    expect(webpChunks(result.data).filter((chunk) => chunk.name === 'ANMF')).toHaveLength(4);
  });

  it('every frame is resized, not the strip of frames', async () => {
    const result = await transcode(stage(gif), policy, { ...options, longEdge: 32 });
    expect(result).toMatchObject({ width: 32, height: 24, frames: 4 });
    expect(await sharp(result.data, { animated: true }).metadata()).toMatchObject({ pages: 4, pageHeight: 24, width: 32, height: 96 });
  });

  it('an animated WebP stays animated', async () => {
    const result = await transcode(stage(await fx.animated('webp', 5, 64, 48)), policy, options);
    expect(result.frames).toBe(5);
    expect(await sharp(result.data, { animated: true }).metadata()).toMatchObject({ pages: 5, pageHeight: 48 });
  });

  it('the frames keep their order', async () => {
    const result = await transcode(stage(await solidAnimation('gif', COLOURS)), policy, options);
    expect(result.frames).toBe(4);
    const seen: Rgb[] = [];
    for (let page = 0; page < 4; page++) seen.push((await pixels(await sharp(result.data, { page }).png().toBuffer())).at(16, 12));
    expect(seen.map(nearestColour)).toEqual(['red', 'green', 'blue', 'white']);
  });

  it.each([
    ["animation='first-frame'", { animation: 'first-frame' as const }, 'webp'],
    ["format='avif' (even with animation='animate')", { format: 'avif' as const, animation: 'animate' as const }, 'heif'],
  ])('%s: the first frame only', async (_name, override, sharpFormat) => {
    const result = await transcode(stage(gif), policy, { ...options, ...override });
    expect(result).toMatchObject({ width: 64, height: 48, frames: 1 });
    const meta = await sharp(result.data, { animated: true }).metadata();
    expect(meta).toMatchObject({ format: sharpFormat, width: 64, height: 48 });
    expect(meta.pages ?? 1).toBe(1);
    // and it is the FIRST frame
    const solid = await transcode(stage(await solidAnimation('gif', COLOURS)), policy, { ...options, ...override });
    expect(solid.frames).toBe(1);
    expect(nearestColour((await pixels(solid.data)).at(16, 12))).toBe('red');
  });

  it('frame limits are checked before decoding an animation, and only when it stays animated', async () => {
    const threeFrames = { ...policy, maxFrames: 3 };
    const refusal = await refusalFrom(transcode(stage(gif), threeFrames, options));
    expect({ code: refusal.code, status: refusal.status_code }).toEqual({ code: 'E_TOO_MANY_FRAMES', status: 422 });
    expect((await transcode(stage(gif), threeFrames, { ...options, animation: 'first-frame' })).frames).toBe(1);
    const fewPixels = { ...policy, maxTotalPixels: 64 * 48 * 4 - 1 };
    expect((await refusalFrom(transcode(stage(gif), fewPixels, options))).code).toBe('E_TOO_MANY_TOTAL_PIXELS');
  });
});

describe('refusals', () => {
  it.each([
    ['JPEG', () => fx.jpeg(640, 480)],
    ['PNG', () => fx.png(640, 480)],
  ])('a truncated %s: E_IMAGE_CORRUPT (422)', async (_name, make) => {
    const refusal = await refusalFrom(transcode(stage(fx.truncated(await make())), policy, options));
    expect({ code: refusal.code, status: refusal.status_code }).toEqual({ code: 'E_IMAGE_CORRUPT', status: 422 });
    expect(refusal.message).toMatch(/^The image could not be decoded: /);
  });

  it('bytes that are no image at all: E_IMAGE_CORRUPT', async () => {
    expect((await refusalFrom(transcode(stage(fx.randomBytesOf(10_000)), policy, options))).code).toBe('E_IMAGE_CORRUPT');
  });

  it.each([
    [65535, 65535],
    [10_000, 10_000],
    [16_384, 1],
  ])('a %ix%i pixel bomb is refused from its header, without decoding', async (width, height) => {
    const started = Date.now();
    const refusal = await refusalFrom(transcode(stage(fx.pngBomb(width, height, 1)), policy, options));
    expect({ code: refusal.code, status: refusal.status_code }).toEqual({ code: 'E_TOO_MANY_PIXELS', status: 422 });
    expect(refusal.message).toContain(`${width}x${height}`);
    expect(refusal.message).toContain('(MAX_PIXELS)');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('AVIF output', () => {
  it('format=avif gives an AVIF of the right size', async () => {
    const result = await transcode(stage(await fx.jpeg(640, 480)), policy, { ...options, format: 'avif' });
    expect(result).toMatchObject({ format: 'avif', mime: 'image/avif', width: 640, height: 480, frames: 1 });
    expect((await fileTypeFromBuffer(result.data))?.mime).toBe('image/avif');
    const meta = await sharp(result.data).metadata();
    expect(meta).toMatchObject({ format: 'heif', compression: 'av1', width: 640, height: 480 });
    expect(meta.exif).toBeUndefined();
    expect(await meanDifference(result.data, await fx.jpeg(640, 480))).toBeLessThan(12);
  });
});
