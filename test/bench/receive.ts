/**
 * Benchmark 1: receive-path throughput, tusgate vs bare @tus/server + @tus/file-store vs a
 * plain Node http -> fs writer (plain-server.ts, Node's own limit), with the same
 * tus-js-client driver (Buffer source, POST then one PATCH per upload). Every measured run
 * has a freshly started server process of its own, given one warm-up upload (not counted)
 * before its timed upload: a process that sits in a slow mode for its whole life shows as
 * one slow run, and the minimum over the processes is reported beside the median.
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
import { type Chart, chartImage, throughputChart } from './charts.ts';
import { tusUpload, type TusOptions } from './clients.ts';
import { imageBuffer } from './payloads.ts';
import { readIo, readMemory, readStat, stealMs } from './proc.ts';
import { MiB, startBaseline, startPlain, startTusgate, type Target } from './servers.ts';
import { countStatuses, fmt, loadAverages, MB, median, minimum, rotated } from './stats.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';
import { startArgs } from '../support/server.ts';

/** One timed run; `server` names the kind of server (benchmark 1: tusgate / baseline; benchmark 7: none / jwt). */
export interface ReceiveRun<Server extends string = ReceiveServer> {
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
  /** The system (kernel) part of serverCpuStoredMs, ms. */
  serverSysStoredMs: number | null;
  /** CPU time the machine lost to steal (the hypervisor's other guests) from start to the last response, ms (proc.ts stealMs). */
  stealMs: number;
  /** Minor page faults of the server process from start until every byte was stored. */
  serverFaultsStored: number | null;
  /** Benchmark 1 (a fresh process per run): ms from spawn to listening. */
  msStart?: number;
  /** Benchmark 1: the warm-up upload's MB/s to stored and final statuses. */
  warmMbpsStored?: number | null;
  warmStatuses?: string;
  /** Benchmark 1: the process's peak RSS (VmHWM) after its timed run, bytes. */
  serverPeakRss?: number;
}

/** What a case uploads: `uploads` concurrent uploads of `size` bytes each. */
export interface UploadCase {
  name: string;
  label: string;
  uploads: number;
  size: number;
}

export type ReceiveServer = Target['name'] | 'plain';

/** The servers of benchmark 1, in the order of round 1 (later rounds rotate it). */
export const RECEIVE_SERVERS: readonly ReceiveServer[] = ['tusgate', 'baseline', 'plain'];

export const SERVER_LABELS: Readonly<Record<ReceiveServer, string>> = {
  tusgate: 'tusgate',
  baseline: 'bare @tus/server',
  plain: 'plain Node http -> fs',
};

/** The targets: tusgate's median over plain's and over the bare server's, tusgate's minimum over the bare server's median. */
export const RECEIVE_TARGETS = { medianVsPlain: 0.95, medianVsBaseline: 1.0, minVsBaseline: 0.9 } as const;

/** One target line: tusgate's `value` against a baseline's `reference` (target null: reported only). */
export interface ReceiveTarget {
  metric: string;
  value: number;
  against: ReceiveServer;
  reference: number;
  ratio: number;
  target: number | null;
  pass: boolean | undefined;
}

export interface ReceiveCase extends UploadCase {
  runs: ReceiveRun[];
  /** Median and minimum MB/s to every byte stored, per server, over its processes. */
  median: Record<ReceiveServer, number>;
  min: Record<ReceiveServer, number>;
  /** Median MB/s to the last final response (tusgate: with the finish). */
  doneMedian: Record<ReceiveServer, number>;
  targets: ReceiveTarget[];
}

