/**
 * Benchmark 10: 50 concurrent 24 MP finishes. 50 tus-js-client uploads (POST + one PATCH
 * each, no retries) of a photo-like 6000x4000 JPEG started at once against one fresh
 * tusgate with the defaults (TRANSCODE_CONCURRENCY = CPU count, FINISH_QUEUE_MAX=64,
 * WebP 2048 q80). Each final PATCH is answered after its finish.
 *
 * Reported: every final status (200, or a 503 E_BUSY with Retry-After at creation if the
 * finish queue were full: at FINISH_QUEUE_MAX finishes running or waiting, new POSTs are
 * refused, never a PATCH whose bytes are in), the finish queue's depth (GET /metrics
 * `tusgate_finish_waiting` and GET /readyz, every 200 ms), the server's peak RSS (VmHWM
 * reset before, VmRSS sampled every 50 ms), that the process is still alive (no OOM kill),
 * and per upload:
 * - finish time: from the server's `upload received` log line (every byte staged; pino's
 *   timestamp) to the client's receipt of the final response (Date.now(), same clock);
 * - total time: from `upload.start()` (before the POST) to the final response.
 */
import path from 'node:path';
import * as tus from 'tus-js-client';
import { photo } from './payloads.ts';
import { RssSeries } from './footprint.ts';
import { readMemory, resetPeak } from './proc.ts';
import { startTusgate } from './servers.ts';
import { countStatuses, fmt, MB, sleep } from './stats.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';

export interface LoadUpload {
  id: string;
  status: number | null;
  code?: string;
  retryAfter?: string;
  startedAt: number;
  endedAt: number;
  /** Date.now() of the server's `upload received` line, if any. */
  receivedAt?: number;
}

export interface FinishLoadResult {
  uploads: number;
  width: number;
  height: number;
  jpegBytes: number;
  transcodeConcurrency: number;
  queueMax: number;
  statuses: string;
  ok: number;
  busy: number;
  alive: boolean;
  exitNote: string;
  maxWaiting: number;
  readyStates: string;
  polls: number;
  idleRss: number;
  peakRss: number;
  hwmReset: boolean;
  finishMs: { p50: number; p99: number; max: number; n: number };
  totalMs: { p50: number; p99: number; max: number };
  wallSeconds: number;
  sample: string;
}

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function timedUpload(endpoint: string, data: Buffer, filename: string, timeoutMs: number): Promise<LoadUpload & { body: string }> {
  return new Promise((resolve) => {
    const startedAt = Date.now();
    let settled = false;
    const done = (result: Omit<LoadUpload, 'startedAt' | 'endedAt' | 'id'> & { body: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, id: upload.url?.split('/').pop() ?? '', startedAt, endedAt: Date.now() });
    };
    const timer = setTimeout(() => {
      void upload.abort(false);
      done({ status: null, body: '', code: `no final response within ${timeoutMs} ms` });
    }, timeoutMs);
    const upload = new tus.Upload(data, {
      endpoint,
      chunkSize: Number.POSITIVE_INFINITY,
      retryDelays: [],
      metadata: { filename, filetype: 'image/jpeg' },
      onSuccess: ({ lastResponse }) => done({ status: lastResponse.getStatus(), body: lastResponse.getBody() ?? '' }),
      onError: (error) => {
        const response = error instanceof tus.DetailedError ? error.originalResponse : null;
        const body = response?.getBody() ?? '';
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = error.message.split('\n')[0];
        }
        done({ status: response?.getStatus() ?? null, body, code, retryAfter: response?.getHeader('Retry-After') ?? undefined });
      },
    });
    upload.start();
  });
}

