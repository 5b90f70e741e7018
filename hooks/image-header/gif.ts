/**
 * GIF: the logical screen descriptor gives the canvas; every image descriptor gives a
 * frame and its extent (which may exceed the canvas). Frames are counted by skipping
 * data sub-blocks, so the count is exact once the trailer is seen.
 */
import { type HeaderResult, ascii, invalid, outOfBytes, u16le } from './types.ts';

const EXTENSION = 0x21;
const IMAGE = 0x2c;
const TRAILER = 0x3b;

function colourTableBytes(flags: number): number {
  return flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0;
}

/** Index just past a run of data sub-blocks starting at `i`, or -1 when it runs past the end. */
function skipSubBlocks(b: Uint8Array, i: number): number {
  for (;;) {
    if (i >= b.length) return -1;
    const size = b[i] ?? 0;
    if (size === 0) return i + 1;
    i += 1 + size;
  }
}

export function readGif(b: Uint8Array, complete: boolean): HeaderResult {
  if (b.length < 13) return outOfBytes(complete, 'the logical screen descriptor');
  const signature = ascii(b, 0, 6);
  if (signature !== 'GIF87a' && signature !== 'GIF89a') return invalid('missing GIF signature');
  let width = u16le(b, 6);
  let height = u16le(b, 8);
  let frames = 0;
  let i = 13 + colourTableBytes(b[10] ?? 0);
  const partial = (): HeaderResult =>
    frames === 0
      ? outOfBytes(complete, 'the first image descriptor')
      : complete
        ? invalid('file ends before the GIF trailer')
        : { kind: 'ok', width, height, frames, framesKnown: false };
  for (;;) {
    if (i >= b.length) return partial();
    const block = b[i];
    if (block === TRAILER) {
      if (frames === 0) return invalid('GIF has no image');
      return { kind: 'ok', width, height, frames, framesKnown: true };
    }
    if (block === EXTENSION) {
      const next = skipSubBlocks(b, i + 2);
      if (next < 0) return partial();
      i = next;
      continue;
    }
    if (block !== IMAGE) return invalid(`unexpected block 0x${(block ?? 0).toString(16)} at byte ${i}`);
    if (i + 11 > b.length) return partial();
    const right = u16le(b, i + 1) + u16le(b, i + 5);
    const bottom = u16le(b, i + 3) + u16le(b, i + 7);
    if (u16le(b, i + 5) === 0 || u16le(b, i + 7) === 0) return invalid('image descriptor declares a zero size');
    width = Math.max(width, right);
    height = Math.max(height, bottom);
    frames += 1;
    // descriptor (10) + local colour table + LZW minimum code size (1), then the data sub-blocks
    const next = skipSubBlocks(b, i + 10 + colourTableBytes(b[i + 9] ?? 0) + 1);
    if (next < 0) return partial();
    i = next;
  }
}
