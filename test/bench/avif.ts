/**
 * Benchmark 9: AVIF output. tusgate with OUTPUT_FORMAT=avif (the default profile's
 * OUTPUT_QUALITY and AVIF_EFFORT) on 12 MP photos (the benchmark 4 photos, 4000x3000 JPEG),
 * resized to fit 2048 as every finish is:
 *
 * - **end to end**: a fresh tusgate, TRANSCODE_CONCURRENCY=1, SHARP_THREADS=1; one upload
 *   at a time (tus-js-client, POST + one PATCH); the server process's CPU time
 *   (/proc/<pid>/stat, user + system, 10 ms ticks) from before the POST to the final
 *   response: receive, gate, sha256, decode, resize, AVIF encode, publish;
 * - **transcode alone**: hooks/transcode.ts's transcode() in the bench process with the
 *   same settings (the server's code, loaded from source), process.cpuUsage();
 * - **encode alone**: sharp's AVIF encoder with tusgate's settings on the resized image
 *   (a PNG made once, decoded in the measure too), for the same work avifenc does; and with
 *   effort 4 (libvips' and sharp's default, tusgate's before AVIF_EFFORT) for comparison;
 * - **avifenc** (Debian libavif-bin, its default speed 6, one thread, 4:2:0) on the same
 *   PNG, its cq-level searched so its bytes match tusgate's within 5%;
 * - **vipsthumbnail** (Debian libvips-tools) from the JPEG, the whole pipeline like tusgate's
 *   transcode (`-s 2048x2048 -o out.avif[Q=..,bitdepth=8,strip]`, libvips' default effort 4,
 *   VIPS_CONCURRENCY=1), its Q searched the same way (first photo only: it is slow).
 *
 * AVIF_EFFORT and OUTPUT_QUALITY in the bench's environment measure another setting.
 *
 * Children's CPU comes from bash's `times` (user + system of the finished child). Every
 * output's PSNR (dB, RGB) against the resized reference says whether "equal size" also
 * means comparable quality.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { configureSharp, transcode } from '../../hooks/transcode.ts';
import { loadConfig, policyOf, transcodeOf } from '../../server/config.ts';
import { tusUpload } from './clients.ts';
import { ensureAvifenc, ensureVipsthumbnail, vipsEnv } from './debian-tools.ts';
import { photo } from './payloads.ts';
import { readStat } from './proc.ts';
import { startTusgate } from './servers.ts';
import { fmt, median, minimum } from './stats.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';

const run = promisify(execFile);

/** CPU-s per 12 MP image, end to end. */
export const AVIF_CPU_TARGET = 2;
/** "Equal file size": within this fraction of tusgate's bytes. */
const SIZE_TOLERANCE = 0.05;

export interface AvifMeasure {
  tool: string;
  photo: number;
  /** The setting used (quality, cq-level, Q, effort). */
  setting: string;
  bytes: number;
  /** CPU seconds per image, one value per run. */
  cpu: number[];
  wall: number[];
  psnr: number;
  /** bytes / tusgate's bytes for this photo. */
  sizeRatio: number;
}

export interface AvifResult {
  quality: number;
  effort: number;
  photos: number[];
  rounds: number;
  measures: AvifMeasure[];
  tusgateCpuMedian: number;
  tusgateCpuMin: number;
  transcodeCpuMedian: number;
  avifenc: { available: boolean; version: string };
  vips: { available: boolean; version: string };
  notes: string[];
}

/** Runs a command to completion; answers its CPU seconds (user + system, from bash's `times`) and wall seconds. */
async function childCpu(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ cpu: number; wall: number }> {
  const started = performance.now();
  const { stdout } = await run('bash', ['-c', '"$@" >/dev/null 2>&1 || exit $?; times', 'bash', command, ...args], { env, maxBuffer: 1 << 20 });
  const wall = (performance.now() - started) / 1000;
  const last = stdout.trim().split('\n').at(-1) ?? '';
  const seconds = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (seconds.length !== 2) throw new Error(`no times line from ${command}: ${stdout}`);
  return { cpu: seconds[0]! + seconds[1]!, wall };
}

