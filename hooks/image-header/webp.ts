/**
 * WebP: the first chunk after the RIFF header is VP8 (lossy), VP8L (lossless) or VP8X
 * (extended: canvas size and flags). An animated VP8X file has one ANMF chunk per frame;
 * they are counted by skipping chunks by their declared sizes.
 */
import { type HeaderResult, ascii, invalid, outOfBytes, still, u16le, u24le, u32le } from './types.ts';

const ANIMATION_FLAG = 0x02;

export function readWebp(b: Uint8Array, complete: boolean): HeaderResult {
  if (b.length < 30) return outOfBytes(complete, 'the first WebP chunk header');
  if (ascii(b, 0, 4) !== 'RIFF' || ascii(b, 8, 4) !== 'WEBP') return invalid('missing RIFF/WEBP signature');
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return invalid('VP8 start code missing');
    return still(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return invalid('VP8L signature missing');
    const bits = u32le(b, 21);
    return still((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk !== 'VP8X') return invalid(`unknown first chunk ${JSON.stringify(chunk)}`);
  const flags = b[20] ?? 0;
  const width = u24le(b, 24) + 1;
  const height = u24le(b, 27) + 1;
  if (!(flags & ANIMATION_FLAG)) return still(width, height);

  let frames = 0;
  let i = 20 + u32le(b, 16);
  i += i % 2;
  for (;;) {
    if (i + 8 > b.length) {
      if (complete) return frames > 0 ? { kind: 'ok', width, height, frames, framesKnown: true } : invalid('animated WebP has no frame');
      return frames > 0 ? { kind: 'ok', width, height, frames, framesKnown: false } : { kind: 'need-more' };
    }
    const name = ascii(b, i, 4);
    const size = u32le(b, i + 4);
    if (name === 'ANMF') frames += 1;
    i += 8 + size + (size % 2);
  }
}
