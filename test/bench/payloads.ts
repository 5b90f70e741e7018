/**
 * What the benchmarks upload. "Image as far as the gate is concerned": a real JPEG
 * (fixtures.jpeg(), 640x480) followed by filler up to the size wanted; the gate allows it
 * on its header. Non-images: random bytes. Photos for the finish: 12 MP JPEGs with
 * gradients, texture and grain (not pure noise), about 3.5 MB each.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { jpeg } from '../support/fixtures.ts';
import { xorshift32 } from '../support/random.ts';

let head: Buffer | undefined;

/** A complete 640x480 JPEG: the header the gate judges. */
export async function jpegHead(): Promise<Buffer> {
  head ??= await jpeg(640, 480);
  return head;
}

/** One buffer of `size` bytes: the JPEG, then pseudo-random filler. */
export async function imageBuffer(size: number): Promise<Buffer> {
  const start = await jpegHead();
  const data = Buffer.allocUnsafe(size);
  start.copy(data, 0);
  // a 1 MiB random block repeated: incompressible enough, cheap to make
  const block = randomBytes(1024 * 1024);
  for (let at = start.length; at < size; at += block.length) block.copy(data, at, 0, Math.min(block.length, size - at));
  return data;
}

/** A body of `size` bytes made on the fly, `chunk` bytes at a time: `first` then random filler. */
export function generatedBody(size: number, first: Buffer = Buffer.alloc(0), chunk = 64 * 1024): { stream: Readable; produced: () => number } {
  let produced = 0;
  const block = randomBytes(Math.max(chunk, 1024 * 1024));
  function* generate(): Generator<Buffer> {
    if (first.length > 0) {
      produced += first.length;
      yield first;
    }
    let turn = 0;
    while (produced < size) {
      const n = Math.min(chunk, size - produced);
      const at = (turn++ * chunk) % (block.length - chunk + 1);
      produced += n;
      yield block.subarray(at, at + n);
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false, highWaterMark: chunk }), produced: () => produced };
}

/**
 * A photo-like 12 MP JPEG: diagonal colour gradient, low-frequency texture (upscaled
 * noise) and fine grain, quality 90. `seed` varies the content.
 */
export async function photo(seed: number, width = 4000, height = 3000): Promise<Buffer> {
  const next = xorshift32(seed * 2654435761);
  const rnd = () => next() & 0xff;
  const sw = Math.round(width / 20);
  const sh = Math.round(height / 20);
  const small = Buffer.alloc(sw * sh * 3);
  for (let i = 0; i < small.length; i++) small[i] = rnd();
  const texture = await sharp(small, { raw: { width: sw, height: sh, channels: 3 } })
    .resize(width, height, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  const data = Buffer.alloc(width * height * 3);
  const grain = 10;
  const hue = (seed % 5) * 20;
  for (let y = 0; y < height; y++) {
    for (let col = 0; col < width; col++) {
      const i = (y * width + col) * 3;
      const g = (col / width) * 0.6 + (y / height) * 0.4;
      const n = ((rnd() - 128) * grain) / 128;
      data[i] = clamp(40 + hue + 150 * g + 0.35 * (texture[i]! - 128) + n);
      data[i + 1] = clamp(90 + 80 * (1 - g) + 0.35 * (texture[i + 1]! - 128) + n);
      data[i + 2] = clamp(160 - hue - 100 * g + 0.35 * (texture[i + 2]! - 128) + n);
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}