/** PSNR (dB) of an encoded image against raw RGB reference pixels of the same size. */
async function psnr(encoded: Buffer | string, reference: Buffer): Promise<number> {
  const pixels = await sharp(encoded).removeAlpha().raw().toBuffer();
  if (pixels.length !== reference.length) return Number.NaN;
  let squared = 0;
  for (let i = 0; i < pixels.length; i++) {
    const d = pixels[i]! - reference[i]!;
    squared += d * d;
  }
  return 10 * Math.log10((255 * 255) / (squared / pixels.length));
}

/**
 * Searches an integer setting in [lo, hi] whose output size is monotone in it for the one
 * whose bytes come closest to `target`: first `guess`, then a secant on log(bytes), until
 * within SIZE_TOLERANCE; `encode` answers the bytes (and CPU) of one try. At most 6 tries.
 */
async function matchSize<T extends { bytes: number }>(
  lo: number,
  hi: number,
  guess: number,
  /** true: the bytes grow with the setting (a quality); false: they shrink (a quantizer). */
  growing: boolean,
  target: number,
  encode: (setting: number) => Promise<T>,
): Promise<{ setting: number; out: T; tries: number }> {
  const tried = new Map<number, T>();
  const clamp = (v: number) => Math.min(hi, Math.max(lo, Math.round(v)));
  let next = clamp(guess);
  for (let tries = 0; tries < 6 && !tried.has(next); tries++) {
    const out = await encode(next);
    tried.set(next, out);
    if (Math.abs(out.bytes - target) / target <= SIZE_TOLERANCE) break;
    const points = [...tried].sort((a, b) => Math.abs(Math.log(a[1].bytes / target)) - Math.abs(Math.log(b[1].bytes / target)));
    const [[s1, o1], second] = [points[0]!, points[1]];
    if (!second) {
      // one point: a step of 4 towards the target
      next = clamp(s1 + (o1.bytes < target === growing ? 4 : -4));
      continue;
    }
    const [s2, o2] = second;
    const slope = (Math.log(o1.bytes) - Math.log(o2.bytes)) / (s1 - s2);
    let candidate = slope === 0 || !Number.isFinite(slope) ? s1 + 1 : clamp(s1 + (Math.log(target) - Math.log(o1.bytes)) / slope);
    if (tried.has(candidate)) candidate = clamp(candidate + (o1.bytes < target === slope > 0 ? 1 : -1));
    next = candidate;
  }
  const [setting, out] = [...tried].sort((a, b) => Math.abs(a[1].bytes - target) - Math.abs(b[1].bytes - target))[0]!;
  return { setting, out, tries: tried.size };
}