export interface ReceiveResult {
  rounds: number;
  cases: ReceiveCase[];
  tusgateEnv: Record<string, string>;
  /** The warm-up upload each process gets before its timed one, bytes. */
  warmBytes: number;
  node: string;
  /** How long benchmark 1 took, s. */
  seconds: number;
  /** 1 / 5 / 15-minute load averages when it ended. */
  loadAfter: string;
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
  target: Target<string>,
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
  const stealBefore = stealMs();
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
  const steal = stealMs() - stealBefore;
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
    serverSysStoredMs: storedAt === null ? null : statAtStored.sysMs - statBefore.sysMs,
    stealMs: steal,
    serverFaultsStored: storedAt === null ? null : statAtStored.minorFaults - statBefore.minorFaults,
  };
}

/** A run as one progress line: `<case> round <n> <server> stored ... MB/s ...`. */
export function runLine(run: ReceiveRun<string>): string {
  return `  ${run.case} round ${run.round} ${run.server.padEnd(8)} stored ${run.mbpsStored?.toFixed(1) ?? 'n/a'} MB/s (${run.msStored?.toFixed(0) ?? 'n/a'} ms), final response ${run.mbpsDone.toFixed(1)} MB/s (${run.msDone.toFixed(0)} ms) [${run.statuses}] server CPU ${run.serverCpuStoredMs ?? 'n/a'} ms to stored (${run.serverSysStoredMs ?? 'n/a'} of it system, ${run.serverFaultsStored ?? 'n/a'} minor faults), ${run.serverCpuMs.toFixed(0)} ms in all; steal ${fmt(run.stealMs, 0)} ms`;
}

/** The values of `key` over the runs of one server (NaN where a run never reached it). */
export function valuesOf<Server extends string>(runs: ReadonlyArray<ReceiveRun<Server>>, server: Server, key: 'mbpsStored' | 'mbpsDone' | 'serverCpuStoredMs' | 'serverFaultsStored'): number[] {
  return runs.filter((r) => r.server === server).map((r) => r[key] ?? Number.NaN);
}

/**
 * Every run of `cases` as a Markdown table (docs/benchmarks.md, "Raw runs"); the columns of
 * benchmark 1's fresh processes (start-up, warm-up, peak RSS) where the runs have them.
 */
export function rawRunsTable(cases: ReadonlyArray<{ name: string; runs: ReadonlyArray<ReceiveRun<string>> }>): string {
  const fresh = cases.some((c) => c.runs.some((r) => r.msStart !== undefined));
  const mbOf = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : fmt(bytes / MB));
  return mdTable(
    [
      'case',
      'round',
      'server',
      'bytes',
      'ms to stored',
      'MB/s stored',
      'ms to final response',
      'server CPU ms to stored',
      'of it system',
      'server minor faults to stored',
      'server CPU ms in all',
      'server wrote (bytes)',
      'final statuses',
      'machine steal ms',
      ...(fresh ? ['ms to start', 'warm-up MB/s stored', 'server peak RSS MB'] : []),
    ],
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
        r.serverSysStoredMs ?? 'n/a',
        r.serverFaultsStored ?? 'n/a',
        fmt(r.serverCpuMs, 0),
        r.serverWrote,
        r.statuses,
        fmt(r.stealMs, 0),
        ...(fresh ? [fmt(r.msStart, 0), `${fmt(r.warmMbpsStored)}${r.warmStatuses && !/^1x20[04]$/.test(r.warmStatuses) ? ` [${r.warmStatuses}]` : ''}`, mbOf(r.serverPeakRss)] : []),
      ]),
    ),
  );
}

/** tusgate's settings for the receive benchmarks (1 and 7), besides servers.ts's TUSGATE_ENV. */
export const RECEIVE_TUSGATE_ENV: Readonly<Record<string, string>> = { TRANSCODE_CONCURRENCY: '2', SHARP_THREADS: '1' };

/** The warm-up upload each fresh process gets before its timed one (not counted). */
export const RECEIVE_WARM_BYTES = 16 * MiB;

/** The server order of round `round` (1-based): RECEIVE_SERVERS rotated, so that each server takes each place in turn. */
export const roundOrder = (round: number): ReceiveServer[] => rotated(RECEIVE_SERVERS, round);

