/**
 * Extra fixtures for the unit tests: hand-written headers (APNG, declared-size GIF / WebP /
 * AVIF) and byte-level surgery on sharp's JPEG and PNG output. Everything is generated;
 * nothing is read from disk.
 */
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { PNG_SIGNATURE, pngChunk } from '../support/fixtures.ts';

// --- PNG ---

export { PNG_SIGNATURE, pngChunk };

export interface PngChunkInfo {
  type: string;
  offset: number;
  length: number;
}

/** The chunks of a PNG, by their declared lengths (a test-side walker, independent of hooks/). */
export function pngChunks(png: Buffer): PngChunkInfo[] {
  const list: PngChunkInfo[] = [];
  for (let i = 8; i + 8 <= png.length; ) {
    const length = png.readUInt32BE(i);
    list.push({ type: png.toString('latin1', i + 4, i + 8), offset: i, length });
    i += 12 + length;
  }
  return list;
}

/** `png` with `chunks` inserted just before its first chunk of type `before`. */
export function insertPngChunks(png: Buffer, before: string, ...chunks: Buffer[]): Buffer {
  const at = pngChunks(png).find((chunk) => chunk.type === before);
  if (!at) throw new Error(`no ${before} chunk`);
  return Buffer.concat([png.subarray(0, at.offset), ...chunks, png.subarray(at.offset)]);
}

export function acTL(frames: number, plays = 0): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(frames, 0);
  data.writeUInt32BE(plays, 4);
  return pngChunk('acTL', data);
}

function fcTL(sequence: number, width: number, height: number): Buffer {
  const data = Buffer.alloc(26);
  data.writeUInt32BE(sequence, 0);
  data.writeUInt32BE(width, 4);
  data.writeUInt32BE(height, 8);
  // x/y offsets 0; delay 1/10 s; dispose none; blend source
  data.writeUInt16BE(1, 20);
  data.writeUInt16BE(10, 22);
  return pngChunk('fcTL', data);
}

/**
 * A real APNG (every frame a solid grey, RGB 8-bit): IHDR, acTL, then fcTL+IDAT for the
 * first frame and fcTL+fdAT for the others. sharp cannot write APNG, so it is built by hand.
 */
export function apng(frames: number, width = 32, height = 24): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const pixels = (grey: number): Buffer => {
    const rows = Buffer.alloc((1 + width * 3) * height, grey);
    for (let y = 0; y < height; y++) rows[y * (1 + width * 3)] = 0; // filter type None
    return deflateSync(rows);
  };
  const parts: Buffer[] = [PNG_SIGNATURE, pngChunk('IHDR', ihdr), acTL(frames)];
  let sequence = 0;
  for (let frame = 0; frame < frames; frame++) {
    parts.push(fcTL(sequence++, width, height));
    const data = pixels((frame * 37) % 256);
    if (frame === 0) {
      parts.push(pngChunk('IDAT', data));
    } else {
      const seq = Buffer.alloc(4);
      seq.writeUInt32BE(sequence++, 0);
      parts.push(pngChunk('fdAT', Buffer.concat([seq, data])));
    }
  }
  parts.push(pngChunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}

// --- JPEG ---

export interface JpegSegment {
  marker: number;
  /** Offset of the 0xFF that starts the marker (after any fill bytes). */
  offset: number;
  /** The segment's length field (counts itself, not the marker). */
  length: number;
}

/** The marker segments of a JPEG from SOI up to and including SOS (test-side walker). */
export function jpegSegments(jpeg: Buffer): JpegSegment[] {
  const list: JpegSegment[] = [];
  let i = 2;
  while (i + 4 <= jpeg.length) {
    while (jpeg[i + 1] === 0xff) i += 1;
    const marker = jpeg[i + 1] ?? 0;
    const length = jpeg.readUInt16BE(i + 2);
    list.push({ marker, offset: i, length });
    if (marker === 0xda) break;
    i += 2 + length;
  }
  return list;
}

