/**
 * The per-format header readers, fed every prefix of generated files: they must answer
 * need-more (never invalid, never a wrong size) until the header is in, the right size
 * from then on, and invalid on a truncated header once the file is known to be complete.
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { readAvif } from '../../hooks/image-header/avif.ts';
import { readGif } from '../../hooks/image-header/gif.ts';
import { HEADER_READERS } from '../../hooks/image-header/index.ts';
import { readJpeg } from '../../hooks/image-header/jpeg.ts';
import { readPng } from '../../hooks/image-header/png.ts';
import type { HeaderReader, HeaderResult } from '../../hooks/image-header/types.ts';
import { readWebp } from '../../hooks/image-header/webp.ts';
import * as fx from '../support/fixtures.ts';
import {
  PNG_SIGNATURE,
  acTL,
  animatedWebpDeclaring,
  apng,
  avifDeclaring,
  firstGifImageDescriptor,
  gifDeclaring,
  insertPngChunks,
  isoBoxes,
  jpegSegments,
  pngChunk,
  pngChunks,
  sofSegment,
  webpChunks,
  withFillBytes,
  withSegmentBeforeSof,
  withSofMarker,
  withStandaloneMarkersBeforeSof,
} from './fixtures-extra.ts';

interface Want {
  width: number;
  height: number;
  /** The final frame count. */
  frames: number;
}

interface Plan {
  /** Fewest bytes from which an incomplete prefix reports the size (need-more below). */
  sizeAt: number;
  /** Fewest bytes from which an incomplete prefix reports the final frame count (Infinity: never). */
  framesKnownAt: number;
  /** Fewest bytes from which a prefix that is declared complete is not `invalid`. */
  completeOkFrom: number;
}

function describeResult(r: HeaderResult): string {
  return r.kind === 'ok' ? `ok ${r.width}x${r.height} frames=${r.frames} known=${r.framesKnown}` : r.kind === 'invalid' ? `invalid (${r.reason})` : 'need-more';
}

/**
 * Feeds every prefix of `file` (length 0 to the whole file) to `read`, as an incomplete
 * upload and as a complete one, and returns what contradicts `want` / `plan` (at most 20 lines).
 */
function sweep(read: HeaderReader, file: Buffer, want: Want, plan: Plan): string[] {
  const problems: string[] = [];
  const report = (n: number, complete: boolean, r: HeaderResult, expected: string) => {
    if (problems.length < 20) problems.push(`${n} bytes, complete=${complete}: got ${describeResult(r)}, expected ${expected}`);
  };
  let lastFrames = 0;
  for (let n = 0; n <= file.length; n++) {
    const prefix = file.subarray(0, n);
    const partial = read(prefix, false);
    if (n < plan.sizeAt) {
      if (partial.kind !== 'need-more') report(n, false, partial, 'need-more');
    } else if (partial.kind !== 'ok' || partial.width !== want.width || partial.height !== want.height) {
      report(n, false, partial, `ok ${want.width}x${want.height}`);
    } else {
      const known = n >= plan.framesKnownAt;
      if (partial.framesKnown !== known) report(n, false, partial, `framesKnown=${known}`);
      if (partial.frames < 1 || partial.frames > want.frames || (partial.framesKnown && partial.frames !== want.frames)) {
        report(n, false, partial, `frames in 1..${want.frames} (exactly ${want.frames} when known)`);
      }
      if (partial.frames < lastFrames) report(n, false, partial, `frames not below the ${lastFrames} seen in a shorter prefix`);
      lastFrames = partial.frames;
    }
    const whole = read(prefix, true);
    if (n < plan.completeOkFrom) {
      if (whole.kind !== 'invalid') report(n, true, whole, 'invalid (truncated header)');
    } else if (whole.kind !== 'ok' || whole.width !== want.width || whole.height !== want.height) {
      report(n, true, whole, `ok ${want.width}x${want.height}`);
    } else if (n === file.length && (whole.frames !== want.frames || !whole.framesKnown)) {
      report(n, true, whole, `frames=${want.frames} known=true`);
    }
  }
  return problems;
}

const ok = (width: number, height: number, frames = 1) => ({ kind: 'ok', width, height, frames, framesKnown: true });