export async function avifBench(
  workDir: string,
  options: { photos: number; rounds: number },
  log: (line: string) => void,
): Promise<AvifResult> {
  const dir = path.join(workDir, 'avif');
  fs.mkdirSync(dir, { recursive: true });
  const notes: string[] = [];
  const avifencFound = ensureAvifenc(log);
  const vipsFound = ensureVipsthumbnail(log);
  notes.push(avifencFound.note, vipsFound.note);
  const avifencVersion = avifencFound.ok ? ((await run('avifenc', ['--version'])).stdout.split('\n').find((l) => l.startsWith('Version')) ?? 'n/a').trim() : 'n/a';
  const vipsVersion = vipsFound.ok ? (await run('vips', ['--version'], { env: vipsEnv() })).stdout.trim() : 'n/a';

  // The server's own settings, from the server's own configuration code.
  // AVIF_EFFORT and OUTPUT_QUALITY from the bench's environment, if set (to measure another setting), else the defaults
  const chosen = Object.fromEntries((['AVIF_EFFORT', 'OUTPUT_QUALITY'] as const).flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
  const config = loadConfig({ OUTPUT_FORMAT: 'avif', MAX_UPLOAD_BYTES: String(50 * 1024 * 1024), ...chosen });
  const policy = policyOf(config);
  const output = transcodeOf(config);
  const effort = output.avifEffort;
  const quality = output.quality;

  const photoIds = Array.from({ length: options.photos }, (_, i) => i + 1);
  const jpegs = new Map<number, { file: string; data: Buffer; png: string; reference: Buffer }>();
  for (const id of photoIds) {
    const data = await photo(id);
    const file = path.join(dir, `photo-${id}.jpg`);
    fs.writeFileSync(file, data);
    // the resized image every tool encodes: the finish's resize (fit inside 2048, sRGB)
    const resized = sharp(file).autoOrient().resize({ width: 2048, height: 2048, fit: 'inside', withoutEnlargement: true }).toColourspace('srgb');
    const png = path.join(dir, `photo-${id}-2048.png`);
    await resized.clone().png({ compressionLevel: 1 }).toFile(png);
    const reference = await sharp(png).removeAlpha().raw().toBuffer();
    jpegs.set(id, { file, data, png, reference });
  }
  log(`  ${photoIds.length} photos 4000x3000 (${[...jpegs.values()].map((j) => `${(j.data.length / 1e6).toFixed(2)} MB`).join(', ')}); tusgate AVIF quality ${quality}, effort ${effort}, 4:2:0, 8 bit`);

  const measures: AvifMeasure[] = [];
  const tusgateBytes = new Map<number, number>();
  const add = (m: Omit<AvifMeasure, 'sizeRatio'>) => {
    const base = tusgateBytes.get(m.photo) ?? m.bytes;
    const full = { ...m, sizeRatio: m.bytes / base };
    measures.push(full);
    log(
      `  ${m.tool.padEnd(30)} photo ${m.photo} ${m.setting.padEnd(18)} ${String(m.bytes).padStart(8)} B (${fmt(full.sizeRatio, 3)}x), PSNR ${fmt(m.psnr, 2)} dB, CPU ${m.cpu.map((c) => fmt(c, 2)).join(' / ')} s, wall ${m.wall.map((w) => fmt(w, 2)).join(' / ')} s`,
    );
  };

  // 1. tusgate end to end
  const server = await startTusgate(path.join(dir, 'tusgate'), {
    OUTPUT_FORMAT: 'avif',
    AVIF_EFFORT: String(effort),
    OUTPUT_QUALITY: String(quality),
    TRANSCODE_CONCURRENCY: '1',
    SHARP_THREADS: '1',
    MAX_UPLOAD_BYTES: String(50 * 1024 * 1024),
  });
  try {
    // warm-up: the first finish loads sharp
    const warm = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#777' } }).jpeg().toBuffer();
    await tusUpload(server.endpoint, warm);
    for (const id of photoIds) {
      const { data, reference } = jpegs.get(id)!;
      const cpu: number[] = [];
      const wall: number[] = [];
      let bytes = Number.NaN;
      let quality = Number.NaN;
      for (let round = 0; round < options.rounds; round++) {
        const before = readStat(server.pid).cpuMs;
        const started = performance.now();
        const result = await tusUpload(server.endpoint, data, { timeoutMs: 300_000 });
        wall.push((performance.now() - started) / 1000);
        cpu.push((readStat(server.pid).cpuMs - before) / 1000);
        if (!result.ok || result.status !== 200) throw new Error(`tusgate AVIF upload answered ${result.status}: ${result.body.slice(0, 200)}`);
        const view = JSON.parse(result.body) as { url: string; bytes: number; format: string };
        if (view.format !== 'avif') throw new Error(`tusgate answered ${view.format}, not avif`);
        bytes = view.bytes;
        if (round === 0) quality = await psnr(Buffer.from(await (await fetch(view.url)).arrayBuffer()), reference);
      }
      tusgateBytes.set(id, bytes);
      add({ tool: 'tusgate end to end', photo: id, setting: `q${output.quality} effort ${effort}`, bytes, cpu, wall, psnr: quality });
    }
  } finally {
    await server.stop();
  }

  // 2. the transcode alone, in this process, with the server's code and settings
  const previousThreads = sharp.concurrency();
  configureSharp(config.SHARP_THREADS);
  try {
    for (const id of photoIds) {
      const { file, reference } = jpegs.get(id)!;
      const cpu: number[] = [];
      const wall: number[] = [];
      let out: Buffer | undefined;
      for (let round = 0; round < options.rounds; round++) {
        const c0 = process.cpuUsage();
        const started = performance.now();
        out = (await transcode(file, policy, output)).data;
        wall.push((performance.now() - started) / 1000);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1e6);
      }
      add({ tool: 'tusgate transcode() alone', photo: id, setting: `q${output.quality} effort ${effort}`, bytes: out!.length, cpu, wall, psnr: await psnr(out!, reference) });
    }
    // 3. the encoder alone on the resized PNG: tusgate's settings, and effort 4 (the previous default) on the first photo
    const encodeOnly = async (id: number, effortUsed: number, q: number) => {
      const c0 = process.cpuUsage();
      const started = performance.now();
      const out = await sharp(jpegs.get(id)!.png).avif({ quality: q, chromaSubsampling: '4:2:0', effort: effortUsed }).toBuffer();
      const c = process.cpuUsage(c0);
      return { out, cpu: (c.user + c.system) / 1e6, wall: (performance.now() - started) / 1000 };
    };
    for (const id of photoIds) {
      const e = await encodeOnly(id, effort, quality);
      add({ tool: 'sharp encode alone (tusgate)', photo: id, setting: `q${quality} effort ${effort}`, bytes: e.out.length, cpu: [e.cpu], wall: [e.wall], psnr: await psnr(e.out, jpegs.get(id)!.reference) });
    }
    // the efforts around tusgate's, on the first photo: effort 4 is sharp's and libvips' default (tusgate's before AVIF_EFFORT)
    for (const other of [...new Set([effort - 1, effort + 1, 4])].filter((e) => e >= 0 && e <= 9 && e !== effort)) {
      const id = photoIds[0]!;
      const e = await encodeOnly(id, other, quality);
      add({ tool: `sharp encode alone, effort ${other}`, photo: id, setting: `q${quality} effort ${other}`, bytes: e.out.length, cpu: [e.cpu], wall: [e.wall], psnr: await psnr(e.out, jpegs.get(id)!.reference) });
    }
  } finally {
    sharp.concurrency(previousThreads);
    sharp.cache({ memory: 50, files: 20, items: 100 }); // sharp's defaults, which transcode() turned off
  }

  // 4. avifenc on the resized PNG, cq-level searched to tusgate's bytes
  if (avifencFound.ok) {
    for (const id of photoIds) {
      const { png, reference } = jpegs.get(id)!;
      const target = tusgateBytes.get(id)!;
      const out = path.join(dir, `avifenc-${id}.avif`);
      const { setting, out: r } = await matchSize(0, 63, Math.round(((100 - quality) * 63) / 100), false, target, async (cq) => {
        const t = await childCpu('avifenc', ['-j', '1', '-s', '6', '-y', '420', '--min', '0', '--max', '63', '-a', 'end-usage=q', '-a', `cq-level=${cq}`, png, out]);
        return { ...t, bytes: fs.statSync(out).size };
      });
      // the match, encoded once more: its CPU is the measure (the search's try is the first value)
      const again = await childCpu('avifenc', ['-j', '1', '-s', '6', '-y', '420', '--min', '0', '--max', '63', '-a', 'end-usage=q', '-a', `cq-level=${setting}`, png, out]);
      add({ tool: 'avifenc -s 6 (encode alone)', photo: id, setting: `cq-level ${setting}`, bytes: r.bytes, cpu: [r.cpu, again.cpu], wall: [r.wall, again.wall], psnr: await psnr(out, reference) });
    }
  }

  // 5. vipsthumbnail from the JPEG (the whole pipeline), Q searched to tusgate's bytes, first photo only
  if (vipsFound.ok) {
    const id = photoIds[0]!;
    const { file, reference } = jpegs.get(id)!;
    const target = tusgateBytes.get(id)!;
    const out = path.join(dir, `vips-${id}.avif`);
    const { setting, out: r } = await matchSize(1, 100, quality, true, target, async (q) => {
      const t = await childCpu('vipsthumbnail', [file, '-s', '2048x2048', '-o', `${out}[Q=${q},bitdepth=8,strip]`], vipsEnv());
      return { ...t, bytes: fs.statSync(out).size };
    });
    add({ tool: 'vipsthumbnail (whole pipeline)', photo: id, setting: `Q ${setting} effort 4`, bytes: r.bytes, cpu: [r.cpu], wall: [r.wall], psnr: await psnr(out, reference) });
  }

  const of = (tool: string) => measures.filter((m) => m.tool === tool).flatMap((m) => m.cpu);
  return {
    quality,
    effort,
    photos: [...jpegs.values()].map((j) => j.data.length),
    rounds: options.rounds,
    measures,
    tusgateCpuMedian: median(of('tusgate end to end')),
    tusgateCpuMin: minimum(of('tusgate end to end')),
    transcodeCpuMedian: median(of('tusgate transcode() alone')),
    avifenc: { available: avifencFound.ok, version: avifencVersion },
    vips: { available: vipsFound.ok, version: vipsVersion },
    notes,
  };
}

