/**
 * The gate's decision: from the first bytes of an upload, its real type (magic number,
 * via file-type) and its declared size and frame count (header readers), against the policy.
 * Nothing here decodes a pixel.
 */
import { fileTypeFromBuffer } from 'file-type';
import { groupDigits as fmt, Refusal } from './errors.ts';
import { HEADER_READERS } from './image-header/index.ts';
import type { Policy } from './policy.ts';

/** file-type reads at most this many bytes to name a type: the gate's first judgement, and the least window it can have. */
export const SNIFF_BYTES = 4100;

/** file-type names some allowed formats by a more specific type. */
const TYPE_ALIASES: Readonly<Record<string, string>> = { 'image/apng': 'image/png' };

export interface ImageFacts {
  mime: string;
  width: number;
  height: number;
  /** Frames seen by the gate; `framesKnown` says whether that is the final count. */
  frames: number;
  framesKnown: boolean;
}

export type Verdict =
  | { kind: 'need-more' }
  | { kind: 'allow'; image: ImageFacts }
  | { kind: 'refuse'; refusal: Refusal; image?: Partial<ImageFacts> };

const needMore: Verdict = { kind: 'need-more' };

function refuse(refusal: Refusal, image?: Partial<ImageFacts>): Verdict {
  return { kind: 'refuse', refusal, image };
}

/**
 * Judges an upload from its first bytes.
 * `complete` is true when `prefix` is the whole upload.
 * Answers `need-more` only while fewer than `policy.windowBytes` bytes have been seen, or, for a
 * JPEG whose intact segment chain has not reached its frame header, `policy.metadataBytes`.
 */
export async function judge(prefix: Uint8Array, complete: boolean, policy: Policy): Promise<Verdict> {
  const window = policy.windowBytes;
  const atLimit = complete || prefix.length >= window;
  if (complete && prefix.length === 0) {
    return refuse(new Refusal('E_EMPTY_UPLOAD', 'The upload is empty (0 bytes): an image is required.'));
  }
  const head = prefix.length > window ? prefix.subarray(0, window) : prefix;
  const detected = await fileTypeFromBuffer(head.subarray(0, SNIFF_BYTES));
  if (!detected) {
    if (!complete && head.length < SNIFF_BYTES) return needMore;
    return refuse(
      new Refusal(
        'E_TYPE_UNKNOWN',
        `The upload is not a recognised image: its first bytes match no known file type. Allowed types: ${policy.allowedTypes.join(', ')}.`,
      ),
    );
  }
  const mime = TYPE_ALIASES[detected.mime] ?? detected.mime;
  const read = HEADER_READERS[mime];
  if (!policy.allowedTypes.includes(mime) || !read) {
    // A short prefix can name a more general type (an AVIF's first 9-11 bytes read as video/mp4):
    // refuse on the type only once file-type has seen all it reads, as for an unknown type.
    if (!atLimit && head.length < SNIFF_BYTES) return needMore;
    return refuse(
      new Refusal(
        'E_TYPE_NOT_ALLOWED',
        `The upload is ${mime} (.${detected.ext}), which is not allowed. Allowed types: ${policy.allowedTypes.join(', ')}.`,
      ),
      { mime },
    );
  }
  // The reader sees only the window: it holds the whole file only when the file fits in it.
  let header = read(head, complete && prefix.length <= window);
  const metadataLimit = policy.metadataBytes;
  if (header.kind === 'need-more' && header.beforeFrame && atLimit && metadataLimit > window) {
    // A JPEG's frame header can follow more metadata than the window holds (a 500 KiB ICC
    // profile, Photoshop's APP13): follow the segment chain up to GATE_METADATA_BYTES.
    const longer = prefix.length > metadataLimit ? prefix.subarray(0, metadataLimit) : prefix;
    header = read(longer, complete && prefix.length <= metadataLimit);
    if (header.kind === 'need-more') {
      if (!complete && prefix.length < metadataLimit) return needMore;
      return refuse(
        new Refusal(
          'E_HEADER_UNREADABLE',
          `The ${mime} header does not say the image size within the first ${fmt(metadataLimit)} bytes (GATE_METADATA_BYTES).`,
        ),
        { mime },
      );
    }
  }
  if (header.kind === 'invalid') {
    return refuse(new Refusal('E_HEADER_UNREADABLE', `The ${mime} header is broken: ${header.reason}.`), { mime });
  }
  if (header.kind === 'need-more') {
    if (!atLimit) return needMore;
    return refuse(
      new Refusal(
        'E_HEADER_UNREADABLE',
        `The ${mime} header does not say the image size within the first ${fmt(window)} bytes (GATE_WINDOW_BYTES).`,
      ),
      { mime },
    );
  }
  const { width, height, frames, framesKnown } = header;
  const image: ImageFacts = { mime, width, height, frames, framesKnown };
  const pixels = width * height;
  if (width > policy.maxDimension || height > policy.maxDimension) {
    return refuse(
      new Refusal(
        'E_DIMENSIONS_TOO_LARGE',
        `The image is ${width}x${height} pixels; each side may be at most ${fmt(policy.maxDimension)} pixels (${policy.names.maxDimension}).`,
      ),
      image,
    );
  }
  if (pixels > policy.maxPixels) {
    return refuse(
      new Refusal(
        'E_TOO_MANY_PIXELS',
        `The image is ${width}x${height} = ${fmt(pixels)} pixels; the limit is ${fmt(policy.maxPixels)} pixels (${policy.names.maxPixels}).`,
      ),
      image,
    );
  }
  const frameRefusal = checkFrames(frames, pixels, policy, framesKnown);
  if (frameRefusal) return refuse(frameRefusal, image);
  // Animated formats: keep counting frames until the window is full or the upload complete.
  if (!framesKnown && !atLimit) return needMore;
  return { kind: 'allow', image };
}

/** The frame limits, shared by the gate (frames seen in the window) and the finish (all frames). */
export function checkFrames(frames: number, pixelsPerFrame: number, policy: Policy, exact = true): Refusal | undefined {
  const count = `${exact ? '' : 'at least '}${fmt(frames)}`;
  if (frames > policy.maxFrames) {
    return new Refusal('E_TOO_MANY_FRAMES', `The animation has ${count} frames; the limit is ${fmt(policy.maxFrames)} frames (${policy.names.maxFrames}).`);
  }
  const total = frames * pixelsPerFrame;
  if (total > policy.maxTotalPixels) {
    return new Refusal(
      'E_TOO_MANY_TOTAL_PIXELS',
      `The animation has ${count} frames of ${fmt(pixelsPerFrame)} pixels = ${exact ? '' : 'at least '}${fmt(total)} pixels in all; the limit is ${fmt(policy.maxTotalPixels)} pixels (${policy.names.maxTotalPixels}).`,
    );
  }
  return undefined;
}