/** The frame header (SOF) segment: the first segment that is not APPn/DQT/DHT/DRI/COM. */
export function sofSegment(jpeg: Buffer): JpegSegment {
  const sof = jpegSegments(jpeg).find((s) => s.marker >= 0xc0 && s.marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(s.marker));
  if (!sof) throw new Error('no SOF');
  return sof;
}

/** A copy of `jpeg` whose SOF marker byte is replaced by `marker` (e.g. 0xc1, 0xc9). */
export function withSofMarker(jpeg: Buffer, marker: number): Buffer {
  const copy = Buffer.from(jpeg);
  copy[sofSegment(jpeg).offset + 1] = marker;
  return copy;
}

/** A copy of `jpeg` with `count` 0xFF fill bytes before every marker between SOI and SOS. */
export function withFillBytes(jpeg: Buffer, count: number): Buffer {
  const parts: Buffer[] = [jpeg.subarray(0, 2)];
  let previous = 2;
  for (const segment of jpegSegments(jpeg)) {
    parts.push(jpeg.subarray(previous, segment.offset), Buffer.alloc(count, 0xff));
    previous = segment.offset;
  }
  parts.push(jpeg.subarray(previous));
  return Buffer.concat(parts);
}

/** A copy of `jpeg` with a segment (`marker`, `payload`) inserted just before its SOF. */
export function withSegmentBeforeSof(jpeg: Buffer, marker: number, payload: Buffer): Buffer {
  const at = sofSegment(jpeg).offset;
  const head = Buffer.from([0xff, marker, ((payload.length + 2) >> 8) & 0xff, (payload.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, at), head, payload, jpeg.subarray(at)]);
}

/** A copy of `jpeg` with standalone markers (TEM, RST0) inserted just before its SOF. */
export function withStandaloneMarkersBeforeSof(jpeg: Buffer): Buffer {
  const at = sofSegment(jpeg).offset;
  return Buffer.concat([jpeg.subarray(0, at), Buffer.from([0xff, 0x01, 0xff, 0xd0]), jpeg.subarray(at)]);
}

// --- GIF ---

/**
 * A GIF89a whose screen and every frame declare `width`x`height`, with `frames` frames of
 * almost no data (a 1-code LZW stream each): the header claims what a decoder would allocate.
 */
export function gifDeclaring(width: number, height: number, frames: number): Buffer {
  const u16 = (n: number) => [n & 0xff, (n >> 8) & 0xff];
  const parts: Buffer[] = [Buffer.from('GIF89a', 'latin1'), Buffer.from([...u16(width), ...u16(height), 0x00, 0, 0])];
  // NETSCAPE2.0 looping extension
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0', 'latin1'), 0x03, 0x01, 0x00, 0x00, 0x00]));
  for (let i = 0; i < frames; i++) {
    parts.push(Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00])); // graphic control extension
    parts.push(Buffer.from([0x2c, 0, 0, 0, 0, ...u16(width), ...u16(height), 0x00, 0x02, 0x02, 0x4c, 0x01, 0x00]));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

/** Offset of the first image descriptor of a GIF (test-side walker over GCT and extensions). */
export function firstGifImageDescriptor(gif: Buffer): number {
  const flags = gif[10] ?? 0;
  let i = 13 + (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0);
  while (gif[i] === 0x21) {
    i += 2;
    while ((gif[i] ?? 0) !== 0) i += 1 + (gif[i] ?? 0);
    i += 1;
  }
  if (gif[i] !== 0x2c) throw new Error(`no image descriptor at ${i}`);
  return i;
}

// --- WebP ---