const cpuOf = (r: AvifResult, tool: string) => median(r.measures.filter((m) => m.tool === tool).flatMap((m) => m.cpu));
const ratioOf = (r: AvifResult, tool: string) => median(r.measures.filter((m) => m.tool === tool).map((m) => m.sizeRatio));

export function avifLines(r: AvifResult): string[] {
  const lines = [
    `  => tusgate AVIF (q${r.quality}, effort ${r.effort}) end to end: median ${fmt(r.tusgateCpuMedian, 2)} CPU-s per 12 MP image (min ${fmt(r.tusgateCpuMin, 2)}) ${verdict(r.tusgateCpuMedian <= AVIF_CPU_TARGET)} (target <= ${AVIF_CPU_TARGET}); transcode alone ${fmt(r.transcodeCpuMedian, 2)} s`,
  ];
  if (r.avifenc.available) {
    lines.push(`  => encode alone: sharp with tusgate's settings ${fmt(cpuOf(r, 'sharp encode alone (tusgate)'), 2)} CPU-s, avifenc -s 6 at ${fmt(ratioOf(r, 'avifenc -s 6 (encode alone)'), 3)}x the bytes ${fmt(cpuOf(r, 'avifenc -s 6 (encode alone)'), 2)} CPU-s`);
  }
  if (r.vips.available) {
    lines.push(`  => vipsthumbnail (libvips defaults, effort 4) at ${fmt(ratioOf(r, 'vipsthumbnail (whole pipeline)'), 3)}x the bytes: ${fmt(cpuOf(r, 'vipsthumbnail (whole pipeline)'), 2)} CPU-s`);
  }
  return lines;
}

