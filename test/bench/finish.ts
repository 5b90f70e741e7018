/**
 * Benchmark 4: finish throughput. N photo-like 12 MP JPEGs (4000x3000, ~3.5 MB) through
 * tusgate end to end - tus-js-client upload (POST + one PATCH) whose final response comes
 * after the finish (sha256, decode, resize to 2048 long edge, WebP quality 80, publish) -
 * with 2 uploads in flight, vs the transcode alone by Debian's vipsthumbnail
 * (`vipsthumbnail in.jpg -s 2048x2048 -o out.webp[Q=80,strip,effort=E]`), 2 processes at a time,
 * where E is tusgate's default WEBP_EFFORT, given to both.
 * Threads per image are matched: tusgate SHARP_THREADS=1, vipsthumbnail VIPS_CONCURRENCY=1.
 * Rounds are interleaved (vipsthumbnail, tusgate, ...); images/s = N / wall time of a round.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tusUpload } from './clients.ts';
import { vipsEnv } from './debian-tools.ts';
import { photo } from './payloads.ts';
import { startTusgate } from './servers.ts';
import { median } from './stats.ts';
import { loadConfig, transcodeOf } from '../../server/config.ts';

/** tusgate's default WebP effort: both tools encode with it. */
export const WEBP_EFFORT = transcodeOf(loadConfig({})).webpEffort;

const run = promisify(execFile);

export interface FinishRound {
  tool: 'tusgate' | 'vipsthumbnail';
  round: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  failures: number;
  /** An example output: size and dimensions. */
  sample: string;
}

export interface FinishResult {
  available: boolean;
  note: string;
  vipsVersion: string;
  /** The WebP effort both encoded with (absent in results from before it was given: libvips' default 4). */
  webpEffort?: number;
  images: number;
  concurrency: number;
  photoBytes: number[];
  rounds: FinishRound[];
  tusgateMedian: number;
  vipsMedian: number;
  ratio: number;
}

/** Runs `work` over `items` with `concurrency` workers; answers the wall time in seconds. */
async function pool<T>(items: T[], concurrency: number, work: (item: T, index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

export async function finishBench(
  workDir: string,
  options: { images: number; rounds: number; concurrency: number; vips: { ok: boolean; note: string } },
  log: (line: string) => void,
): Promise<FinishResult> {
  const { images, rounds, concurrency } = options;
  const dir = path.join(workDir, 'finish');
  const inDir = path.join(dir, 'in');
  const outDir = path.join(dir, 'out');
  fs.mkdirSync(inDir, { recursive: true });
  fs.mkdirSync(outDir, { recursive: true });
  // 4 distinct photos, used in turn
  const photos: Buffer[] = [];
  for (let seed = 1; seed <= 4; seed++) photos.push(await photo(seed));
  const files = photos.map((data, i) => {
    const file = path.join(inDir, `photo-${i}.jpg`);
    fs.writeFileSync(file, data);
    return file;
  });
  log(`  photos: ${photos.map((p) => `${(p.length / 1e6).toFixed(2)} MB`).join(', ')}`);
  let vipsVersion = 'n/a';
  if (options.vips.ok) {
    vipsVersion = (await run('vips', ['--version'], { env: vipsEnv() })).stdout.trim();
  }
  const server = await startTusgate(path.join(dir, 'tusgate'), {
    TRANSCODE_CONCURRENCY: String(concurrency),
    SHARP_THREADS: '1',
    OUTPUT_FORMAT: 'webp',
    OUTPUT_QUALITY: '80',
    WEBP_EFFORT: String(WEBP_EFFORT),
    OUTPUT_LONG_EDGE: '2048',
    MAX_UPLOAD_BYTES: String(50 * 1024 * 1024),
  });
  const out: FinishRound[] = [];
  try {
    const list = Array.from({ length: images }, (_, i) => i % photos.length);
    const viaVips = async (round: number, count: number): Promise<FinishRound> => {
      let failures = 0;
      const seconds = await pool(list.slice(0, count), concurrency, async (which, index) => {
        const target = path.join(outDir, `r${round}-${index}.webp`);
        try {
          await run('vipsthumbnail', [files[which]!, '-s', '2048x2048', '-o', `${target}[Q=80,strip,effort=${WEBP_EFFORT}]`], { env: vipsEnv() });
          if (!fs.existsSync(target)) failures += 1;
        } catch {
          failures += 1;
        }
      });
      const first = path.join(outDir, `r${round}-0.webp`);
      let sample = 'none';
      if (fs.existsSync(first)) {
        const { default: sharp } = await import('sharp');
        const meta = await sharp(first).metadata();
        sample = `${meta.width}x${meta.height} webp, ${(fs.statSync(first).size / 1e3).toFixed(0)} kB`;
      }
      fs.rmSync(outDir, { recursive: true, force: true });
      fs.mkdirSync(outDir);
      return { tool: 'vipsthumbnail', round, images: count, seconds, imagesPerSecond: count / seconds, failures, sample };
    };
    const viaTusgate = async (round: number, count: number): Promise<FinishRound> => {
      let failures = 0;
      let sample = 'none';
      const seconds = await pool(list.slice(0, count), concurrency, async (which) => {
        const result = await tusUpload(server.endpoint, photos[which]!);
        if (!result.ok || result.status !== 200) {
          failures += 1;
          if (sample === 'none') sample = `${result.status}: ${result.body.slice(0, 200)}`;
          return;
        }
        if (sample === 'none' || sample.includes(':')) {
          const view = JSON.parse(result.body) as { width: number; height: number; format: string; bytes: number };
          sample = `${view.width}x${view.height} ${view.format}, ${(view.bytes / 1e3).toFixed(0)} kB`;
        }
      });
      // published artifacts are not part of the measure: drop them between rounds
      fs.rmSync(path.join(server.dataDir, 'public'), { recursive: true, force: true });
      return { tool: 'tusgate', round, images: count, seconds, imagesPerSecond: count / seconds, failures, sample };
    };
    // warm-up (not counted)
    if (options.vips.ok) await viaVips(0, concurrency);
    await viaTusgate(0, concurrency);
    for (let round = 1; round <= rounds; round++) {
      for (const measure of options.vips.ok ? [viaVips, viaTusgate] : [viaTusgate]) {
        const r = await measure(round, images);
        out.push(r);
        log(`  round ${round} ${r.tool.padEnd(13)} ${r.imagesPerSecond.toFixed(2)} images/s (${r.images} in ${r.seconds.toFixed(2)} s, ${r.failures} failed; e.g. ${r.sample})`);
      }
    }
  } finally {
    await server.stop();
  }
  const of = (tool: FinishRound['tool']) => median(out.filter((r) => r.tool === tool).map((r) => r.imagesPerSecond));
  const tusgateMedian = of('tusgate');
  const vipsMedian = options.vips.ok ? of('vipsthumbnail') : Number.NaN;
  return {
    available: options.vips.ok,
    note: options.vips.note,
    vipsVersion,
    webpEffort: WEBP_EFFORT,
    images,
    concurrency,
    photoBytes: photos.map((p) => p.length),
    rounds: out,
    tusgateMedian,
    vipsMedian,
    ratio: tusgateMedian / vipsMedian,
  };
}