export async function finishLoadBench(
  workDir: string,
  options: { uploads?: number; width?: number; height?: number },
  log: (line: string) => void,
): Promise<FinishLoadResult> {
  const { uploads = 50, width = 6000, height = 4000 } = options;
  const jpeg = await photo(7, width, height);
  log(`  payload: ${width}x${height} JPEG (benchmark 4's generator), ${fmt(jpeg.length / 1e6, 2)} MB`);
  const server = await startTusgate(path.join(workDir, 'finish-load'));
  const base = server.endpoint.replace(/\/files\/$/, '');
  let result: FinishLoadResult;
  try {
    await sleep(1500);
    const started = server.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('tusgate listening') && typeof l.config === 'object') as { config?: Record<string, unknown> } | undefined;
    const transcodeConcurrency = Number(started?.config?.TRANSCODE_CONCURRENCY ?? Number.NaN);
    const queueMax = Number(started?.config?.FINISH_QUEUE_MAX ?? Number.NaN);
    const idleRss = readMemory(server.pid).rss;
    const hwmReset = resetPeak(server.pid);
    const series = new RssSeries(server.pid, 50);
    let maxWaiting = 0;
    let polls = 0;
    const ready = new Map<string, number>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        try {
          const [metrics, readyz] = await Promise.all([fetch(`${base}/metrics`).then((r) => r.text()), fetch(`${base}/readyz`)]);
          const waiting = Number(/^tusgate_finish_waiting (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
          if (Number.isFinite(waiting)) maxWaiting = Math.max(maxWaiting, waiting);
          const state = ((await readyz.json().catch(() => ({}))) as { status?: string }).status ?? String(readyz.status);
          ready.set(state, (ready.get(state) ?? 0) + 1);
          polls += 1;
        } catch {
          // the server is busy answering: the next poll
        }
        await sleep(200);
      }
    })();
    const t0 = performance.now();
    const results = await Promise.all(Array.from({ length: uploads }, (_, i) => timedUpload(server.endpoint, jpeg, `photo-${i}.jpg`, 600_000)));
    const wallSeconds = (performance.now() - t0) / 1000;
    polling = false;
    await poller;
    await sleep(500);
    series.stop();
    const { hwm } = readMemory(server.pid);
    const alive = server.logs.length > 0 && (await fetch(`${base}/healthz`).then((r) => r.ok).catch(() => false));
    const received = new Map<string, number>();
    for (const line of server.logs) {
      if (line.msg === 'upload received' && typeof line.uploadId === 'string' && typeof line.time === 'string') received.set(line.uploadId, Date.parse(line.time));
    }
    for (const r of results) r.receivedAt = received.get(r.id);
    const ok = results.filter((r) => r.status === 200);
    const busy = results.filter((r) => r.status === 503 && r.code === 'E_BUSY');
    const finish = ok.flatMap((r) => (r.receivedAt === undefined ? [] : [r.endedAt - r.receivedAt]));
    const total = ok.map((r) => r.endedAt - r.startedAt);
    let sample = 'none';
    const firstOk = ok[0];
    const firstBad = results.find((r) => r.status !== 200);
    if (firstBad) sample = `${firstBad.status ?? 'no response'} ${firstBad.code ?? ''}${firstBad.retryAfter ? ` Retry-After ${firstBad.retryAfter}` : ''}`;
    else if (firstOk) {
      const view = JSON.parse(firstOk.body) as { width: number; height: number; format: string; bytes: number };
      sample = `${view.width}x${view.height} ${view.format}, ${(view.bytes / 1e3).toFixed(0)} kB`;
    }
    result = {
      uploads,
      width,
      height,
      jpegBytes: jpeg.length,
      transcodeConcurrency,
      queueMax,
      statuses: countStatuses(results.map((r) => (r.status === null ? (r.code ?? 'none') : r.code && r.status !== 200 ? `${r.status} ${r.code}` : r.status))),
      ok: ok.length,
      busy: busy.length,
      alive,
      exitNote: alive ? 'alive, /healthz 200' : `not answering (exit ${server.logs.length ? 'unknown' : 'n/a'})`,
      maxWaiting,
      readyStates: [...ready].map(([s, n]) => `${s} x${n}`).join(', '),
      polls,
      idleRss,
      peakRss: Math.max(hwmReset ? hwm : 0, series.maxRss),
      hwmReset,
      finishMs: { p50: percentile(finish, 50), p99: percentile(finish, 99), max: Math.max(...finish), n: finish.length },
      totalMs: { p50: percentile(total, 50), p99: percentile(total, 99), max: Math.max(...total) },
      wallSeconds,
      sample,
    };
  } finally {
    await server.stop();
  }
  log(
    `  ${uploads} uploads in ${fmt(result.wallSeconds, 1)} s: ${result.statuses}; e.g. ${result.sample}; server ${result.exitNote}; max finishes waiting for a slot ${result.maxWaiting} (TRANSCODE_CONCURRENCY=${result.transcodeConcurrency}, FINISH_QUEUE_MAX=${result.queueMax}); /readyz ${result.readyStates}`,
  );
  log(
    `  finish (upload received -> final response) p50 ${fmt(result.finishMs.p50 / 1000, 2)} s, p99 ${fmt(result.finishMs.p99 / 1000, 2)} s, max ${fmt(result.finishMs.max / 1000, 2)} s (n=${result.finishMs.n}); total (start -> final response) p50 ${fmt(result.totalMs.p50 / 1000, 2)} s, p99 ${fmt(result.totalMs.p99 / 1000, 2)} s, max ${fmt(result.totalMs.max / 1000, 2)} s; RSS idle ${fmt(result.idleRss / MB)} MB, peak ${fmt(result.peakRss / MB)} MB`,
  );
  return result;
}

/** All answered: 200, or the documented refusal (503 E_BUSY at creation). */
const allAnswered = (r: FinishLoadResult) => r.ok + r.busy === r.uploads && r.alive;
/** Bounded: no more waiting than FINISH_QUEUE_MAX allows. */
const bounded = (r: FinishLoadResult) => Number.isFinite(r.queueMax) && (r.queueMax === 0 || r.maxWaiting <= r.queueMax);

