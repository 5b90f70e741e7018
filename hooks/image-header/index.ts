import { readAvif } from './avif.ts';
import { readGif } from './gif.ts';
import { readJpeg } from './jpeg.ts';
import { readPng } from './png.ts';
import type { HeaderReader } from './types.ts';
import { readWebp } from './webp.ts';

export type { HeaderReader, HeaderResult } from './types.ts';

/** The header reader for each image type the gate can admit. */
export const HEADER_READERS: Readonly<Record<string, HeaderReader>> = {
  'image/jpeg': readJpeg,
  'image/png': readPng,
  'image/gif': readGif,
  'image/webp': readWebp,
  'image/avif': readAvif,
};
