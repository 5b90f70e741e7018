/** What a header reader learns from a byte prefix, without decoding a pixel. */
export type HeaderResult =
  | {
      kind: 'ok';
      /** Canvas width and height in pixels (the largest extent the header declares). */
      width: number;
      height: number;
      /** Frames seen so far (1 for a still image). */
      frames: number;
      /** True when `frames` is the final count, false when more frames may follow. */
      framesKnown: boolean;
    }
  /** `beforeFrame`: a JPEG whose well-formed segment chain has not reached its frame header yet. */
  | { kind: 'need-more'; beforeFrame?: boolean }
  | { kind: 'invalid'; reason: string };

/** Reads one format's header from the first bytes of a file. `complete` means `bytes` is the whole file. */
export type HeaderReader = (bytes: Uint8Array, complete: boolean) => HeaderResult;

export const needMore: HeaderResult = { kind: 'need-more' };

export function invalid(reason: string): HeaderResult {
  return { kind: 'invalid', reason };
}

/** Ran out of bytes: more may come, unless the file is complete, in which case it is truncated. */
export function outOfBytes(complete: boolean, what: string): HeaderResult {
  return complete ? invalid(`file ends before ${what}`) : needMore;
}

export function still(width: number, height: number): HeaderResult {
  if (width === 0 || height === 0) return invalid('header declares a zero width or height');
  return { kind: 'ok', width, height, frames: 1, framesKnown: true };
}

export function ascii(bytes: Uint8Array, start: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(start, start + length));
}

export function u16be(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
}

export function u16le(b: Uint8Array, i: number): number {
  return (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
}

export function u24le(b: Uint8Array, i: number): number {
  return (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16);
}

export function u32be(b: Uint8Array, i: number): number {
  return (b[i] ?? 0) * 0x1000000 + (((b[i + 1] ?? 0) << 16) | ((b[i + 2] ?? 0) << 8) | (b[i + 3] ?? 0));
}

export function u32le(b: Uint8Array, i: number): number {
  return u24le(b, i) + (b[i + 3] ?? 0) * 0x1000000;
}