export function finishLoadLines(r: FinishLoadResult): string[] {
  return [
    `  => ${r.ok}/${r.uploads} ended 200${r.busy ? `, ${r.busy} refused 503 E_BUSY` : ''}, server ${r.alive ? 'alive' : 'DOWN'}: ${verdict(allAnswered(r))} (target: all 200 or 503 E_BUSY, no OOM); queue depth max ${r.maxWaiting} waiting <= FINISH_QUEUE_MAX ${r.queueMax}: ${verdict(bounded(r))}; peak RSS ${fmt(r.peakRss / MB)} MB; finish p50/p99/max ${fmt(r.finishMs.p50 / 1000, 2)} / ${fmt(r.finishMs.p99 / 1000, 2)} / ${fmt(r.finishMs.max / 1000, 2)} s (info)`,
  ];
}

export function finishLoadRows(r: FinishLoadResult): SummaryRow[] {
  const label = `10 finish load, ${r.uploads} x ${fmt((r.width * r.height) / 1e6, 0)} MP at once`;
  return [
    {
      benchmark: label,
      metric: 'final statuses; server alive (no OOM)',
      tusgate: `${r.statuses}; ${r.alive ? 'alive' : 'down'}`,
      baseline: '',
      ratio: '',
      target: 'all 200 (or 503 E_BUSY)',
      result: verdict(allAnswered(r)),
    },
    {
      benchmark: label,
      metric: 'max finishes waiting for a slot (/metrics)',
      tusgate: String(r.maxWaiting),
      baseline: '',
      ratio: '',
      target: `<= FINISH_QUEUE_MAX (${r.queueMax})`,
      result: verdict(bounded(r)),
    },
    {
      benchmark: label,
      metric: 'finish p50 / p99 / max (received -> response); peak RSS',
      tusgate: `${fmt(r.finishMs.p50 / 1000, 1)} / ${fmt(r.finishMs.p99 / 1000, 1)} / ${fmt(r.finishMs.max / 1000, 1)} s; ${fmt(r.peakRss / MB)} MB`,
      baseline: '',
      ratio: '',
      target: 'none (reported)',
      result: 'info',
    },
  ];
}

export function finishLoadSection(r: FinishLoadResult): string {
  return [
    `## 10. Finish load: ${r.uploads} concurrent ${fmt((r.width * r.height) / 1e6, 0)} MP finishes on one tusgate`,
    '',
    [
      `- One fresh tusgate with the defaults: TRANSCODE_CONCURRENCY=${r.transcodeConcurrency} (the CPU count), SHARP_THREADS=1, FINISH_QUEUE_MAX=${r.queueMax}, WebP 2048 q80, file staging (and the benchmarks' LOG_LEVEL=info, no per-account creation limits).`,
      `- ${r.uploads} tus-js-client uploads started at once (POST + one PATCH each, no retries) of one ${r.width}x${r.height} JPEG (benchmark 4's photo generator, ${fmt(r.jpegBytes / 1e6, 2)} MB). Every final PATCH is answered after its finish.`,
      `- What the defaults do: a finish waits for one of the ${r.transcodeConcurrency} transcode slots, holding nothing but its connection (idle timeout off meanwhile). With FINISH_QUEUE_MAX finishes running or waiting, new **POSTs** get 503 E_BUSY with Retry-After (FINISH_RETRY_BASE_MS) and /readyz says busy; an upload whose bytes are in is never refused. ${r.uploads} < ${r.queueMax}, so no refusal is expected here.`,
      `- Queue depth: GET /metrics \`tusgate_finish_waiting\` and GET /readyz every 200 ms (${r.polls} polls). RSS: VmHWM reset before the uploads, VmRSS sampled every 50 ms. Finish time: from the server's \`upload received\` log line (every byte staged) to the client's receipt of the final response; total: from the client's start (before the POST) to the final response.`,
    ].join('\n'),
    '',
    mdTable(
      ['what', 'value'],
      [
        ['final statuses', r.statuses],
        ['an output', r.sample],
        ['server after the run', r.exitNote],
        ['max finishes waiting for a slot', `${r.maxWaiting} (limit FINISH_QUEUE_MAX=${r.queueMax}, running at most ${r.transcodeConcurrency})`],
        ['/readyz answers seen', r.readyStates],
        ['RSS idle before / peak', `${fmt(r.idleRss / MB)} MB / ${fmt(r.peakRss / MB)} MB${r.hwmReset ? '' : ' (VmHWM not reset)'}`],
        ['finish p50 / p99 / max (received -> final response)', `${fmt(r.finishMs.p50 / 1000, 2)} / ${fmt(r.finishMs.p99 / 1000, 2)} / ${fmt(r.finishMs.max / 1000, 2)} s (n=${r.finishMs.n})`],
        ['total p50 / p99 / max (start -> final response)', `${fmt(r.totalMs.p50 / 1000, 2)} / ${fmt(r.totalMs.p99 / 1000, 2)} / ${fmt(r.totalMs.max / 1000, 2)} s`],
        ['wall time, first POST to last response', `${fmt(r.wallSeconds, 2)} s (${fmt(r.uploads / r.wallSeconds, 2)} images/s)`],
      ],
    ),
    '',
    `The finish times spread from about one transcode to the whole queue: with ${r.transcodeConcurrency} slots the last of ${r.uploads} waits for the ${r.uploads - 1} before it, so p99 and max follow the queue's length, not a single image's cost.`,
    '',
  ].join('\n');
}
