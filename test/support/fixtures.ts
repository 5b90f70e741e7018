/**
 * Test images made on the spot (a fresh clone has no corpus): sharp writes every allowed
 * format; bombs, polyglots and broken files are written by hand.
 */
import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

/** Noisy pixels, so that encoders cannot shrink the file to nothing. */
function noise(width: number, height: number, channels: 3 | 4 = 3, seed = 1): Buffer {
  const data = Buffer.alloc(width * height * channels);
  let x = seed * 2654435761;
  for (let i = 0; i < data.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  return data;
}

export function raw(width: number, height: number, seed = 1): Sharp {
  return sharp(noise(width, height, 3, seed), { raw: { width, height, channels: 3 } });
}

/** A smooth gradient: realistic file sizes for photos (noise makes huge files). */
export function gradient(width: number, height: number): Sharp {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#d04010"/><stop offset="1" stop-color="#1040d0"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/><rect x="0" y="0" width="${Math.round(width / 4)}" height="${Math.round(height / 4)}" fill="#ffffff"/></svg>`;
  return sharp(Buffer.from(svg));
}

export const jpeg = (width = 640, height = 480) => gradient(width, height).jpeg({ quality: 85 }).toBuffer();
export const png = (width = 640, height = 480) => gradient(width, height).png().toBuffer();
export const webp = (width = 640, height = 480) => gradient(width, height).webp({ quality: 80 }).toBuffer();
export const webpLossless = (width = 64, height = 48) => gradient(width, height).webp({ lossless: true }).toBuffer();
export const gif = (width = 320, height = 240) => gradient(width, height).gif().toBuffer();
export const avif = (width = 320, height = 240) => gradient(width, height).avif({ quality: 50, effort: 0 }).toBuffer();
export const tiff = (width = 64, height = 48) => gradient(width, height).tiff().toBuffer();

/** The start of a HEIC file (ftyp brand heic): a real image type, but not an allowed one. */
export function heicLike(): Buffer {
  const ftyp = Buffer.alloc(24);
  ftyp.writeUInt32BE(24, 0);
  ftyp.write('ftypheic', 4, 'latin1');
  ftyp.write('mif1heic', 16, 'latin1');
  return Buffer.concat([ftyp, Buffer.alloc(8192, 0)]);
}

/** A noisy JPEG of a given size (for tests that need bulk). */
export const noisyJpeg = (width: number, height: number) => raw(width, height).jpeg({ quality: 90 }).toBuffer();

/**
 * A landscape photo stored sideways: the pixels are `width`x`height`, EXIF Orientation 6
 * says "rotate 90° clockwise to display", and the EXIF carries GPS coordinates.
 * Its top-left quarter is white, so the orientation of an output can be checked by pixel.
 */
export function jpegOriented6WithGps(width = 600, height = 400): Promise<Buffer> {
  return gradient(width, height)
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .withExifMerge({
      IFD0: { Make: 'TusgateTestCam', Model: 'T-1', Copyright: 'secret-owner' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2400/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 4000/100' },
    })
    .toBuffer();
}

/** Animated GIF or WebP with `frames` frames of `width`x`height`. */
export async function animated(format: 'gif' | 'webp', frames: number, width = 64, height = 48): Promise<Buffer> {
  const strip = Buffer.concat(Array.from({ length: frames }, (_, i) => noise(width, height, 4, i + 1)));
  const image = sharp(strip, { raw: { width, height: height * frames, channels: 4, pageHeight: height } });
  return format === 'gif'
    ? image.gif({ delay: Array(frames).fill(50), loop: 0 }).toBuffer()
    : image.webp({ delay: Array(frames).fill(50), loop: 0, quality: 50 }).toBuffer();
}

/**
 * A JPEG whose SOF sits behind `appBytes` bytes of APPn segments (a camera's EXIF block,
 * an editor's XMP and ICC): the first is an APP1 "Exif" block, the rest APP2 segments,
 * each at most 65,535 bytes as the format requires.
 */
export async function jpegWithLargeApp1(appBytes = 60 * 1024): Promise<Buffer> {
  const base = await jpeg(800, 600);
  const segments: Buffer[] = [];
  for (let left = appBytes, first = true; left > 0; first = false) {
    const size = Math.min(left, 65_535 + 2);
    const length = size - 2; // the length field counts itself, not the marker
    const payload = Buffer.alloc(length - 2, 0x20);
    if (first) Buffer.from('Exif\0\0').copy(payload);
    segments.push(Buffer.concat([Buffer.from([0xff, first ? 0xe1 : 0xe2, (length >> 8) & 0xff, length & 0xff]), payload]));
    left -= size;
  }
  return Buffer.concat([base.subarray(0, 2), ...segments, base.subarray(2)]);
}

// --- hand-written headers ---

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A valid PNG declaring width x height, one grey channel, all zero: compresses to almost
 * nothing (a 65535x65535 one is a classic decompression bomb). `rows` limits the IDAT
 * written (the rest is missing), so that even huge declarations stay small files.
 */
export function pngBomb(width = 65535, height = 65535, rows = 64): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const scanlines = Buffer.alloc((width + 1) * Math.min(rows, height));
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(scanlines)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A JPEG SOF declaring 65500x65500 after a real SOI/APP0, followed by junk. */
export function jpegBomb(width = 65500, height = 65500): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 0xff, width >> 8, width & 0xff, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.alloc(4096, 0x55)]);
}

/** A GIF whose logical screen is 1x1 but whose first image descriptor is 60000x60000. */
export function gifFrameBomb(): Buffer {
  const header = Buffer.from('GIF89a', 'latin1');
  const screen = Buffer.from([1, 0, 1, 0, 0x00, 0, 0]);
  const descriptor = Buffer.from([0x2c, 0, 0, 0, 0, 0x60, 0xea, 0x60, 0xea, 0x00, 0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b]);
  return Buffer.concat([header, screen, descriptor]);
}

/** PNG signature followed by an HTML page: a classic disguise. */
export function pngMagicThenHtml(): Buffer {
  const html = '<html><body><script>alert(document.cookie)</script></body></html>'.padEnd(8192, ' ');
  return Buffer.concat([PNG_SIGNATURE, Buffer.from(html)]);
}

/** Random bytes: no magic number at all. */
export function randomBytesOf(length: number, seed = 7): Buffer {
  return noise(length, 1, 3, seed).subarray(0, length);
}

/** An HTML page named like an image. */
export function htmlPage(length = 10_000): Buffer {
  return Buffer.from('<!doctype html><html><head><title>x</title></head><body>'.padEnd(length, 'a'));
}

/** A PDF (an allowed-looking name will not help it). */
export function pdfLike(length = 10_000): Buffer {
  return Buffer.concat([Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n', 'latin1'), Buffer.alloc(length, 0x20)]);
}

/** The first `fraction` of a file: a header that passes, a body that does not decode. */
export function truncated(file: Buffer, fraction = 0.5): Buffer {
  return file.subarray(0, Math.floor(file.length * fraction));
}
