/**
 * What the chaos run uploads and how: distinct real JPEGs and PNGs made from seeded noise
 * (a few MiB each, some ~12 MiB so they span several 5 MiB S3 parts), each with a chunk
 * size and the progress points at which the client is cut.
 */
import { createHash } from 'node:crypto';
import { raw } from '../support/fixtures.ts';
import type { Rng } from './rng.ts';

export const MiB = 1024 * 1024;

export type Mime = 'image/jpeg' | 'image/png';

export interface Cut {
  /** Cut once this fraction of the bytes has been sent. */
  fraction: number;
  /** abort: tus-js-client's abort(), then a new Upload from the same URL; raw: then also a raw PATCH cut mid-body. */
  kind: 'abort' | 'raw';
}

export interface UploadPlan {
  index: number;
  label: string;
  mime: Mime;
  width: number;
  height: number;
  data: Buffer;
  sha256: string;
  /** tus-js-client chunkSize (Infinity: one PATCH). */
  chunkSize: number;
  cuts: Cut[];
}

/** Bytes per pixel of sharp's output for noise (measured: JPEG q90 0.83, PNG level 1 3.17). */
const BYTES_PER_PIXEL: Record<Mime, number> = { 'image/jpeg': 0.83, 'image/png': 3.17 };

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function noiseImage(mime: Mime, targetBytes: number, seed: number): Promise<{ data: Buffer; width: number; height: number }> {
  const pixels = targetBytes / BYTES_PER_PIXEL[mime];
  const width = Math.round(Math.sqrt((pixels * 4) / 3));
  const height = Math.max(16, Math.round(pixels / width));
  const image = raw(width, height, seed);
  const data = mime === 'image/jpeg' ? await image.jpeg({ quality: 90 }).toBuffer() : await image.png({ compressionLevel: 1 }).toBuffer();
  return { data, width, height };
}

function chunkSizeFor(r: Rng): number {
  if (r.chance(0.15)) return Number.POSITIVE_INFINITY;
  // log-uniform between 256 KiB and 6 MiB
  return Math.round(Math.exp(r.between(Math.log(256 * 1024), Math.log(6 * MiB))));
}

function cutsFor(r: Rng): Cut[] {
  const count = r.chance(0.35) ? 0 : r.int(1, 3);
  return Array.from({ length: count }, () => ({ fraction: r.between(0.03, 0.99), kind: r.chance(0.3) ? ('raw' as const) : ('abort' as const) })).sort(
    (a, b) => a.fraction - b.fraction,
  );
}

export async function makeWorkload(count: number, r: Rng, log: (line: string) => void): Promise<UploadPlan[]> {
  const plans: UploadPlan[] = [];
  const seen = new Set<string>();
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    const mime: Mime = r.chance(0.25) ? 'image/png' : 'image/jpeg';
    const big = r.chance(0.15);
    const target = big ? r.between(11 * MiB, 13 * MiB) : r.between(1.5 * MiB, 5 * MiB);
    const chunkSize = chunkSizeFor(r);
    const cuts = cutsFor(r);
    let image = await noiseImage(mime, target, r.int(1, 2 ** 31 - 1));
    while (seen.has(sha256(image.data))) image = await noiseImage(mime, target, r.int(1, 2 ** 31 - 1));
    const digest = sha256(image.data);
    seen.add(digest);
    plans.push({ index, label: `#${String(index).padStart(2, '0')}`, mime, ...image, sha256: digest, chunkSize, cuts });
  }
  const total = plans.reduce((n, p) => n + p.data.length, 0);
  log(`made ${count} images, ${(total / MiB).toFixed(1)} MiB in all, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return plans;
}

export function describePlan(p: UploadPlan): string {
  const chunk = Number.isFinite(p.chunkSize) ? `${(p.chunkSize / MiB).toFixed(2)} MiB chunks` : 'one PATCH';
  const cuts = p.cuts.map((c) => `${c.kind}@${Math.round(c.fraction * 100)}%`).join(' ') || 'no cuts';
  return `${p.label} ${p.mime.slice(6)} ${p.width}x${p.height} ${(p.data.length / MiB).toFixed(2)} MiB, ${chunk}, ${cuts}`;
}