describe('JPEG', () => {
  let baseline: Buffer;
  let progressive: Buffer;
  let largeApp1: Buffer;

  beforeAll(async () => {
    baseline = await fx.jpeg(640, 480);
    progressive = await fx.gradient(320, 200).jpeg({ progressive: true }).toBuffer();
    largeApp1 = await fx.jpegWithLargeApp1(60 * 1024);
  });

  it('test-side sanity: the fixtures are what they claim', () => {
    expect(sofSegment(baseline).marker).toBe(0xc0);
    expect(sofSegment(progressive).marker).toBe(0xc2);
    const segments = jpegSegments(largeApp1);
    expect(segments[0]).toMatchObject({ marker: 0xe1 });
    expect(sofSegment(largeApp1).offset).toBeGreaterThan(60 * 1024 - 16);
  });

  it.each([
    ['baseline', () => baseline, 640, 480],
    ['progressive (SOF2)', () => progressive, 320, 200],
    ['behind a 60 KiB APP1 block', () => largeApp1, 800, 600],
    ['with 0xFF fill bytes before every marker', () => withFillBytes(baseline, 3), 640, 480],
  ])('%s: need-more on every prefix until the SOF is in, then the size', (_name, file, width, height) => {
    const data = file();
    const sizeAt = sofSegment(data).offset + 9; // marker (2) + length (2) + precision (1) + height (2) + width (2)
    expect(sweep(readJpeg, data, { width, height, frames: 1 }, { sizeAt, framesKnownAt: sizeAt, completeOkFrom: sizeAt })).toEqual([]);
  });

  it('reads every SOF kind (extended, progressive, lossless, arithmetic, hierarchical)', () => {
    for (const marker of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]) {
      expect({ marker: marker.toString(16), result: readJpeg(withSofMarker(baseline, marker), false) }).toEqual({
        marker: marker.toString(16),
        result: ok(640, 480),
      });
    }
  });

  it('does not take DHT (C4), JPG (C8) or DAC (CC) segments for a frame header', () => {
    // payload shaped like a SOF: precision 8, height 7, width 9
    const lookalike = Buffer.from([0x08, 0x00, 0x07, 0x00, 0x09, 0x01, 0x01, 0x11, 0x00]);
    for (const marker of [0xc4, 0xc8, 0xcc]) {
      expect(readJpeg(withSegmentBeforeSof(baseline, marker, lookalike), false)).toEqual(ok(640, 480));
    }
    // the same payload behind a real SOF1 marker is a frame header
    expect(readJpeg(withSegmentBeforeSof(baseline, 0xc1, lookalike), false)).toEqual(ok(9, 7));
  });

  it('skips standalone markers (TEM, RST) that carry no length', () => {
    expect(readJpeg(withStandaloneMarkersBeforeSof(baseline), false)).toEqual(ok(640, 480));
  });

  it('reports the huge size a hand-written bomb declares', () => {
    expect(readJpeg(fx.jpegBomb(), false)).toEqual(ok(65500, 65500));
    expect(readJpeg(fx.jpegBomb(1, 65535), true)).toEqual(ok(1, 65535));
  });

  it('answers invalid for garbage after the SOI marker', () => {
    const html = Buffer.from('<html><body>not an image</body></html>'.padEnd(4096, ' '));
    for (const complete of [false, true]) {
      expect(readJpeg(Buffer.concat([Buffer.from([0xff, 0xd8]), html]), complete).kind).toBe('invalid');
      // a segment whose length field is below 2
      expect(readJpeg(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01]), html]), complete).kind).toBe('invalid');
      // image data (SOS) or the end (EOI) before any frame header
      expect(readJpeg(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xda, 0x00, 0x08]), html]), complete).kind).toBe('invalid');
      expect(readJpeg(Buffer.from([0xff, 0xd8, 0xff, 0xd9]), complete).kind).toBe('invalid');
      // no SOI at all
      expect(readJpeg(Buffer.concat([Buffer.from([0xff, 0xd9]), html]), complete).kind).toBe('invalid');
    }
  });

  it('refuses a frame header that defers its height to a DNL marker', () => {
    const data = Buffer.from(baseline);
    const sof = sofSegment(data).offset;
    data[sof + 5] = 0;
    data[sof + 6] = 0;
    expect(readJpeg(data, false).kind).toBe('invalid');
  });
});

