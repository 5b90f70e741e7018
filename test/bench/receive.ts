/**
 * Benchmark 1: receive-path throughput, tusgate vs bare @tus/server + @tus/file-store,
 * with the same tus-js-client driver (Buffer source, POST then one PATCH per upload).
 *
 * What is timed: from upload.start() until the server process has written every byte of
 * the upload(s), read from /proc/<server pid>/io (wchar: bytes written by the process to
 * files and sockets, polled every 1 ms from the client). This is the receive path - socket
 * to staged file. An upload's finish in tusgate (sha256 of the staged file, transcode,
 * publish) starts after its last byte is stored, so for one upload none of it is timed; with
 * 16 concurrent uploads, finishes of the first ones may overlap the last bytes of the
 * others, and that overlap is counted. The time to the final response (for tusgate: with
 * the finish) is recorded beside it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tusUpload, type TusOptions } from './clients.ts';
import { imageBuffer } from './payloads.ts';
import { readIo, readStat } from './proc.ts';
import { MiB, startBaseline, startTusgate, type Target } from './servers.ts';
import { countStatuses, fmt, MB, median } from './stats.ts';
import { mdTable } from './table.ts';

/** One timed run; `server` names the kind of server (benchmark 1: tusgate / baseline; benchmark 7: none / jwt). */
export interface ReceiveRun<Server extends string = Target['name']> {
  case: string;
  server: Server;
  round: number;
  uploads: number;
  bytes: number;
  /** ms from start to every byte written by the server (null: never reached). */
  msStored: number | null;
  /** ms from start to the last final response. */
  msDone: number;
  mbpsStored: number | null;
  mbpsDone: number;
  /** Final statuses seen by the client (204 = bare tus, 200 = tusgate finished, 4xx = finish refused). */
  statuses: string;
  /** Everything the server process wrote during the run (files + sockets), bytes. */
  serverWrote: number;
  /** CPU time the server process used from start to the last response, ms. */
  serverCpuMs: number;
  /** CPU time the server process used from start until every byte was stored, ms. */
  serverCpuStoredMs: number | null;
  /** Minor page faults of the server process from start until every byte was stored. */
  serverFaultsStored: number | null;
}

/** What a case uploads: `uploads` concurrent uploads of `size` bytes each. */
export interface UploadCase {
  name: string;
  label: string;
  uploads: number;
  size: number;
}

export interface ReceiveCase extends UploadCase {
  runs: ReceiveRun[];
  baselineMedian: number;
  tusgateMedian: number;
  ratio: number;
  baselineDoneMedian: number;
  tusgateDoneMedian: number;
}

export interface ReceiveResult {
  rounds: number;
  cases: ReceiveCase[];
  tusgateEnv: Record<string, string>;
}

/** Empties `dir` (kept) and flushes dirty pages, so that a run does not pay for the last one's writeback. */
export function settleDir(dir: string): void {
  for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  execFileSync('sync');
}

/**
 * `uploads` concurrent tus-js-client uploads of `payload` to `target`, timed to every byte
 * written by the server process (wchar) and to the last final response.
 */
export async function timedRun<Server extends string>(
  target: Target,
  server: Server,
  payload: Buffer,
  uploads: number,
  caseName: string,
  round: number,
  client: TusOptions = {},
): Promise<ReceiveRun<Server>> {
  const total = payload.length * uploads;
  const before = readIo(target.pid).wchar;
  const statBefore = readStat(target.pid);
  let storedAt: number | null = null;
  let statAtStored = statBefore;
  const check = () => {
    if (storedAt === null && readIo(target.pid).wchar - before >= total) {
      storedAt = performance.now();
      statAtStored = readStat(target.pid);
    }
  };
  const poll = setInterval(check, 1);
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: uploads }, () => tusUpload(target.endpoint, payload, client)));
  const doneAt = Math.max(...results.map((r) => r.endedAt));
  check();
  clearInterval(poll);
  const serverWrote = readIo(target.pid).wchar - before;
  const serverCpuMs = readStat(target.pid).cpuMs - statBefore.cpuMs;
  const msStored = storedAt === null ? null : (storedAt as number) - started;
  const msDone = doneAt - started;
  return {
    case: caseName,
    server,
    round,
    uploads,
    bytes: total,
    msStored,
    msDone,
    mbpsStored: msStored === null ? null : total / MB / (msStored / 1000),
    mbpsDone: total / MB / (msDone / 1000),
    statuses: countStatuses(results.map((r) => r.status ?? r.error ?? 'error')),
    serverWrote,
    serverCpuMs,
    serverCpuStoredMs: storedAt === null ? null : statAtStored.cpuMs - statBefore.cpuMs,
    serverFaultsStored: storedAt === null ? null : statAtStored.minorFaults - statBefore.minorFaults,
  };
}

