/**
 * The re-encode: decode the staged original with the pixel limit set, auto-orient, fit
 * inside the long edge without enlarging, convert to sRGB, drop every piece of metadata
 * (sharp writes none unless asked), and encode to WebP or AVIF.
 *
 * Animation policy: with ANIMATION=animate and WebP output, an animated GIF/WebP/APNG
 * stays animated (every frame resized); otherwise only the first frame is kept.
 * Frame and total-pixel limits are checked on the whole file before anything is decoded.
 */
import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { groupDigits as fmt, Refusal } from './errors.ts';
import { checkFrames } from './gate.ts';
import type { Policy } from './policy.ts';

export interface TranscodeOptions {
  format: 'webp' | 'avif';
  quality: number;
  /** Fit inside a `longEdge` square, never enlarged; unless `cover` asks for exactly width x height. */
  longEdge: number;
  /** Crop to fill exactly width x height (an avatar), enlarging when the image is smaller. */
  cover?: { width: number; height: number };
  animation: 'animate' | 'first-frame';
  timeoutSeconds: number;
  /**
   * WebP encoder effort (libwebp's method), 0-6 (WEBP_EFFORT, default 2 in server/config.ts):
   * effort 3 and above keep a token buffer for the whole image (about 20 MB more for a
   * noisy 2048 px output) and took 1.7x the time for 2-5% fewer bytes (README, WEBP_EFFORT).
   */
  webpEffort: number;
  /**
   * AVIF encoder effort, 0-9 (AVIF_EFFORT, default 2 in server/config.ts; libaom speed
   * 9 - effort): on a 12 MP photo, effort 3 (avifenc's default speed 6) cost ~1.5x the CPU
   * of 2 for ~3.5% fewer bytes, and effort 4, sharp's default, 5-6x for about the same
   * bytes and PSNR as 3 (docs/benchmarks.md, benchmark 9).
   */
  avifEffort: number;
}

export interface Transcoded {
  data: Buffer;
  format: 'webp' | 'avif';
  mime: string;
  width: number;
  height: number;
  frames: number;
}

let threads = 1;
let loaded: Promise<(input: string, options: SharpOptions) => Sharp> | undefined;

/**
 * sharp (libvips, some 28 MB of resident memory) is loaded by the first finish, not at
 * start-up: a process that only receives does not carry it. Its process-wide knobs are set
 * then: threads per image, no operation cache.
 */
function loadSharp(): Promise<(input: string, options: SharpOptions) => Sharp> {
  loaded ??= import('sharp').then(({ default: sharp }) => {
    sharp.concurrency(threads);
    sharp.cache(false);
    return (input, options) => sharp(input, options);
  });
  return loaded;
}

/** SHARP_THREADS: libvips threads per image (0: libvips' default), applied when sharp loads. */
export function configureSharp(threadsPerImage: number): void {
  threads = threadsPerImage;
}

function decodeFailure(error: unknown, file: string): Refusal {
  // libvips names the input file: never show a client the server's paths.
  const message = (error instanceof Error ? error.message : String(error)).replaceAll(file, 'the upload');
  if (/timeout/i.test(message)) {
    return new Refusal('E_TRANSCODE_TIMEOUT', `Processing the image took longer than the limit (TRANSCODE_TIMEOUT_MS): ${message}`);
  }
  return new Refusal('E_IMAGE_CORRUPT', `The image could not be decoded: ${message.split('\n')[0]}`);
}

/** Re-encodes the image in `file`. Throws a Refusal for an image that breaks the policy or does not decode. */
export async function transcode(file: string, policy: Policy, options: TranscodeOptions): Promise<Transcoded> {
  let metadata: Metadata;
  try {
    // One page only: `animated: true` would make libheif load every top-level item of an AVIF
    // (they are not frames) and fail on a file whose primary item alone decodes (pitm).
    metadata = await (await loadSharp())(file, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw decodeFailure(error, file);
  }
  const animatable = metadata.format === 'gif' || metadata.format === 'webp' || metadata.format === 'png';
  const frames = animatable ? (metadata.pages ?? 1) : 1;
  const width = metadata.width;
  const frameHeight = metadata.height; // one page: metadata() without `animated` describes the first
  const pixels = width * frameHeight;
  if (pixels > policy.maxPixels || width > policy.maxDimension || frameHeight > policy.maxDimension) {
    throw new Refusal(
      'E_TOO_MANY_PIXELS',
      `The image decodes to ${width}x${frameHeight} = ${fmt(pixels)} pixels; the limit is ${fmt(policy.maxPixels)} pixels (${policy.names.maxPixels}) and ${fmt(policy.maxDimension)} per side (${policy.names.maxDimension}).`,
    );
  }
  const animate = frames > 1 && options.animation === 'animate' && options.format === 'webp';
  if (animate) {
    const refusal = checkFrames(frames, pixels, policy);
    if (refusal) throw refusal;
  }
  const limitInputPixels = animate ? pixels * frames : pixels;
  try {
    const sharp = await loadSharp();
    const pipeline = sharp(file, { limitInputPixels, animated: animate, sequentialRead: true })
      .timeout({ seconds: options.timeoutSeconds })
      .autoOrient()
      .resize(
        options.cover
          ? { width: options.cover.width, height: options.cover.height, fit: 'cover', position: 'centre' }
          : { width: options.longEdge, height: options.longEdge, fit: 'inside', withoutEnlargement: true },
      )
      .toColourspace('srgb');
    const encoded =
      options.format === 'webp'
        ? pipeline.webp({ quality: options.quality, effort: options.webpEffort })
        : pipeline.avif({ quality: options.quality, chromaSubsampling: '4:2:0', effort: options.avifEffort });
    const { data, info } = await encoded.toBuffer({ resolveWithObject: true });
    return {
      data,
      format: options.format,
      mime: `image/${options.format}`,
      width: info.width,
      height: info.pageHeight ?? info.height,
      frames: animate ? frames : 1,
    };
  } catch (error) {
    throw decodeFailure(error, file);
  }
}