describe('PNG', () => {
  let plain: Buffer;

  beforeAll(async () => {
    plain = await fx.png(640, 480);
  });

  it('need-more until IHDR is in; the frame count is known at the first IDAT', () => {
    const idat = pngChunks(plain).find((chunk) => chunk.type === 'IDAT');
    expect(idat).toBeDefined();
    const at = (idat?.offset ?? 0) + 8;
    expect(sweep(readPng, plain, { width: 640, height: 480, frames: 1 }, { sizeAt: 33, framesKnownAt: at, completeOkFrom: at })).toEqual([]);
  });

  it('APNG: the acTL frame count, known from the acTL chunk on', () => {
    const file = apng(3, 32, 24);
    const actl = pngChunks(file).find((chunk) => chunk.type === 'acTL');
    expect(actl?.offset).toBe(33);
    const at = (actl?.offset ?? 0) + 16;
    expect(sweep(readPng, file, { width: 32, height: 24, frames: 3 }, { sizeAt: 33, framesKnownAt: at, completeOkFrom: at })).toEqual([]);
  });

  it('APNG whose acTL sits behind a large ancillary chunk: frames unknown until it is reached', () => {
    const text = pngChunk('tEXt', Buffer.concat([Buffer.from('Comment\0', 'latin1'), Buffer.alloc(20_000, 0x41)]));
    const file = insertPngChunks(apng(7, 16, 16), 'acTL', text);
    const actl = pngChunks(file).find((chunk) => chunk.type === 'acTL');
    const at = (actl?.offset ?? 0) + 16;
    expect(at).toBeGreaterThan(20_000);
    expect(sweep(readPng, file, { width: 16, height: 16, frames: 7 }, { sizeAt: 33, framesKnownAt: at, completeOkFrom: at })).toEqual([]);
  });

  it('reports the huge size a hand-written bomb declares', () => {
    expect(readPng(fx.pngBomb(65535, 65535, 4), true)).toEqual(ok(65535, 65535));
    expect(readPng(fx.pngBomb(65535, 65535, 4).subarray(0, 33), false)).toMatchObject({ kind: 'ok', width: 65535, height: 65535 });
  });

  it('answers invalid for garbage after the signature', () => {
    for (const complete of [false, true]) {
      expect(readPng(fx.pngMagicThenHtml(), complete).kind).toBe('invalid');
      // first chunk not IHDR
      expect(readPng(Buffer.concat([PNG_SIGNATURE, pngChunk('tEXt', Buffer.alloc(13)), Buffer.alloc(64)]), complete).kind).toBe('invalid');
      // IHDR declaring a zero or impossible size
      expect(readPng(fx.pngBomb(0, 10), complete).kind).toBe('invalid');
      expect(readPng(fx.pngBomb(10, 0x80000000, 1), complete).kind).toBe('invalid');
      // acTL declaring zero frames
      expect(readPng(insertPngChunks(apng(2), 'acTL', acTL(0)), complete).kind).toBe('invalid');
    }
  });
});

