/**
 * Benchmark 3: server memory for a 1 MiB vs a 1 GiB allowed upload (the JPEG header, then
 * filler), each on a fresh server. The upload is created with a raw POST and sent as one
 * streamed PATCH (1 MiB chunks from a generator); tusgate's response comes after its finish
 * (sha256 of the staged file, transcode, publish), so "during" covers the finish too.
 * The same two uploads go to the bare @tus/server baseline as a control.
 *
 * Measured from /proc/<server pid>/status: VmRSS before the upload (server idle 1.5 s after
 * start-up), VmRSS sampled every 10 ms during the upload and for 1 s after its response,
 * and VmHWM (the kernel's peak RSS), reset to the current RSS just before the upload
 * (echo 5 > /proc/<pid>/clear_refs). Peak delta = max(VmHWM, sampled max) - RSS before.
 * The samples are split at the moment every byte was stored (wchar, as in benchmark 1).
 * RSS over time (every 20 ms from the POST to 1 s after the response) is kept per run and
 * drawn as docs/bench-memory.svg; startRssTrace is there for other benchmarks too.
 */
import path from 'node:path';
import { type Chart, rssChart, type RssPoint } from './charts.ts';
import { create, streamedPatch, type StreamedPatch } from './clients.ts';
import { generatedBody, jpegHead } from './payloads.ts';
import { readMemory, resetPeak, RssSampler } from './proc.ts';
import { GiB, MiB, startBaseline, startTusgate, type Target } from './servers.ts';
import { sleep } from './stats.ts';

export interface MemoryRun {
  server: Target['name'];
  label: string;
  bytes: number;
  rssBefore: number;
  sampledPeak: number;
  /** Sampled peak until every byte was stored, and after (finish, response, 1 s idle). */
  receivePeak: number;
  afterStoredPeak: number;
  hwm: number;
  hwmReset: boolean;
  rssAfter: number;
  peakDelta: number;
  samples: number;
  patch: StreamedPatch;
  /** The artifact or error the server answered. */
  outcome: string;
  /** VmRSS over time, from the POST (t = 0) to 1 s after the response. */
  trace: RssPoint[];
}

export interface MemoryResult {
  runs: MemoryRun[];
  /** |peak delta (1 GiB) - peak delta (1 MiB)| for tusgate, bytes. */
  difference: number;
  /** The same for the bare @tus/server control. */
  baselineDifference: number;
}

/**
 * Samples /proc/<pid>/status VmRSS every `everyMs` from now on; stop() answers the points,
 * tMs counted from the call. A process that has exited ends the trace.
 */
export function startRssTrace(pid: number, everyMs = 20): { stop(): RssPoint[] } {
  const points: RssPoint[] = [];
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const sample = () => {
    try {
      points.push({ tMs: performance.now() - t0, rssBytes: readMemory(pid).rss });
    } catch {
      clearInterval(timer);
    }
  };
  sample();
  timer = setInterval(sample, everyMs);
  return {
    stop() {
      sample();
      clearInterval(timer);
      return points;
    },
  };
}

async function oneUpload(start: () => Promise<Target>, label: string, size: number): Promise<MemoryRun> {
  const server = await start();
  try {
    await sleep(1500); // let start-up settle (recovery, first GCs)
    const rssBefore = readMemory(server.pid).rss;
    const hwmReset = resetPeak(server.pid);
    const sampler = new RssSampler(server.pid, 10, size);
    const trace = startRssTrace(server.pid);
    const url = await create(server.endpoint, size, 'photo.jpg');
    const body = generatedBody(size, await jpegHead(), MiB);
    const patch = await streamedPatch(url, 0, size, body.stream, 120_000);
    await sleep(1000);
    const sampledPeak = sampler.stop();
    const points = trace.stop();
    const { rss: rssAfter, hwm } = readMemory(server.pid);
    const peak = Math.max(hwmReset ? hwm : 0, sampledPeak);
    return {
      server: server.name,
      label,
      bytes: size,
      rssBefore,
      sampledPeak,
      receivePeak: sampler.phaseMax.receive,
      afterStoredPeak: sampler.phaseMax['after-stored'],
      hwm,
      hwmReset,
      rssAfter,
      peakDelta: peak - rssBefore,
      samples: sampler.samples,
      patch: { ...patch, body: patch.body.slice(0, 300) },
      outcome: outcomeOf(patch),
      trace: points,
    };
  } finally {
    await server.stop();
  }
}

function outcomeOf(patch: StreamedPatch): string {
  try {
    const body = JSON.parse(patch.body) as { width?: number; height?: number; format?: string; error?: { code?: string } };
    if (body.error?.code) return `${patch.status} ${body.error.code}`;
    if (body.width) return `${patch.status} ${body.format} ${body.width}x${body.height}`;
  } catch {
    // not JSON
  }
  return `${patch.status ?? patch.end}`;
}

export async function memoryBench(workDir: string): Promise<MemoryResult> {
  const tusgate = (label: string) => () => startTusgate(path.join(workDir, `memory-tusgate-${label}`));
  const baseline = (label: string) => () => startBaseline(path.join(workDir, `memory-baseline-${label}`));
  const runs: MemoryRun[] = [];
  runs.push(await oneUpload(tusgate('1MiB'), '1 MiB', MiB));
  runs.push(await oneUpload(tusgate('1GiB'), '1 GiB', GiB));
  // a point between: does the growth scale with the upload, or level off?
  runs.push(await oneUpload(tusgate('256MiB'), '256 MiB', 256 * MiB));
  runs.push(await oneUpload(baseline('1MiB'), '1 MiB', MiB));
  runs.push(await oneUpload(baseline('1GiB'), '1 GiB', GiB));
  const delta = (server: Target['name'], bytes: number) => runs.find((r) => r.server === server && r.bytes === bytes)?.peakDelta ?? Number.NaN;
  return {
    runs,
    difference: Math.abs(delta('tusgate', GiB) - delta('tusgate', MiB)),
    baselineDifference: Math.abs(delta('baseline', GiB) - delta('baseline', MiB)),
  };
}

export const MEMORY_CHART_FILE = 'bench-memory.svg';

/** Benchmark 3's RSS over time, one line per upload (t = 0 at its POST). */
export function memoryCharts(result: MemoryResult): Chart[] {
  const name = (r: MemoryRun) => `${r.server === 'baseline' ? 'bare @tus/server' : 'tusgate'} ${r.label}`;
  const svg = rssChart(
    'Benchmark 3: server RSS during one upload (fresh server each)',
    result.runs.map((r) => ({ name: name(r), points: r.trace })),
    { subtitle: `Node ${process.version}; VmRSS every 20 ms from the POST to 1 s after the response` },
  );
  return [{ file: MEMORY_CHART_FILE, alt: 'Benchmark 3: server RSS over time for 1 MiB, 256 MiB and 1 GiB uploads', svg }];
}