export async function receiveBench(workDir: string, rounds: number, log: (line: string) => void): Promise<ReceiveResult> {
  const began = performance.now();
  const tusgateEnv = { ...RECEIVE_TUSGATE_ENV };
  const start: Record<ReceiveServer, (dataDir: string) => Promise<Target<ReceiveServer>>> = {
    tusgate: (dataDir) => startTusgate(dataDir, tusgateEnv),
    baseline: (dataDir) => startBaseline(dataDir),
    plain: (dataDir) => startPlain(dataDir),
  };
  const warm = await imageBuffer(RECEIVE_WARM_BYTES);

  /** One measured run on a freshly started process: start, warm-up (not counted), sync, the timed upload(s), stop. */
  const freshRun = async (server: ReceiveServer, payload: Buffer, c: UploadCase, round: number): Promise<ReceiveRun> => {
    const dataDir = path.join(workDir, `receive-${server}`);
    const spawned = performance.now();
    const target = await start[server](dataDir);
    const msStart = performance.now() - spawned;
    try {
      const warmed = await timedRun(target, server, warm, 1, 'warm-up', round);
      execFileSync('sync');
      const run = await timedRun(target, server, payload, c.uploads, c.name, round);
      return { ...run, msStart, warmMbpsStored: warmed.mbpsStored, warmStatuses: warmed.statuses, serverPeakRss: readMemory(target.pid).hwm };
    } finally {
      await target.stop();
      settleDir(dataDir);
    }
  };

  const cases: UploadCase[] = [
    { name: 'single', label: '1 x 256 MiB, one PATCH', uploads: 1, size: 256 * MiB },
    { name: 'concurrent', label: '16 x 16 MiB concurrently', uploads: 16, size: 16 * MiB },
  ];
  const out: ReceiveCase[] = [];
  for (const c of cases) {
    const payload = await imageBuffer(c.size);
    const runs: ReceiveRun[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const server of roundOrder(round)) {
        const run = await freshRun(server, payload, c, round);
        runs.push(run);
        log(`${runLine(run)}; start ${fmt(run.msStart, 0)} ms, warm-up ${fmt(run.warmMbpsStored)} MB/s [${run.warmStatuses}], peak RSS ${fmt((run.serverPeakRss ?? Number.NaN) / MB)} MB`);
      }
    }
    const per = (f: (values: number[]) => number, key: 'mbpsStored' | 'mbpsDone') =>
      Object.fromEntries(RECEIVE_SERVERS.map((server) => [server, f(valuesOf(runs, server, key))])) as Record<ReceiveServer, number>;
    const med = per(median, 'mbpsStored');
    // a run that never had every byte stored counts as 0 here, not as a missing value
    const min = Object.fromEntries(RECEIVE_SERVERS.map((server) => [server, minimum(runs.filter((r) => r.server === server).map((r) => r.mbpsStored ?? 0))])) as Record<ReceiveServer, number>;
    const target = (metric: string, value: number, against: ReceiveServer, limit: number | null): ReceiveTarget => {
      const ratio = value / med[against];
      return { metric, value, against, reference: med[against], ratio, target: limit, pass: limit === null || !Number.isFinite(ratio) ? undefined : ratio >= limit };
    };
    out.push({
      ...c,
      runs,
      median: med,
      min,
      doneMedian: per(median, 'mbpsDone'),
      targets: [
        target('median', med.tusgate, 'plain', RECEIVE_TARGETS.medianVsPlain),
        target('median', med.tusgate, 'baseline', RECEIVE_TARGETS.medianVsBaseline),
        target('minimum', min.tusgate, 'baseline', RECEIVE_TARGETS.minVsBaseline),
        target('minimum', min.tusgate, 'plain', null),
      ],
    });
  }
  return { rounds, cases: out, tusgateEnv, warmBytes: RECEIVE_WARM_BYTES, node: process.version, seconds: (performance.now() - began) / 1000, loadAfter: loadAverages() };
}

