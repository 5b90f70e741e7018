/**
 * JPEG: walk the marker segments from SOI to the first SOF, skipping APPn blocks
 * (a camera's EXIF block can be 60 KiB or more) by their declared lengths.
 * Every SOF kind counts (baseline, progressive, lossless, arithmetic), not just SOF0-2.
 */
import { type HeaderResult, invalid, outOfBytes, still, u16be } from './types.ts';

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
/** C4 (DHT), C8 (JPG extension) and CC (DAC) share the SOF range but are not frames. */
const NOT_SOF = new Set([0xc4, 0xc8, 0xcc]);

function isSof(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && !NOT_SOF.has(marker);
}

/** Markers that stand alone, without a length: TEM and RST0-7. */
function isStandalone(marker: number): boolean {
  return marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

/** Out of bytes while walking the segments in front of the frame header (may be more than the window). */
function beforeFrame(complete: boolean, what: string): HeaderResult {
  return complete ? outOfBytes(true, what) : { kind: 'need-more', beforeFrame: true };
}

export function readJpeg(b: Uint8Array, complete: boolean): HeaderResult {
  if (b.length < 2) return outOfBytes(complete, 'the SOI marker');
  if (b[0] !== 0xff || b[1] !== SOI) return invalid('missing JPEG SOI marker');
  let i = 2;
  for (;;) {
    if (i + 2 > b.length) return beforeFrame(complete, 'a frame header (SOF)');
    if (b[i] !== 0xff) return invalid(`expected a marker at byte ${i}`);
    let marker = b[i + 1] ?? 0;
    while (marker === 0xff) {
      i += 1; // fill bytes
      if (i + 2 > b.length) return beforeFrame(complete, 'a frame header (SOF)');
      marker = b[i + 1] ?? 0;
    }
    if (isStandalone(marker)) {
      i += 2;
      continue;
    }
    if (marker === SOS || marker === EOI || marker === SOI) {
      return invalid('no frame header (SOF) before the image data');
    }
    if (i + 4 > b.length) return beforeFrame(complete, 'a frame header (SOF)');
    const length = u16be(b, i + 2);
    if (length < 2) return invalid(`segment at byte ${i} declares length ${length}`);
    if (isSof(marker)) {
      if (i + 9 > b.length) return beforeFrame(complete, 'the end of the frame header');
      const height = u16be(b, i + 5);
      const width = u16be(b, i + 7);
      if (height === 0) return invalid('frame header defers its height (DNL), which is not supported');
      return still(width, height);
    }
    i += 2 + length;
  }
}
