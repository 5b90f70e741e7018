/**
 * Benchmark 8: the footprint of the embedded default (file staging, public store on disk,
 * every other setting at its default but the per-account creation limits, which one bench
 * client would hit), on fresh server processes:
 *
 * 1. idle RSS: VmRSS of a server that started and sat idle for BENCH_FOOTPRINT_SETTLE_MS
 *    (default 3000 ms);
 * 2. load: then, on the same process, 100 concurrent 8 MiB uploads with their transcodes:
 *    each payload is a real 4000x3000 JPEG (Gaussian noise, quality chosen to land just
 *    under 8 MiB, padded to exactly 8 MiB after its end marker), uploaded by tus-js-client
 *    (POST + one PATCH each, as the other benchmarks) and re-encoded end to end (the final
 *    response carries the artifact). Peak RSS = max(VmHWM, sampled VmRSS); VmHWM is reset
 *    just before the uploads (echo 5 > /proc/<pid>/clear_refs). VmRSS and VmHWM are sampled
 *    every 50 ms and kept as a series for the chart (footprintCharts: docs/bench-footprint.svg).
 *
 * The bare @tus/server (baseline-server.ts, plain `node`, no transcode) gets the same uploads
 * as a control: what receiving 100 x 8 MiB at once costs without tusgate's gate and finish.
 * Rounds alternate tusgate, baseline; BENCH_FOOTPRINT_ROUNDS (default 3) fresh processes each.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { tusUpload } from './clients.ts';
import { readMemory, resetPeak } from './proc.ts';
import { MiB, startBaseline, startTusgate, type Target } from './servers.ts';
import { countStatuses, fmt, MB, median, minimum, sleep } from './stats.ts';
import { type Chart, chartImage, rssChart } from './charts.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';
import { startArgs } from '../support/server.ts';

export const FOOTPRINT_IDLE_TARGET = 90 * MB;
export const FOOTPRINT_PEAK_TARGET = 250 * MB;

export interface RssPoint {
  /** ms since the sampler started (just before the first upload). */
  tMs: number;
  rssBytes: number;
  hwmBytes: number;
}

/** Samples VmRSS and VmHWM of a process every `everyMs` and keeps the series. */
export class RssSeries {
  readonly points: RssPoint[] = [];
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  sample(): void {
    try {
      const { rss, hwm } = readMemory(this.pid);
      this.points.push({ tMs: Math.round(performance.now() - this.started), rssBytes: rss, hwmBytes: hwm });
    } catch {
      // the process is gone
    }
  }

  get maxRss(): number {
    return this.points.reduce((max, p) => Math.max(max, p.rssBytes), 0);
  }

  stop(): RssPoint[] {
    this.sample();
    clearInterval(this.timer);
    return this.points;
  }
}

export interface FootprintRun {
  server: Target['name'];
  round: number;
  /** false: an idle-only process (its idle RSS counts, nothing else was measured). */
  loaded: boolean;
  /** VmRSS after start-up and the settle time. */
  idleRss: number;
  /** max(VmHWM since the reset, sampled VmRSS) during the uploads and 1 s after. */
  peakRss: number;
  hwm: number;
  hwmReset: boolean;
  sampledPeak: number;
  /** VmRSS 1 s after the last final response. */
  rssAfter: number;
  seconds: number;
  statuses: string;
  failures: number;
  /** An example: an artifact's size and dimensions, or the first failure. */
  sample: string;
  points: RssPoint[];
}

export interface FootprintResult {
  uploads: number;
  uploadBytes: number;
  jpeg: { width: number; height: number; quality: number; jpegBytes: number };
  settleMs: number;
  everyMs: number;
  /** Loaded processes per server, and processes in all (the rest idle only). */
  rounds: number;
  processes: number;
  runs: FootprintRun[];
  idle: Record<Target['name'], { median: number; min: number; max: number }>;
  peak: Record<Target['name'], { median: number; min: number; max: number }>;
}

/**
 * A real 4000x3000 JPEG of exactly `size` bytes: Gaussian noise, the highest quality that
 * stays under `size`, then zero padding after the end marker (decoders stop there).
 */