/** "1.000x", "n/a" */
const times = (ratio: number, digits = 3) => (Number.isFinite(ratio) ? `${fmt(ratio, digits)}x` : 'n/a');
const targetOf = (t: ReceiveTarget) => (t.target === null ? 'none (reported)' : `>= ${times(t.target, 2)}`);

const targetText = (t: ReceiveTarget) =>
  `tusgate ${t.metric} / ${SERVER_LABELS[t.against]} median ${times(t.ratio)} ${t.target === null ? '(reported)' : `${verdict(t.pass)} (target ${targetOf(t)})`}`;

/** The result lines of one case (run.ts prints them after the runs). */
export function receiveResultLines(c: ReceiveCase): string[] {
  const servers = RECEIVE_SERVERS.map((s) => `${SERVER_LABELS[s]} median ${fmt(c.median[s])} MB/s (min ${fmt(c.min[s])})`).join(', ');
  return [`  => ${c.label}: ${servers}`, ...c.targets.map((t) => `     ${targetText(t)}`)];
}

export function receiveRows(result: ReceiveResult): SummaryRow[] {
  return result.cases.flatMap((c) =>
    c.targets.map((t) => ({
      benchmark: `1 receive ${c.label}`,
      metric: `${t.metric} MB/s stored over ${plural(result.rounds, 'process', 'processes')} vs ${t.against === 'plain' ? 'plain http -> fs' : 'bare @tus/server'} median`,
      tusgate: fmt(t.value),
      baseline: `${fmt(t.reference)} (${t.against === 'plain' ? 'plain' : 'bare'})`,
      ratio: times(t.ratio),
      target: targetOf(t),
      result: t.target === null ? 'info' : verdict(t.pass),
    })),
  );
}

export const RECEIVE_CHART_FILE = 'bench-receive.svg';

