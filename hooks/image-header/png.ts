/**
 * PNG: IHDR gives the size; the chunks before the first IDAT tell whether it is an
 * APNG (acTL declares the frame count).
 */
import { type HeaderResult, ascii, invalid, outOfBytes, u32be } from './types.ts';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const MAX_DIMENSION = 0x7fffffff;

export function readPng(b: Uint8Array, complete: boolean): HeaderResult {
  if (b.length < 33) return outOfBytes(complete, 'the IHDR chunk');
  if (!SIGNATURE.every((byte, i) => b[i] === byte)) return invalid('missing PNG signature');
  if (u32be(b, 8) !== 13 || ascii(b, 12, 4) !== 'IHDR') return invalid('first chunk is not a 13-byte IHDR');
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  if (width === 0 || height === 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    return invalid(`IHDR declares an impossible size ${width}x${height}`);
  }
  let i = 33;
  for (;;) {
    if (i + 8 > b.length) {
      // The size is known; whether it is animated is not (yet).
      return complete ? invalid('file ends before the image data (IDAT)') : { kind: 'ok', width, height, frames: 1, framesKnown: false };
    }
    const length = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    if (type === 'IDAT' || type === 'IEND') {
      return { kind: 'ok', width, height, frames: 1, framesKnown: true };
    }
    if (type === 'acTL') {
      // The size is already known: a prefix that ends inside acTL must not take it back.
      if (i + 16 > b.length) {
        return complete ? invalid('file ends before the end of the acTL chunk') : { kind: 'ok', width, height, frames: 1, framesKnown: false };
      }
      const frames = u32be(b, i + 8);
      if (frames === 0) return invalid('acTL declares zero frames');
      return { kind: 'ok', width, height, frames, framesKnown: true };
    }
    if (length > MAX_DIMENSION) return invalid(`chunk ${JSON.stringify(type)} declares length ${length}`);
    i += 12 + length;
  }
}