export async function noiseJpeg(size: number, width = 4000, height = 3000): Promise<{ data: Buffer; quality: number; jpegBytes: number }> {
  const noise = () =>
    sharp({ create: { width, height, channels: 3, background: { r: 128, g: 128, b: 128 }, noise: { type: 'gaussian', mean: 128, sigma: 60 } } });
  for (let quality = 88; quality >= 40; quality -= 3) {
    const jpeg = await noise().jpeg({ quality }).toBuffer();
    if (jpeg.length <= size) {
      const data = Buffer.alloc(size);
      jpeg.copy(data);
      return { data, quality, jpegBytes: jpeg.length };
    }
  }
  throw new Error(`no noise JPEG of ${width}x${height} fits in ${size} bytes`);
}

const spread = (values: number[]) => ({ median: median(values), min: minimum(values), max: Math.max(...values.filter(Number.isFinite)) });

async function oneRun(
  server: Target,
  round: number,
  payload: Buffer,
  uploads: number,
  settleMs: number,
  everyMs: number,
  load: boolean,
): Promise<FootprintRun> {
  await sleep(settleMs);
  const idleRss = readMemory(server.pid).rss;
  if (!load) {
    const none = Number.NaN;
    return { server: server.name, round, loaded: false, idleRss, peakRss: none, hwm: none, hwmReset: false, sampledPeak: none, rssAfter: none, seconds: none, statuses: 'idle only', failures: 0, sample: '', points: [] };
  }
  const hwmReset = resetPeak(server.pid);
  const series = new RssSeries(server.pid, everyMs);
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: uploads }, (_, i) => tusUpload(server.endpoint, payload, { filename: `photo-${i}.jpg`, timeoutMs: 300_000 })),
  );
  const seconds = (performance.now() - started) / 1000;
  await sleep(1000);
  const points = series.stop();
  const { rss: rssAfter, hwm } = readMemory(server.pid);
  const sampledPeak = series.maxRss;
  const expected = server.name === 'tusgate' ? 200 : 204;
  const failed = results.filter((r) => !r.ok || r.status !== expected);
  let sample = 'none';
  const first = failed[0];
  if (first) sample = `${first.status ?? 'no response'}: ${(first.body || first.error || '').slice(0, 160)}`;
  else if (server.name === 'tusgate') {
    try {
      const view = JSON.parse(results[0]?.body ?? '') as { width: number; height: number; format: string; bytes: number };
      sample = `${view.width}x${view.height} ${view.format}, ${(view.bytes / 1e3).toFixed(0)} kB`;
    } catch {
      sample = 'no artifact in the final response';
    }
  } else sample = 'stored (no transcode)';
  return {
    server: server.name,
    round,
    loaded: true,
    idleRss,
    peakRss: Math.max(hwmReset ? hwm : 0, sampledPeak),
    hwm,
    hwmReset,
    sampledPeak,
    rssAfter,
    seconds,
    statuses: countStatuses(results.map((r) => r.status ?? r.error ?? 'none')),
    failures: failed.length,
    sample,
    points,
  };
}