export function receiveCharts(result: ReceiveResult): Chart[] {
  const svg = throughputChart(
    'Benchmark 1: receive path, MB/s to all bytes stored',
    result.cases.map((c) => ({
      label: c.label,
      bars: RECEIVE_SERVERS.map((server) => ({ name: SERVER_LABELS[server], values: valuesOf(c.runs, server, 'mbpsStored') })),
      // over tusgate's bar (RECEIVE_SERVERS[0]): what its median and its minimum must reach
      marks: [
        { value: RECEIVE_TARGETS.medianVsPlain * c.median.plain, label: `${RECEIVE_TARGETS.medianVsPlain}x plain` },
        { value: RECEIVE_TARGETS.medianVsBaseline * c.median.baseline, label: `${RECEIVE_TARGETS.medianVsBaseline.toFixed(1)}x bare` },
        { value: RECEIVE_TARGETS.minVsBaseline * c.median.baseline, label: `min: ${RECEIVE_TARGETS.minVsBaseline}x bare` },
      ],
    })),
    'MB/s',
    { subtitle: `Node ${result.node}, ${plural(result.rounds, 'freshly started process', 'freshly started processes')} per server and case, each after one warm-up upload` },
  );
  return [{ file: RECEIVE_CHART_FILE, alt: 'Benchmark 1: median and minimum MB/s per server and case, a dot per process', svg }];
}

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/** What the slow mode of issue 9 was, measured by hand with --trace-gc, --trace-gc-nvp and --cpu-prof (not by this bench). */
const SLOW_MODE = [
  '**The slow mode, and its cause.** Before commit eef6321 a tusgate process could spend 2-3x the CPU per byte for its whole life (e.g. 1.2-1.4 s of server CPU per 256 MiB against 0.4-0.6 s in another process of the same build). GC traces of both kinds of process (`node --trace-gc`, `--trace-gc-nvp`) told them apart: the same number of scavenges and the same bytes promoted, but 35-55 mark-compacts per 256 MiB in the slow ones against under one in the fast ones, back to back (15 ms of mutator and ~30 KB of JavaScript allocated between two of them) and each freeing almost nothing of the JavaScript heap (16.8 -> 16.7 MB). A CPU profile (`--cpu-prof`) put the extra time in the garbage collector (943 ms against 71 ms over four uploads) and in `writeBuffer`, the native side of the file writes (749 against 188 ms).',
  '',
  'What drove those collections is memory outside the JavaScript heap: every 64 KiB body chunk is an ArrayBuffer of its own (Node\'s HTTP parser copies it out of the socket buffer), a tiny object on the heap holding 64 KiB outside it, and @tus/server 2\'s web-stream adapter (`Readable.toWeb` then `Readable.fromWeb`) made one more copy of each (`new Uint8Array(chunk)` in Node 20\'s adapter). Those buffers are garbage once written, but V8 frees their memory only when it collects their small owners, and the collections that freed them were these mark-compacts (in the one traced field by field, 6 of its 9 ms of incremental work were `sweep_array_buffers`). Why one process fell into that state and another did not (both promoted the same bytes) was not established. `--max-semi-space-size=1` made it likelier (two of four processes escaped it in the first traces), and the default young generation did not remove it (Node 24: 30-35 mark-compacts per 768 MiB in every process).',
  '',
  'The fix removes the garbage instead of tuning the collector: bodies reach the store as Node streams (server/node-body.ts: no web-stream round trip, no copy); the file store copies each chunk into one of two reused 256 KiB buffers and writes those (storage/file-write.ts: one disk write per 256 KiB, not per chunk); and each chunk\'s ArrayBuffer is freed the moment it is copied (`ArrayBuffer.prototype.transfer(0)`, storage/free-buffer.ts; Node 20 takes the same builtin from a new context behind V8\'s `--harmony-rab-gsab-transfer`). Measured by hand afterwards, three processes each of Node 20 and Node 24, with and without `--max-semi-space-size=1`: one or two mark-compacts per process for three 256 MiB or three 1 GiB uploads, 270-450 ms of server CPU per 256 MiB in every process. The 1 MiB semi-space is kept: it no longer costs CPU and keeps the RSS lower.',
  '',
  '**A second slow mode, in the kernel: free page reporting.** Two of the eight full runs of two later sessions had every tusgate process of the single 256 MiB case slow: 600-1270 ms of server CPU per 256 MiB in one (system time was not recorded yet), 580-970 ms in the other, where other runs of the same build spent 260-340. The second one tells where: system time 430-780 ms against 150-200, user time 150-190 ms against 130-150, minor faults 170-244 against 200-222, the machine\'s steal 0-100 ms; the other servers\' system time rose in that run too (plain http -> fs 410-710 ms against 310-330; bare @tus/server 400-550 against 330-400). The cause is the machine\'s: this Firecracker guest reports free page frames to the host (virtio-balloon, /sys/module/page_reporting), the host drops their memory, and the first write into such a frame costs a host page fault that the guest counts as system time of the writer. Measured with dd, 256 MiB into the page cache: 0.04-0.07 s of system time into frames the host still backs, 0.5-0.75 s into reported ones. Which a run gets depends on how many backed frames are free at that moment (the allocator apparently hands out the frames it has not reported first), not on how long the run waited: writing 256 MiB files one after another without deleting them, the first three took 0.04-0.05 s each, the fourth 0.18 s, and every one after it 0.67-0.75 s; with the reporting stopped (page_reporting_order 11, above the largest buddy order) and 8 GiB written and deleted once, sixteen such files took 0.04-0.06 s each. That would also explain why an earlier trial (a bench that waited 3 s before every timed upload) did not reproduce it. Benchmark 1 alone, twice, each time right after 8 GiB had been written, synced, deleted and left 10 s to be reported: with the reporting on, tusgate\'s system time per 256 MiB ranged over 110-900 ms in the single case (284-1031 MB/s) and plain\'s over 280-880, and three targets missed; with it stopped and 6 GiB touched once, tusgate spent 150-200 ms in every process (941-1199 MB/s) and every target passed. So the bench now stops the reporting for its run and touches 6 GiB once before the first benchmark (test/bench/page-reporting.ts; the machine table above says what it found and did), and puts the order back at the end; BENCH_PAGE_REPORTING=keep leaves the machine as it is. A server in production on such a guest pays the same cost per fresh frame; stopping the reporting trades it for memory the host can no longer take back.',
].join('\n');