export function avifRows(r: AvifResult): SummaryRow[] {
  const rows: SummaryRow[] = [
    {
      benchmark: `9 AVIF, 12 MP JPEG -> AVIF 2048 q${r.quality} effort ${r.effort}`,
      metric: 'median server CPU-s per image, end to end',
      tusgate: fmt(r.tusgateCpuMedian, 2),
      baseline: r.avifenc.available ? `${fmt(cpuOf(r, 'avifenc -s 6 (encode alone)'), 2)} (avifenc, encode alone, ${fmt(ratioOf(r, 'avifenc -s 6 (encode alone)'), 2)}x bytes)` : 'avifenc n/a',
      ratio: r.avifenc.available ? `${fmt(r.tusgateCpuMedian / cpuOf(r, 'avifenc -s 6 (encode alone)'), 2)}x` : '',
      target: `<= ${AVIF_CPU_TARGET} CPU-s`,
      result: verdict(Number.isFinite(r.tusgateCpuMedian) ? r.tusgateCpuMedian <= AVIF_CPU_TARGET : undefined),
    },
  ];
  if (r.vips.available) {
    rows.push({
      benchmark: '9 AVIF',
      metric: 'CPU-s, decode + resize + encode (transcode alone)',
      tusgate: fmt(r.transcodeCpuMedian, 2),
      baseline: `${fmt(cpuOf(r, 'vipsthumbnail (whole pipeline)'), 2)} (vipsthumbnail, ${fmt(ratioOf(r, 'vipsthumbnail (whole pipeline)'), 2)}x bytes)`,
      ratio: `${fmt(r.transcodeCpuMedian / cpuOf(r, 'vipsthumbnail (whole pipeline)'), 2)}x`,
      target: 'none (reported)',
      result: 'info',
    });
  }
  return rows;
}