export async function footprintBench(
  workDir: string,
  options: { rounds: number; idleProcesses?: number; uploads?: number; uploadBytes?: number; settleMs?: number; everyMs?: number },
  log: (line: string) => void,
): Promise<FootprintResult> {
  const { rounds, uploads = 100, uploadBytes = 8 * MiB, settleMs = 3000, everyMs = 50 } = options;
  // every process gives an idle reading; the first `rounds` of them also take the load
  const processes = Math.max(rounds, options.idleProcesses ?? rounds);
  const jpeg = await noiseJpeg(uploadBytes);
  log(`  payload: 4000x3000 noise JPEG, quality ${jpeg.quality}, ${jpeg.jpegBytes} bytes + padding = ${uploadBytes} bytes`);
  const runs: FootprintRun[] = [];
  for (let round = 1; round <= processes; round++) {
    for (const name of ['tusgate', 'baseline'] as const) {
      const dir = path.join(workDir, `footprint-${name}-${round}`);
      // the embedded default: TUSGATE_ENV only lifts the creation limits and sets LOG_LEVEL=info
      const server = name === 'tusgate' ? await startTusgate(dir) : await startBaseline(dir);
      let run: FootprintRun;
      try {
        run = await oneRun(server, round, jpeg.data, uploads, settleMs, everyMs, round <= rounds);
      } finally {
        await server.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
      runs.push(run);
      if (!run.loaded) {
        log(`  process ${round} ${name.padEnd(8)} idle ${fmt(run.idleRss / MB)} MB (idle only)`);
        continue;
      }
      log(
        `  round ${round} ${name.padEnd(8)} idle ${fmt(run.idleRss / MB)} MB, peak ${fmt(run.peakRss / MB)} MB (VmHWM ${fmt(run.hwm / MB)}, sampled ${fmt(run.sampledPeak / MB)}), 1 s after ${fmt(run.rssAfter / MB)} MB; ${uploads} uploads in ${fmt(run.seconds, 2)} s [${run.statuses}; e.g. ${run.sample}]`,
      );
    }
  }
  const of = (name: Target['name'], key: 'idleRss' | 'peakRss') => spread(runs.filter((r) => r.server === name && (key === 'idleRss' || r.loaded)).map((r) => r[key]));
  const result: FootprintResult = {
    uploads,
    uploadBytes,
    jpeg: { width: 4000, height: 3000, quality: jpeg.quality, jpegBytes: jpeg.jpegBytes },
    settleMs,
    everyMs,
    rounds,
    processes,
    runs,
    idle: { tusgate: of('tusgate', 'idleRss'), baseline: of('baseline', 'idleRss') },
    peak: { tusgate: of('tusgate', 'peakRss'), baseline: of('baseline', 'peakRss') },
  };
  return result;
}

export const FOOTPRINT_CHART_FILE = 'bench-footprint.svg';

/** The chart: server RSS over time during the load, one line per fresh process (docs/bench-footprint.svg). */
export function footprintCharts(result: FootprintResult): Chart[] {
  const svg = rssChart(
    `Benchmark 8: server RSS, ${result.uploads} concurrent ${fmt(result.uploadBytes / MiB, 0)} MiB uploads (tusgate with transcodes)`,
    result.runs.filter((r) => r.loaded).map((r) => ({
      name: `${r.server === 'baseline' ? 'bare @tus/server (no transcode)' : 'tusgate'}, process ${r.round}`,
      points: r.points.map((p) => ({ tMs: p.tMs, rssBytes: p.rssBytes })),
    })),
    { subtitle: `Node ${process.version}; VmRSS every ${result.everyMs} ms from the first POST to 1 s after the last final response; each line a fresh process` },
  );
  return [{ file: FOOTPRINT_CHART_FILE, alt: `Benchmark 8: server RSS over time during ${result.uploads} concurrent uploads with transcodes, tusgate vs bare @tus/server`, svg }];
}

const mb = (bytes: number) => (Number.isFinite(bytes) ? `${fmt(bytes / MB, 1)} MB` : '-');
const span = (s: { median: number; min: number; max: number }) => `${mb(s.median)} (${fmt(s.min / MB, 1)}-${fmt(s.max / MB, 1)})`;

export function footprintLines(result: FootprintResult): string[] {
  const { idle, peak } = result;
  return [
    `  => idle RSS tusgate median ${mb(idle.tusgate.median)} (min ${mb(idle.tusgate.min)}, max ${mb(idle.tusgate.max)}) ${verdict(idle.tusgate.median <= FOOTPRINT_IDLE_TARGET)} (target <= 90 MB); bare @tus/server ${mb(idle.baseline.median)}`,
    `  => peak RSS, ${result.uploads} x ${fmt(result.uploadBytes / MiB, 0)} MiB with transcodes: tusgate median ${mb(peak.tusgate.median)} (min ${mb(peak.tusgate.min)}, max ${mb(peak.tusgate.max)}) ${verdict(peak.tusgate.median <= FOOTPRINT_PEAK_TARGET)} (target <= 250 MB); bare @tus/server (no transcode) ${mb(peak.baseline.median)}`,
  ];
}

export function footprintRows(result: FootprintResult): SummaryRow[] {
  const { idle, peak } = result;
  const allOk = result.runs.filter((r) => r.server === 'tusgate' && r.loaded).every((r) => r.failures === 0);
  return [
    {
      benchmark: '8 footprint, idle',
      metric: `median RSS ${fmt(result.settleMs / 1000, 0)} s after start (min-max), ${result.processes} processes`,
      tusgate: span(idle.tusgate),
      baseline: `${span(idle.baseline)} (bare @tus/server)`,
      ratio: `${fmt(idle.tusgate.median / idle.baseline.median, 2)}x`,
      target: '<= 90 MB',
      result: verdict(Number.isFinite(idle.tusgate.median) ? idle.tusgate.median <= FOOTPRINT_IDLE_TARGET : undefined),
    },
    {
      benchmark: `8 footprint, ${result.uploads} x ${fmt(result.uploadBytes / MiB, 0)} MiB + transcodes`,
      metric: `median peak RSS (min-max), ${result.rounds} processes${allOk ? '' : ', some uploads failed'}`,
      tusgate: span(peak.tusgate),
      baseline: `${span(peak.baseline)} (bare, no transcode)`,
      ratio: `${fmt(peak.tusgate.median / peak.baseline.median, 2)}x`,
      target: '<= 250 MB',
      result: verdict(Number.isFinite(peak.tusgate.median) ? peak.tusgate.median <= FOOTPRINT_PEAK_TARGET && allOk : undefined),
    },
  ];
}

export function footprintSection(result: FootprintResult): string {
  const flags = startArgs().filter((a) => a.startsWith('--max')).join(' ') || 'none';
  const lines = [
    '## 8. Footprint of the embedded default: idle RSS, and 100 concurrent 8 MiB uploads with their transcodes',
    '',
    [
      `- **tusgate**: the embedded default (file staging, public store on disk, TRANSCODE_CONCURRENCY = CPU count, SHARP_THREADS=1, WebP 2048 q80, FINISH_QUEUE_MAX=64), npm start's node flags (\`${flags}\`); the benchmarks' LOG_LEVEL=info and no per-account creation limits (one client makes every upload). **Control**: the bare @tus/server (test/bench/baseline-server.ts, plain \`node\`, FileStore, no transcode).`,
      `- **Fresh processes**: ${result.processes} of each, alternating tusgate, baseline; the first ${result.rounds} of each also take the load. Idle RSS = VmRSS ${fmt(result.settleMs / 1000, 1)} s after the server said it listens (sharp is loaded by the first finish, not at start-up).`,
      `- **Load**, on the same process right after: ${result.uploads} tus-js-client uploads started at once (POST + one PATCH each, no retries), each a real ${result.jpeg.width}x${result.jpeg.height} JPEG (Gaussian noise, quality ${result.jpeg.quality}, ${fmt(result.jpeg.jpegBytes / MiB, 2)} MiB, zero-padded after its end marker to ${fmt(result.uploadBytes / MiB, 0)} MiB). tusgate answers each final PATCH after its finish (sha256, decode, resize to 2048, WebP, publish): the samples cover the transcodes.`,
      `- **Peak RSS** = max(VmHWM, sampled VmRSS) from the first upload to 1 s after the last final response; VmHWM reset just before (\`echo 5 > /proc/<pid>/clear_refs\`). VmRSS and VmHWM sampled every ${result.everyMs} ms from /proc/<pid>/status.`,
    ].join('\n'),
    '',
    mdTable(
      ['server', 'median idle RSS', 'min', 'max', 'median peak RSS', 'min', 'max', 'target'],
      (['tusgate', 'baseline'] as const).map((name) => [
        name === 'tusgate' ? 'tusgate (with transcodes)' : 'bare @tus/server (no transcode)',
        mb(result.idle[name].median),
        mb(result.idle[name].min),
        mb(result.idle[name].max),
        mb(result.peak[name].median),
        mb(result.peak[name].min),
        mb(result.peak[name].max),
        name === 'tusgate' ? 'idle <= 90 MB, peak <= 250 MB' : 'control',
      ]),
    ),
    '',
    chartImage(footprintCharts(result)[0]!),
    '',
    'Raw runs:',
    '',
    mdTable(
      ['process', 'server', 'idle RSS', 'peak RSS', 'VmHWM', 'sampled peak', 'RSS 1 s after', 'seconds', 'statuses', 'an output'],
      result.runs.map((r) => [
        r.round,
        r.server,
        mb(r.idleRss),
        mb(r.peakRss),
        r.hwmReset || !r.loaded ? mb(r.hwm) : `${mb(r.hwm)} (not reset)`,
        mb(r.sampledPeak),
        mb(r.rssAfter),
        r.loaded ? fmt(r.seconds, 2) : '-',
        r.statuses,
        r.sample,
      ]),
    ),
    '',
  ];
  return lines.join('\n');
}