/** Section 1 of docs/benchmarks.md. */
export function receiveSection(result: ReceiveResult): string {
  const env = Object.entries(result.tusgateEnv).map(([k, v]) => `${k}=${v}`).join(', ');
  const [chart] = receiveCharts(result);
  const headers = ['case', ...RECEIVE_SERVERS.flatMap((s) => [`${SERVER_LABELS[s]} median MB/s`, `${SERVER_LABELS[s]} min MB/s`])];
  return [
    '## 1. Receive-path throughput: tusgate vs bare @tus/server vs plain Node http -> fs',
    '',
    [
      '- **plain Node http -> fs**: test/bench/plain-server.ts, `http.createServer`; each PATCH body goes through `stream.pipeline(req, fs.createWriteStream(file, { flags: \'r+\', start: offset }))`, answered 204 with the new Upload-Offset; POST answers 201 with a Location and HEAD the offset, just enough tus for tus-js-client. No validation, locks or metadata file: Node\'s own limit for these bytes on this machine.',
      '- **bare @tus/server**: test/bench/baseline-server.ts, `new Server({ path: \'/files\', datastore: new FileStore({ directory }) })` behind `http.createServer(server.handle.bind(server))`, no hooks (requestTimeout 0, as tusgate). It and the plain server run as `node --import tsx test/bench/<file>.ts` (the loader only compiles the module at load time).',
      `- **tusgate**: the real server as a child process, started as \`npm start\` starts it (\`node ${startArgs().join(' ')}\`), file staging, LOG_LEVEL=info, MAX_UPLOAD_BYTES=2 GiB, ${env}.`,
      '- **Driver**, the same for all three: tus-js-client 4 in Node, Buffer source, `chunkSize: Infinity` (POST, then the whole upload in one PATCH), no retries. The payload is a complete 640x480 JPEG followed by filler (1 MiB of random bytes repeated): the gate allows it on its header.',
      '- **Measured**: from `upload.start()` until the server process has written every byte of the upload(s), read from `/proc/<server pid>/io` (`wchar`, polled every 1 ms); with it the server\'s CPU (`/proc/<pid>/stat`, user and system) and the machine\'s steal time (`/proc/stat`: CPU the hypervisor gave to other guests while this one wanted it), so that a run slowed by the host tells itself apart from a slow server. That is the receive path, socket to staged file. A tusgate upload\'s finish starts after its last byte is stored: for the single upload none of it is timed; with 16 concurrent uploads the finishes of the first ones may overlap the last bytes of the others, and that overlap is counted. `final response` is the time to the last response: for the other two it is the same moment; for tusgate it adds the finish (sha256 of the staged file, transcode of the JPEG, which succeeds since decoders stop at its end marker, publish).',
      `- **Processes**: every measured run has a freshly started server process of its own: start, one warm-up upload of ${fmt(result.warmBytes / MiB, 0)} MiB (one PATCH, not counted), \`sync\`, the timed upload(s), stop; then its data dir is emptied and \`sync\` run. A process that stays in a slow mode for its whole life shows as one slow run instead of hiding in (or dominating) a long-lived server's rounds.`,
      `- **Order**: ${plural(result.rounds, 'round')} per case (\`BENCH_ROUNDS\`); a round runs the three servers one after another, in an order rotated each round (${roundOrder(1).join(', ')}; then ${roundOrder(2).join(', ')}; ...), so that each takes each place in turn. ${plural(result.rounds, 'process', 'processes')} per server and case, ${result.rounds * RECEIVE_SERVERS.length * result.cases.length} in all; benchmark 1 took ${fmt(result.seconds, 0)} s.`,
      `- **Targets**: tusgate's median >= ${times(RECEIVE_TARGETS.medianVsPlain, 2)} the plain server's median and >= ${times(RECEIVE_TARGETS.medianVsBaseline, 2)} the bare @tus/server's median; tusgate's minimum (its slowest process) >= ${times(RECEIVE_TARGETS.minVsBaseline, 2)} the bare @tus/server's median. The minimum against the plain median is reported.`,
    ].join('\n'),
    '',
    SLOW_MODE,
    '',
    chart ? chartImage(chart) : '',
    '',
    mdTable(
      headers,
      result.cases.map((c) => [c.label, ...RECEIVE_SERVERS.flatMap((s) => [fmt(c.median[s]), fmt(c.min[s])])]),
    ),
    '',
    mdTable(
      ['case', 'tusgate vs', 'ratio', 'target', 'result'],
      result.cases.flatMap((c) =>
        c.targets.map((t) => [c.label, `${t.metric} / ${SERVER_LABELS[t.against]} median`, times(t.ratio), targetOf(t), t.target === null ? 'info' : verdict(t.pass)]),
      ),
    ),
    '',
    mdTable(
      ['case', ...RECEIVE_SERVERS.map((s) => `${SERVER_LABELS[s]} MB/s to final response`)],
      result.cases.map((c) => [c.label, ...RECEIVE_SERVERS.map((s) => fmt(c.doneMedian[s]))]),
    ),
    '',
    'Raw runs (one fresh process each; server `baseline` is the bare @tus/server, `plain` the plain Node http -> fs writer):',
    '',
    rawRunsTable(result.cases),
    '',
    receiveReading(result),
    '',
  ].join('\n');
}

