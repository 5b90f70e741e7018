/**
 * AVIF (ISO-BMFF / HEIF): the size of every image item is an `ispe` property inside
 * meta → iprp → ipco. The largest one is taken, so that a small thumbnail or tile
 * declared first cannot hide a huge primary image or grid. An image sequence (brand
 * `avis`) has frames the header does not count: those are checked when it is decoded.
 */
import { type HeaderResult, ascii, invalid, outOfBytes, u32be } from './types.ts';

interface Box {
  type: string;
  start: number;
  /** First byte of the payload (after the header, and after version/flags for full boxes). */
  body: number;
  end: number;
}

const FULL_BOXES = new Set(['meta', 'ispe']);

/** The boxes laid out between `from` and `to`; stops at the first one that is cut off. */
function boxes(b: Uint8Array, from: number, to: number): { list: Box[]; cut: boolean; bad?: string } {
  const list: Box[] = [];
  let i = from;
  while (i < to) {
    if (i + 8 > b.length) return { list, cut: true };
    let size = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    let header = 8;
    if (size === 1) {
      if (i + 16 > b.length) return { list, cut: true };
      size = u32be(b, i + 8) * 2 ** 32 + u32be(b, i + 12);
      header = 16;
    } else if (size === 0) {
      size = to - i; // to the end of the enclosing space
    }
    if (size < header) return { list, cut: false, bad: `box ${JSON.stringify(type)} declares size ${size}` };
    const body = i + header + (FULL_BOXES.has(type) ? 4 : 0);
    list.push({ type, start: i, body, end: i + size });
    i += size;
  }
  return { list, cut: false };
}

function child(b: Uint8Array, parent: Box, type: string): Box | undefined {
  return boxes(b, parent.body, Math.min(parent.end, b.length)).list.find((box) => box.type === type);
}

export function readAvif(b: Uint8Array, complete: boolean): HeaderResult {
  const top = boxes(b, 0, complete ? b.length : Number.MAX_SAFE_INTEGER);
  if (top.bad) return invalid(top.bad);
  const ftyp = top.list[0];
  if (!ftyp || ftyp.type !== 'ftyp') return top.cut ? outOfBytes(complete, 'the ftyp box') : invalid('first box is not ftyp');
  if (ftyp.end > b.length) return outOfBytes(complete, 'the end of the ftyp box');
  const brands = new Set<string>();
  for (let i = ftyp.body; i + 4 <= ftyp.end; i += 4) if (i !== ftyp.body + 4) brands.add(ascii(b, i, 4));
  const meta = top.list.find((box) => box.type === 'meta');
  if (!meta) return top.cut ? outOfBytes(complete, 'the meta box') : invalid('no meta box');
  if (meta.end > b.length) return outOfBytes(complete, 'the end of the meta box');
  const iprp = child(b, meta, 'iprp');
  const ipco = iprp && child(b, iprp, 'ipco');
  if (!ipco) return invalid('no item properties (iprp/ipco) in the meta box');
  let width = 0;
  let height = 0;
  for (const box of boxes(b, ipco.body, ipco.end).list) {
    if (box.type !== 'ispe' || box.body + 8 > box.end) continue;
    width = Math.max(width, u32be(b, box.body));
    height = Math.max(height, u32be(b, box.body + 4));
  }
  if (width === 0 || height === 0) return invalid('no image size (ispe) property');
  const sequence = brands.has('avis');
  return { kind: 'ok', width, height, frames: 1, framesKnown: !sequence || complete };
}
