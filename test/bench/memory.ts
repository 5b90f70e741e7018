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
 */
import path from 'node:path';
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
}

export interface MemoryResult {
  runs: MemoryRun[];
  /** |peak delta (1 GiB) - peak delta (1 MiB)| for tusgate, bytes. */
  difference: number;
  /** The same for the bare @tus/server control. */
  baselineDifference: number;
}

async function oneUpload(start: () => Promise<Target>, label: string, size: number): Promise<MemoryRun> {
  const server = await start();
  try {
    await sleep(1500); // let start-up settle (recovery, first GCs)
    const rssBefore = readMemory(server.pid).rss;
    const hwmReset = resetPeak(server.pid);
    const sampler = new RssSampler(server.pid, 10, size);
    const url = await create(server.endpoint, size, 'photo.jpg');
    const body = generatedBody(size, await jpegHead(), MiB);
    const patch = await streamedPatch(url, 0, size, body.stream, 120_000);
    await sleep(1000);
    const sampledPeak = sampler.stop();
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