function riffChunk(name: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(name, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function riff(chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

function u24le(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff];
}

/**
 * An animated WebP (VP8X + ANIM + ANMF) declaring a `width`x`height` canvas and `frames`
 * full-canvas frames, each carrying a few bytes of (undecodable) frame data.
 */
export function animatedWebpDeclaring(width: number, height: number, frames: number): Buffer {
  const vp8x = Buffer.from([0x02, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1)]);
  const anim = Buffer.from([0, 0, 0, 0, 0, 0]);
  const anmf = (i: number) =>
    riffChunk('ANMF', Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, ...u24le(width - 1), ...u24le(height - 1), 100, 0, 0, 0]), riffChunk('VP8L', Buffer.from([0x2f, i, 0, 0, 0]))]));
  return riff([riffChunk('VP8X', vp8x), riffChunk('ANIM', anim), ...Array.from({ length: frames }, (_, i) => anmf(i))]);
}

/** The RIFF chunks of a WebP file after the 12-byte RIFF/WEBP header (test-side walker). */
export function webpChunks(webp: Buffer): { name: string; offset: number; size: number }[] {
  const list: { name: string; offset: number; size: number }[] = [];
  for (let i = 12; i + 8 <= webp.length; ) {
    const size = webp.readUInt32LE(i + 4);
    list.push({ name: webp.toString('latin1', i, i + 4), offset: i, size });
    i += 8 + size + (size % 2);
  }
  return list;
}

// --- AVIF (ISO-BMFF) ---

function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

function fullBox(type: string, ...payload: Buffer[]): Buffer {
  return box(type, Buffer.alloc(4), ...payload); // version 0, flags 0
}

function ispe(width: number, height: number): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  return fullBox('ispe', data);
}

/**
 * The header of an AVIF file: ftyp (major brand `brand`), then meta holding hdlr and
 * iprp/ipco with one ispe per given size, then an mdat of `mdatBytes` zero bytes.
 * Only the boxes the header reader and file-type look at; it does not decode.
 */
export function avifDeclaring(sizes: readonly (readonly [number, number])[], brand: 'avif' | 'avis' = 'avif', mdatBytes = 64): Buffer {
  const ftyp = box('ftyp', Buffer.from(`${brand}\0\0\0\0${brand}mif1miaf`, 'latin1'));
  const hdlr = fullBox('hdlr', Buffer.alloc(4), Buffer.from('pict', 'latin1'), Buffer.alloc(12), Buffer.from([0]));
  const ipco = box('ipco', ...sizes.map(([w, h]) => ispe(w, h)));
  const meta = fullBox('meta', hdlr, box('iprp', ipco));
  return Buffer.concat([ftyp, meta, box('mdat', Buffer.alloc(mdatBytes))]);
}

/** Top-level ISO-BMFF boxes (test-side walker). */
export function isoBoxes(file: Buffer): { type: string; offset: number; size: number }[] {
  const list: { type: string; offset: number; size: number }[] = [];
  for (let i = 0; i + 8 <= file.length; ) {
    const size = file.readUInt32BE(i);
    list.push({ type: file.toString('latin1', i + 4, i + 8), offset: i, size });
    if (size < 8) break;
    i += size;
  }
  return list;
}

// --- animations with recognisable frames ---

/** An animated GIF or WebP whose frame i is a solid `colours[i]` (RGB), so a frame can be told by its colour. */
export function solidAnimation(format: 'gif' | 'webp', colours: readonly (readonly [number, number, number])[], width = 32, height = 24): Promise<Buffer> {
  const frame = (rgb: readonly [number, number, number]) => {
    const data = Buffer.alloc(width * height * 4);
    for (let i = 0; i < data.length; i += 4) {
      data[i] = rgb[0];
      data[i + 1] = rgb[1];
      data[i + 2] = rgb[2];
      data[i + 3] = 255;
    }
    return data;
  };
  const image = sharp(Buffer.concat(colours.map(frame)), { raw: { width, height: height * colours.length, channels: 4, pageHeight: height } });
  const delay = colours.map(() => 100);
  return format === 'gif' ? image.gif({ delay, loop: 0 }).toBuffer() : image.webp({ delay, loop: 0, quality: 90 }).toBuffer();
}