describe('GIF', () => {
  let still: Buffer;
  let moving: Buffer;

  beforeAll(async () => {
    still = await fx.gif(320, 240);
    moving = await fx.animated('gif', 3, 64, 48);
  });

  it.each([
    ['still', () => still, 320, 240, 1],
    ['animated', () => moving, 64, 48, 3],
    ['hand-written, 4 frames', () => gifDeclaring(300, 200, 4), 300, 200, 4],
  ])('%s: need-more until the first image descriptor; frames known at the trailer', (_name, file, width, height, frames) => {
    const data = file();
    expect(data[data.length - 1]).toBe(0x3b);
    const sizeAt = firstGifImageDescriptor(data) + 11; // descriptor (10) + LZW minimum code size (1)
    expect(sweep(readGif, data, { width, height, frames }, { sizeAt, framesKnownAt: data.length, completeOkFrom: data.length })).toEqual([]);
  });

  it('reports the huge frame of a hand-written bomb (screen 1x1, frame 60000x60000)', () => {
    expect(readGif(fx.gifFrameBomb(), true)).toEqual(ok(60000, 60000));
    expect(readGif(fx.gifFrameBomb().subarray(0, 24), false)).toMatchObject({ kind: 'ok', width: 60000, height: 60000, framesKnown: false });
  });

  it('takes the largest extent: a frame placed beyond the screen widens the canvas', () => {
    const data = gifDeclaring(10, 10, 1);
    const at = firstGifImageDescriptor(data);
    data.writeUInt16LE(5000, at + 1); // left
    data.writeUInt16LE(7000, at + 3); // top
    expect(readGif(data, true)).toEqual(ok(5010, 7010));
  });

  it('answers invalid for garbage after the signature', () => {
    for (const complete of [false, true]) {
      expect(readGif(Buffer.concat([Buffer.from('GIF89a', 'latin1'), fx.htmlPage(4096)]), complete).kind).toBe('invalid');
      expect(readGif(Buffer.concat([Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00', 'latin1'), Buffer.from('garbage!')]), complete).kind).toBe('invalid');
      expect(readGif(Buffer.concat([Buffer.from('GIF90a', 'latin1'), still.subarray(6)]), complete).kind).toBe('invalid');
      // a frame of zero width
      const zero = gifDeclaring(10, 10, 1);
      zero.writeUInt16LE(0, firstGifImageDescriptor(zero) + 5);
      expect(readGif(zero, complete).kind).toBe('invalid');
    }
    // a trailer but no image
    expect(readGif(Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00\x3b', 'latin1'), true).kind).toBe('invalid');
  });
});

describe('WebP', () => {
  let lossy: Buffer;
  let lossless: Buffer;
  let moving: Buffer;

  beforeAll(async () => {
    lossy = await fx.webp(640, 480);
    lossless = await fx.webpLossless(64, 48);
    moving = await fx.animated('webp', 3, 64, 48);
  });

  it('test-side sanity: lossy is VP8, lossless VP8L, animated VP8X + ANMF', () => {
    expect(webpChunks(lossy)[0]?.name).toBe('VP8 ');
    expect(webpChunks(lossless)[0]?.name).toBe('VP8L');
    expect(webpChunks(moving).map((chunk) => chunk.name)).toEqual(['VP8X', 'ANIM', 'ANMF', 'ANMF', 'ANMF']);
  });

  it.each([
    ['lossy (VP8)', () => lossy, 640, 480],
    ['lossless (VP8L)', () => lossless, 64, 48],
  ])('%s: need-more for the first 29 bytes, the size from 30', (_name, file, width, height) => {
    expect(sweep(readWebp, file(), { width, height, frames: 1 }, { sizeAt: 30, framesKnownAt: 30, completeOkFrom: 30 })).toEqual([]);
  });

  it('a still VP8X (extended) file: the canvas size', async () => {
    const rgba = Buffer.alloc(100 * 60 * 4, 128);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = i % 251; // varying alpha: sharp writes VP8X + ALPH + VP8
    const withAlpha = await sharp(rgba, { raw: { width: 100, height: 60, channels: 4 } }).webp({ quality: 50 }).toBuffer();
    expect(webpChunks(withAlpha)[0]?.name).toBe('VP8X');
    expect(sweep(readWebp, withAlpha, { width: 100, height: 60, frames: 1 }, { sizeAt: 30, framesKnownAt: 30, completeOkFrom: 30 })).toEqual([]);
  });

  it.each([
    ['sharp-made, 3 frames', () => moving, 64, 48, 3],
    ['hand-written, 5 frames', () => animatedWebpDeclaring(300, 200, 5), 300, 200, 5],
  ])('animated %s: need-more until the first ANMF header; the count is final only when complete', (_name, file, width, height, frames) => {
    const data = file();
    const first = webpChunks(data).find((chunk) => chunk.name === 'ANMF');
    const sizeAt = (first?.offset ?? 0) + 8;
    expect(sweep(readWebp, data, { width, height, frames }, { sizeAt, framesKnownAt: Infinity, completeOkFrom: sizeAt })).toEqual([]);
  });

  it('reports the huge canvas a hand-written animation declares', () => {
    expect(readWebp(animatedWebpDeclaring(16_000_000, 2, 3), true)).toEqual(ok(16_000_000, 2, 3));
  });

  it('answers invalid for garbage after the signature', () => {
    const riff = (rest: Buffer) => {
      const head = Buffer.from('RIFF\0\0\0\0WEBP', 'latin1');
      head.writeUInt32LE(rest.length + 4, 4);
      return Buffer.concat([head, rest]);
    };
    for (const complete of [false, true]) {
      expect(readWebp(riff(fx.htmlPage(4096)), complete).kind).toBe('invalid');
      const noStartCode = Buffer.from(lossy);
      noStartCode[23] = 0;
      expect(readWebp(noStartCode, complete).kind).toBe('invalid');
      const noSignature = Buffer.from(lossless);
      noSignature[20] = 0;
      expect(readWebp(noSignature, complete).kind).toBe('invalid');
      expect(readWebp(Buffer.concat([Buffer.from('RIFX', 'latin1'), lossy.subarray(4)]), complete).kind).toBe('invalid');
    }
    // an animation flag and no frame at all
    expect(readWebp(animatedWebpDeclaring(10, 10, 0), true).kind).toBe('invalid');
  });
});

describe('AVIF', () => {
  let sharpMade: Buffer;

  beforeAll(async () => {
    sharpMade = await fx.avif(320, 240);
  });

  it.each([
    ['sharp-made', () => sharpMade, 320, 240],
    ['hand-written header', () => avifDeclaring([[640, 360]]), 640, 360],
  ])('%s: need-more until the meta box is in, then the ispe size', (_name, file, width, height) => {
    const data = file();
    const boxes = isoBoxes(data);
    expect(boxes.slice(0, 2).map((b) => b.type)).toEqual(['ftyp', 'meta']);
    const sizeAt = (boxes[1]?.offset ?? 0) + (boxes[1]?.size ?? 0);
    expect(sweep(readAvif, data, { width, height, frames: 1 }, { sizeAt, framesKnownAt: sizeAt, completeOkFrom: sizeAt })).toEqual([]);
  });

  it('takes the largest ispe, so a small thumbnail declared first cannot hide a huge image', () => {
    expect(readAvif(avifDeclaring([[160, 120], [70_000, 50_000], [640, 480]]), false)).toEqual(ok(70_000, 50_000));
  });

  it('an image sequence (avis): frames are not known before the file is complete', () => {
    const data = avifDeclaring([[64, 48]], 'avis');
    expect(readAvif(data, false)).toEqual({ kind: 'ok', width: 64, height: 48, frames: 1, framesKnown: false });
    expect(readAvif(data, true)).toEqual(ok(64, 48));
  });

  it('answers invalid for garbage after the ftyp box', () => {
    const ftyp = sharpMade.subarray(0, isoBoxes(sharpMade)[0]?.size ?? 0);
    for (const complete of [false, true]) {
      // a box declaring a size smaller than its own header
      expect(readAvif(Buffer.concat([ftyp, Buffer.from([0, 0, 0, 3]), Buffer.from('meta'), Buffer.alloc(64)]), complete).kind).toBe('invalid');
      // a meta box without item properties
      expect(readAvif(Buffer.concat([ftyp, Buffer.from([0, 0, 0, 12]), Buffer.from('meta'), Buffer.alloc(4), Buffer.alloc(64)]), complete).kind).toBe(
        'invalid',
      );
      // the first box is not ftyp
      expect(readAvif(Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('moov'), Buffer.alloc(64)]), complete).kind).toBe('invalid');
    }
    // HTML after ftyp, in a file known to be complete
    expect(readAvif(Buffer.concat([ftyp, fx.htmlPage(4096)]), true).kind).toBe('invalid');
  });
});

describe('HEADER_READERS', () => {
  it('maps each allowed type to its reader', () => {
    expect(HEADER_READERS).toEqual({
      'image/jpeg': readJpeg,
      'image/png': readPng,
      'image/gif': readGif,
      'image/webp': readWebp,
      'image/avif': readAvif,
    });
  });
});