/** A run as one progress line: `<case> round <n> <server> stored ... MB/s ...`. */
export function runLine(run: ReceiveRun<string>): string {
  return `  ${run.case} round ${run.round} ${run.server.padEnd(8)} stored ${run.mbpsStored?.toFixed(1) ?? 'n/a'} MB/s (${run.msStored?.toFixed(0) ?? 'n/a'} ms), final response ${run.mbpsDone.toFixed(1)} MB/s (${run.msDone.toFixed(0)} ms) [${run.statuses}] server CPU ${run.serverCpuStoredMs ?? 'n/a'} ms to stored (${run.serverFaultsStored ?? 'n/a'} minor faults), ${run.serverCpuMs.toFixed(0)} ms in all`;
}

/** The values of `key` over the runs of one server (NaN where a run never reached it). */
export function valuesOf<Server extends string>(runs: ReadonlyArray<ReceiveRun<Server>>, server: Server, key: 'mbpsStored' | 'mbpsDone' | 'serverCpuStoredMs' | 'serverFaultsStored'): number[] {
  return runs.filter((r) => r.server === server).map((r) => r[key] ?? Number.NaN);
}

/** Every run of `cases` as a Markdown table (docs/benchmarks.md, "Raw runs"). */
export function rawRunsTable(cases: ReadonlyArray<{ name: string; runs: ReadonlyArray<ReceiveRun<string>> }>): string {
  return mdTable(
    ['case', 'round', 'server', 'bytes', 'ms to stored', 'MB/s stored', 'ms to final response', 'server CPU ms to stored', 'server minor faults to stored', 'server CPU ms in all', 'server wrote (bytes)', 'final statuses'],
    cases.flatMap((c) =>
      c.runs.map((r) => [
        c.name,
        r.round,
        r.server,
        r.bytes,
        fmt(r.msStored, 0),
        fmt(r.mbpsStored),
        fmt(r.msDone, 0),
        r.serverCpuStoredMs ?? 'n/a',
        r.serverFaultsStored ?? 'n/a',
        fmt(r.serverCpuMs, 0),
        r.serverWrote,
        r.statuses,
      ]),
    ),
  );
}

/** tusgate's settings for the receive benchmarks (1 and 7), besides servers.ts's TUSGATE_ENV. */
export const RECEIVE_TUSGATE_ENV: Readonly<Record<string, string>> = { TRANSCODE_CONCURRENCY: '2', SHARP_THREADS: '1' };

export async function receiveBench(workDir: string, rounds: number, log: (line: string) => void): Promise<ReceiveResult> {
  const tusgateEnv = { ...RECEIVE_TUSGATE_ENV };
  const baseline = await startBaseline(path.join(workDir, 'baseline'));
  const tusgate = await startTusgate(path.join(workDir, 'tusgate'), tusgateEnv);
  const settle = () => settleDir(baseline.dataDir);
  try {
    const cases = [
      { name: 'single', label: '1 x 256 MiB, one PATCH', uploads: 1, size: 256 * MiB },
      { name: 'concurrent', label: '16 x 16 MiB concurrently', uploads: 16, size: 16 * MiB },
    ];
    // warm-up (not counted): JIT, sharp, file system
    const warm = await imageBuffer(16 * MiB);
    for (const target of [baseline, tusgate]) {
      await timedRun(target, target.name, warm, 2, 'warm-up', 0);
      settle();
    }
    const out: ReceiveCase[] = [];
    for (const c of cases) {
      const payload = await imageBuffer(c.size);
      const runs: ReceiveRun[] = [];
      for (let round = 1; round <= rounds; round++) {
        for (const target of [baseline, tusgate]) {
          const run = await timedRun(target, target.name, payload, c.uploads, c.name, round);
          runs.push(run);
          log(runLine(run));
          settle();
        }
      }
      const of = (name: Target['name'], key: 'mbpsStored' | 'mbpsDone') => median(valuesOf(runs, name, key));
      const baselineMedian = of('baseline', 'mbpsStored');
      const tusgateMedian = of('tusgate', 'mbpsStored');
      out.push({
        ...c,
        runs,
        baselineMedian,
        tusgateMedian,
        ratio: tusgateMedian / baselineMedian,
        baselineDoneMedian: of('baseline', 'mbpsDone'),
        tusgateDoneMedian: of('tusgate', 'mbpsDone'),
      });
    }
    return { rounds, cases: out, tusgateEnv };
  } finally {
    await baseline.stop();
    await tusgate.stop();
  }
}