/** What the raw rows say about CPU, faults and slow processes, following the numbers. */
function receiveReading(result: ReceiveResult): string {
  const parts = [
    `Server CPU time and minor page faults are from /proc/<pid>/stat (CPU in 10 ms ticks), from the timed upload's start to the moment every byte was stored; peak RSS is the process's VmHWM after its timed run (warm-up included). Load average when benchmark 1 ended (1 / 5 / 15 min): ${result.loadAfter}.`,
  ];
  for (const c of result.cases) {
    const of = (server: ReceiveServer, key: 'serverCpuStoredMs' | 'serverFaultsStored') => median(valuesOf(c.runs, server, key));
    parts.push(
      `${c.label}, medians of CPU ms and minor faults: ${RECEIVE_SERVERS.map((s) => `${SERVER_LABELS[s]} ${fmt(of(s, 'serverCpuStoredMs'), 0)} ms and ${fmt(of(s, 'serverFaultsStored'), 0)}`).join('; ')}.`,
    );
    // a slow process: under RECEIVE_TARGETS.minVsBaseline of the bare server's median; show its CPU against its server's median
    const slow = c.runs.filter((r) => (r.mbpsStored ?? 0) < RECEIVE_TARGETS.minVsBaseline * c.median.baseline);
    for (const r of slow) {
      parts.push(
        `Slow process: ${c.name} round ${r.round} ${r.server} stored at ${fmt(r.mbpsStored)} MB/s with ${r.serverCpuStoredMs ?? 'n/a'} ms CPU and ${r.serverFaultsStored ?? 'n/a'} minor faults (its server's medians: ${fmt(c.median[r.server])} MB/s, ${fmt(of(r.server, 'serverCpuStoredMs'), 0)} ms CPU); its warm-up ran at ${fmt(r.warmMbpsStored)} MB/s.`,
      );
    }
  }
  return parts.join(' ');
}