export function avifSection(r: AvifResult): string {
  const lines = [
    '## 9. AVIF: 12 MP JPEG to AVIF 2048, tusgate vs avifenc and libvips at equal file size',
    '',
    [
      `- Photos: the benchmark 4 generator, ${r.photos.length} distinct 4000x3000 JPEGs (${r.photos.map((b) => `${fmt(b / 1e6, 2)} MB`).join(', ')}). Every tool encodes the same resized image (fit inside 2048x2048, sRGB: 2048x1536) to 8-bit 4:2:0 AVIF, one thread.`,
      `- **tusgate end to end**: OUTPUT_FORMAT=avif, OUTPUT_QUALITY=${r.quality} and AVIF_EFFORT=${r.effort} (the defaults unless the bench's environment sets them), TRANSCODE_CONCURRENCY=1, SHARP_THREADS=1; one tus-js-client upload at a time (a warm-up first); CPU = the server process's user + system time (/proc/<pid>/stat) from before the POST to the final response (receive, gate, sha256, decode, resize, encode, publish). ${r.rounds} uploads per photo.`,
      `- **tusgate transcode() alone**: the server's hooks/transcode.ts in the bench process with the same settings (process.cpuUsage()). **sharp encode alone**: only the AVIF encode of the resized PNG (its decode included), as avifenc does; also with effort 4, libvips' default and tusgate's before AVIF_EFFORT.`,
      `- **avifenc** (${r.avifenc.version}): \`avifenc -j 1 -s 6 -y 420 --min 0 --max 63 -a end-usage=q -a cq-level=N in.png out.avif\` (speed 6 is its default), N searched until the bytes are within 5% of tusgate's for that photo; the CPU of the try that matched and of one more run.`,
      `- **vipsthumbnail** (${r.vips.version}, Debian, with Debian's libheif and libaom, not sharp's): \`vipsthumbnail in.jpg -s 2048x2048 -o out.avif[Q=N,bitdepth=8,strip]\` (libvips' defaults otherwise: effort 4, 4:2:0 below Q 90), VIPS_CONCURRENCY=1, Q searched the same way, first photo only.`,
      '- Children\'s CPU from bash\'s `times`; PSNR (dB, over RGB) of every output against the resized image, so that equal size can be read with quality beside it.',
      `- ${r.notes.join('; ')}.`,
    ].join('\n'),
    '',
    mdTable(
      ['tool', 'photo', 'setting', 'bytes', 'bytes / tusgate', 'PSNR dB', 'CPU-s per image (runs)', 'wall s'],
      r.measures.map((m) => [m.tool, m.photo, m.setting, m.bytes, `${fmt(m.sizeRatio, 3)}x`, fmt(m.psnr, 2), m.cpu.map((c) => fmt(c, 2)).join(' / '), m.wall.map((w) => fmt(w, 2)).join(' / ')]),
    ),
    '',
    avifReading(r),
    '',
  ];
  return lines.join('\n');
}

function avifReading(r: AvifResult): string {
  const parts = [
    `tusgate spends a median ${fmt(r.tusgateCpuMedian, 2)} CPU-s per 12 MP image end to end (target <= ${AVIF_CPU_TARGET}: ${verdict(r.tusgateCpuMedian <= AVIF_CPU_TARGET)}), of which the transcode is ${fmt(r.transcodeCpuMedian, 2)} s.`,
  ];
  const e4 = r.measures.find((m) => m.tool === 'sharp encode alone, effort 4');
  const same = r.measures.find((m) => m.tool === 'sharp encode alone (tusgate)' && m.photo === e4?.photo);
  if (e4 && same) {
    parts.push(
      `Effort 4 (sharp's and libvips' default, tusgate's until AVIF_EFFORT) encodes photo ${e4.photo} in ${fmt(e4.cpu[0], 2)} CPU-s to ${e4.bytes} bytes at ${fmt(e4.psnr, 2)} dB; effort ${r.effort} in ${fmt(same.cpu[0], 2)} s to ${same.bytes} bytes at ${fmt(same.psnr, 2)} dB.`,
    );
  }
  for (const other of [r.effort - 1, r.effort + 1]) {
    const near = r.measures.find((m) => m.tool === `sharp encode alone, effort ${other}`);
    if (!near || !same || other === 4) continue;
    parts.push(
      `Effort ${other} (AVIF_EFFORT=${other}) encodes it in ${fmt(near.cpu[0], 2)} s to ${near.bytes} bytes (${fmt(near.bytes / same.bytes, 3)}x) at ${fmt(near.psnr, 2)} dB.`,
    );
  }
  if (r.avifenc.available) {
    parts.push(
      `avifenc (libavif 0.11 with libaom 3.6, older than sharp's bundled libaom ${sharp.versions.aom ?? 'n/a'}) at its default speed 6 needs ${fmt(cpuOf(r, 'avifenc -s 6 (encode alone)'), 2)} CPU-s for the same bytes, against ${fmt(cpuOf(r, 'sharp encode alone (tusgate)'), 2)} s for sharp's encode with tusgate's settings.`,
    );
  }
  return parts.join(' ');
}
