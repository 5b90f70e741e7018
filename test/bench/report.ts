/** The machine, the summary table (stdout) and docs/benchmarks.md. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { authRows, authSection, type AuthResult } from './auth.ts';
import type { FinishResult } from './finish.ts';
import { instancesRows, instancesSection, type InstancesResult } from './instances.ts';
import type { MemoryResult } from './memory.ts';
import { rawRunsTable, valuesOf, type ReceiveResult } from './receive.ts';
import type { RefusalResult } from './refusal.ts';
import { s3Rows, s3Section, type S3Result } from './s3.ts';
import { fmt, loadAverages, MB, median } from './stats.ts';
import { mdTable, textTable, verdict, type SummaryRow } from './table.ts';
import { ROOT, startArgs } from '../support/server.ts';

export interface Machine {
  date: string;
  cores: number;
  cpu: string;
  memory: string;
  os: string;
  kernel: string;
  node: string;
  packages: Record<string, string>;
  commit: string;
  /** 1-minute load average when the run started (other work on the machine adds noise). */
  loadAverage: string;
}

function version(name: string): string {
  try {
    const require = createRequire(path.join(ROOT, 'package.json'));
    const file = require.resolve(`${name}/package.json`);
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    // packages whose exports hide package.json
    const file = path.join(ROOT, 'node_modules', name, 'package.json');
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version : 'n/a';
  }
}

export function describeMachine(libvips: string): Machine {
  let osName = os.type();
  try {
    osName = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? osName;
  } catch {
    // not Linux-like
  }
  let commit = 'n/a';
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'server', 'hooks', 'storage'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean).length;
    commit = dirty > 0 ? `${head} + ${dirty} uncommitted change(s) in server/, hooks/, storage/` : head;
  } catch {
    // not a git checkout
  }
  return {
    date: new Date().toISOString(),
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: osName,
    kernel: os.release(),
    node: process.version,
    packages: {
      '@tus/server': version('@tus/server'),
      '@tus/file-store': version('@tus/file-store'),
      '@tus/s3-store': version('@tus/s3-store'),
      'tus-js-client': version('tus-js-client'),
      sharp: `${version('sharp')} (libvips ${libvips})`,
    },
    commit,
    loadAverage: loadAverages(),
  };
}

export interface Results {
  machine: Machine;
  receive?: ReceiveResult;
  refusal?: RefusalResult;
  memory?: MemoryResult;
  finish?: FinishResult;
  s3?: S3Result;
  instances?: InstancesResult;
  auth?: AuthResult;
  seconds: number;
}

const mb = (bytes: number) => `${fmt(bytes / MB, 1)} MB`;
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 2)} MiB`;

export function summaryRows(results: Results): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const { receive, refusal, memory, finish } = results;
  for (const c of receive?.cases ?? []) {
    rows.push({
      benchmark: `1 receive ${c.label}`,
      metric: 'median MB/s to all bytes stored',
      tusgate: fmt(c.tusgateMedian),
      baseline: fmt(c.baselineMedian),
      ratio: `${fmt(c.ratio, 3)}x`,
      target: '>= 0.95x',
      result: verdict(Number.isFinite(c.ratio) ? c.ratio >= 0.95 : undefined),
    });
  }
  if (refusal) {
    const read = refusal.serverSocketBytesRead;
    rows.push({
      benchmark: '2 refusal, 1 GiB random, one PATCH',
      metric: 'bytes the server read (socketBytesRead)',
      tusgate: read === null ? 'no log line' : mib(read),
      baseline: '',
      ratio: '',
      target: '<= 1 MiB',
      result: verdict(read === null ? undefined : read <= 2 ** 20),
    });
    rows.push({
      benchmark: '2 refusal',
      metric: 'upload bytes persisted',
      tusgate: String(refusal.persistedUploadBytes),
      baseline: '',
      ratio: '',
      target: '0',
      result: verdict(refusal.persistedUploadBytes === 0),
    });
    rows.push({
      benchmark: '2 refusal',
      metric: `ms to the ${refusal.patch.status ?? 'no'} response / client bytes sent`,
      tusgate: `${fmt(refusal.patch.msToResponse, 0)} ms / ${mib(refusal.patch.clientBytes)}`,
      baseline: '',
      ratio: '',
      target: '',
      result: 'info',
    });
  }
  if (memory) {
    const delta = (server: string, bytes: number) => memory.runs.find((r) => r.server === server && r.bytes === bytes)?.peakDelta ?? Number.NaN;
    rows.push({
      benchmark: '3 server RSS, 1 MiB vs 1 GiB',
      metric: 'peak RSS delta 1 MiB -> 1 GiB',
      tusgate: `${mb(delta('tusgate', 2 ** 20))} -> ${mb(delta('tusgate', 2 ** 30))}`,
      baseline: `${mb(delta('baseline', 2 ** 20))} -> ${mb(delta('baseline', 2 ** 30))}`,
      ratio: '',
      target: 'differ by <= 20 MB',
      result: verdict(Number.isFinite(memory.difference) ? memory.difference <= 20 * MB : undefined),
    });
  }
  if (finish) {
    rows.push({
      benchmark: '4 finish, 12 MP JPEG -> WebP 2048',
      metric: `median images/s, concurrency ${finish.concurrency}`,
      tusgate: fmt(finish.tusgateMedian, 2),
      baseline: finish.available ? `${fmt(finish.vipsMedian, 2)} (vipsthumbnail)` : 'vipsthumbnail n/a',
      ratio: finish.available ? `${fmt(finish.ratio, 3)}x` : '',
      target: 'none (reported)',
      result: 'info',
    });
  }
  if (results.s3) rows.push(...s3Rows(results.s3));
  if (results.instances) rows.push(...instancesRows(results.instances));
  if (results.auth) rows.push(...authRows(results.auth));
  return rows;
}

const SUMMARY_HEADERS = ['benchmark', 'metric', 'tusgate', 'baseline', 'ratio', 'target', 'result'];
const rowCells = (r: SummaryRow) => [r.benchmark, r.metric, r.tusgate, r.baseline, r.ratio, r.target, r.result];

export function summaryText(results: Results): string {
  return textTable(SUMMARY_HEADERS, summaryRows(results).map(rowCells));
}

export function markdown(results: Results): string {
  const { machine, receive, refusal, memory, finish } = results;
  const out: string[] = [];
  out.push('# Benchmarks');
  out.push('');
  out.push(
    `Written by \`npm run bench\` (test/bench/run.ts) on ${machine.date}; the whole run took ${fmt(results.seconds, 0)} s. ` +
      'Rerun it rather than editing this file. Timings are not tests: the targets are printed as PASS/MISS and nothing fails on them.',
  );
  out.push('');
  out.push('Units: MB = 10^6 bytes, MiB = 2^20 bytes; MB/s are 10^6 bytes per second.');
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push(
    mdTable(
      ['what', 'value'],
      [
        ['date', machine.date],
        ['cores (available parallelism)', machine.cores],
        ['CPU', machine.cpu],
        ['memory', machine.memory],
        ['OS / kernel', `${machine.os} / ${machine.kernel}`],
        ['Node', machine.node],
        ...Object.entries(machine.packages).map(([name, v]) => [name, v]),
        ['vipsthumbnail', finish?.available ? `${finish.vipsVersion} (Debian libvips-tools)` : 'not available'],
        ['tusgate commit', machine.commit],
        ['load average at start (1 / 5 / 15 min)', machine.loadAverage],
      ],
    ),
  );
  out.push('');
  out.push('Client and servers share the same cores: every number includes that contention, equally for both sides.');
  out.push('');
  out.push('## Summary');
  out.push('');
  out.push(mdTable(SUMMARY_HEADERS, summaryRows(results).map(rowCells)));
  out.push('');

  if (receive) {
    out.push('## 1. Receive-path throughput: tusgate vs bare @tus/server');
    out.push('');
    out.push(
      [
        '- **Baseline**: test/bench/baseline-server.ts, `new Server({ path: \'/files\', datastore: new FileStore({ directory }) })` behind `http.createServer(server.handle.bind(server))`, no hooks (requestTimeout 0, as tusgate).',
        `- **tusgate**: the real server as a child process, started as \`npm start\` starts it (\`node ${startArgs().join(' ')}\`), file staging, LOG_LEVEL=info, MAX_UPLOAD_BYTES=2 GiB, ${Object.entries(receive.tusgateEnv).map(([k, v]) => `${k}=${v}`).join(', ')}.`,
        '- **Driver**, the same for both: tus-js-client 4 in Node, Buffer source, `chunkSize: Infinity` (POST, then the whole upload in one PATCH), no retries. The payload is a complete 640x480 JPEG followed by filler (1 MiB of random bytes repeated): the gate allows it on its header.',
        '- **Measured**: from `upload.start()` until the server process has written every byte of the upload(s), read from `/proc/<server pid>/io` (`wchar`, polled every 1 ms). That is the receive path, socket to staged file. A tusgate upload\'s finish starts after its last byte is stored: for the single upload none of it is timed; with 16 concurrent uploads the finishes of the first ones may overlap the last bytes of the others, and that overlap is counted. During development this was cross-checked against the staged files\' sizes (polled with stat every 1 ms): both agreed within 1 ms for both servers. `final response` is the time to the last response: for the baseline it is the same moment; for tusgate it adds the finish (sha256 of the staged file, transcode of the JPEG, which succeeds since decoders stop at its end marker, publish).',
        `- **Order**: one warm-up pair (2 x 16 MiB each, not counted), then baseline, tusgate, baseline, tusgate ... ${receive.rounds} runs each per case. Between runs the baseline's files are deleted and \`sync\` is run. Medians.`,
      ].join('\n'),
    );
    out.push('');
    out.push(
      mdTable(
        ['case', 'baseline MB/s', 'tusgate MB/s', 'ratio', 'baseline MB/s to final response', 'tusgate MB/s to final response (incl. finish)'],
        receive.cases.map((c) => [c.label, fmt(c.baselineMedian), fmt(c.tusgateMedian), `${fmt(c.ratio, 3)}x`, fmt(c.baselineDoneMedian), fmt(c.tusgateDoneMedian)]),
      ),
    );
    out.push('');
    out.push('Raw runs:');
    out.push('');
    out.push(rawRunsTable(receive.cases));
    out.push('');
    out.push(receiveReading(receive));
    out.push('');
  }

  if (refusal) {
    const p = refusal.patch;
    out.push('## 2. Refusal cost: 1 GiB of random bytes in one PATCH');
    out.push('');
    out.push(
      [
        '- tusgate, fresh data dir, defaults but MAX_UPLOAD_BYTES=2 GiB (REFUSAL_LINGER_MS=1000, the default).',
        '- A raw POST creates the upload (Upload-Length 1 GiB, metadata filename photo.jpg, filetype image/jpeg: a disguise). Then one PATCH with Content-Length 1 GiB whose body is streamed from a generator (64 KiB chunks of random bytes; the first 64 KiB checked to match no file type). Like a naive client, it keeps sending after the response until the server closes the connection.',
        '- **Server bytes read**: `socketBytesRead` of the PATCH\'s request log line (socket.bytesRead when the response was sent). Cross-check: the server process\'s `rchar` (every byte it read from sockets, files and pipes) from the PATCH\'s start to the connection\'s close.',
        '- **Client bytes written**: the client socket\'s `bytesWritten` minus the request head, i.e. handed to the kernel (plus at most one queued 64 KiB write): loopback socket buffers hold a few MiB.',
        '- **Persisted**: every file under the data dir afterwards; upload bytes = all files except state/ (the upload record) and tus `.json` metadata.',
      ].join('\n'),
    );
    out.push('');
    out.push(
      mdTable(
        ['what', 'value'],
        [
          ['response', `${p.status ?? 'none'} ${refusal.responseCode ?? ''}`.trim()],
          ['ms from the PATCH\'s start to the response', fmt(p.msToResponse, 1)],
          ['ms from the PATCH\'s start to the connection\'s close', `${fmt(p.msToClose, 0)} (${p.end})`],
          ['server socketBytesRead (log line)', refusal.serverSocketBytesRead === null ? 'no log line' : `${refusal.serverSocketBytesRead} (${mib(refusal.serverSocketBytesRead)})`],
          ['server rchar until close', `${refusal.serverRcharDelta} (${mib(refusal.serverRcharDelta)})`],
          ['client body bytes written by the response', p.clientBytesAtResponse === null ? 'n/a' : `${p.clientBytesAtResponse} (${mib(p.clientBytesAtResponse)})`],
          ['client body bytes written by the close', `${p.clientBytes} (${mib(p.clientBytes)})`],
          ['upload bytes persisted', refusal.persistedUploadBytes],
          ['files left in the data dir', refusal.files.length === 0 ? 'none' : refusal.files.map((f) => `${f.path} (${f.bytes} B)`).join(', ')],
          ['a later HEAD answered', refusal.headStatus ?? 'n/a'],
        ],
      ),
    );
    out.push('');
  }

  if (memory) {
    out.push('## 3. Server RSS: 1 MiB vs 1 GiB upload');
    out.push('');
    out.push(
      [
        `- Each upload on a fresh server (tusgate with MAX_UPLOAD_BYTES=2 GiB and npm start's node flags, \`${startArgs().filter((a) => a.startsWith('--max')).join(' ') || 'none'}\`; then the bare @tus/server baseline, plain \`node\`, as a control). Payload: the JPEG, then filler; a raw POST and one PATCH streamed from a generator in 1 MiB chunks. tusgate answers the PATCH after its finish, so the samples cover the finish too.`,
        '- From /proc/<pid>/status: RSS before (1.5 s after start-up), VmRSS sampled every 10 ms during the upload and for 1 s after its response, VmHWM reset just before the upload (`echo 5 > /proc/<pid>/clear_refs`). Peak delta = max(VmHWM, sampled max) - RSS before. "receive" = samples until every byte was stored (wchar), "after" = the rest (finish, response, 1 s idle).',
        '- A 256 MiB upload on tusgate shows whether the growth follows the upload\'s size or levels off.',
      ].join('\n'),
    );
    out.push('');
    out.push(
      mdTable(
        ['server', 'upload', 'RSS before', 'peak, receive', 'peak, after', 'VmHWM', 'RSS 1 s after', 'peak delta', 'response', 'ms to response'],
        memory.runs.map((r) => [
          r.server,
          r.label,
          mb(r.rssBefore),
          mb(r.receivePeak),
          mb(r.afterStoredPeak),
          r.hwmReset ? mb(r.hwm) : `${mb(r.hwm)} (not reset)`,
          mb(r.rssAfter),
          mb(r.peakDelta),
          r.outcome,
          fmt(r.patch.msToResponse, 0),
        ]),
      ),
    );
    out.push('');
    out.push(memoryReading(memory));
    out.push('');
  }

  if (finish) {
    out.push('## 4. Finish: 12 MP JPEG to WebP 2048, tusgate end to end vs vipsthumbnail');
    out.push('');
    out.push(
      [
        `- Photos: 4 distinct 4000x3000 JPEGs (quality 90; colour gradient, upscaled-noise texture and grain), ${finish.photoBytes.map((b) => mb(b)).join(', ')}; used in turn, ${finish.images} per round.`,
        `- **tusgate**: tus-js-client uploads (POST + one PATCH); the final response comes after the finish (sha256, decode, auto-orient, resize to fit 2048x2048, sRGB, WebP quality 80 effort 4, publish to disk). ${finish.concurrency} uploads in flight; TRANSCODE_CONCURRENCY=${finish.concurrency}, SHARP_THREADS=1.`,
        `- **vipsthumbnail** (${finish.vipsVersion}, Debian libvips-tools): \`vipsthumbnail in.jpg -s 2048x2048 -o out.webp[Q=80,strip]\`, ${finish.concurrency} processes at a time, VIPS_CONCURRENCY=1 (one thread per image, as SHARP_THREADS=1), VIPSHOME removed from its environment (importing sharp sets it and it breaks the Debian CLI). Includes each process's start-up.`,
        '- images/s = images / wall time of the round. One warm-up round of 2 images each (not counted), then vipsthumbnail, tusgate, ... interleaved. Medians.',
        `- ${finish.note}.`,
      ].join('\n'),
    );
    out.push('');
    out.push(
      mdTable(
        ['tool', 'median images/s', 'ratio tusgate / vipsthumbnail'],
        [
          ['tusgate (upload + finish)', fmt(finish.tusgateMedian, 2), finish.available ? `${fmt(finish.ratio, 3)}x` : 'n/a'],
          ['vipsthumbnail (transcode only)', finish.available ? fmt(finish.vipsMedian, 2) : 'n/a', ''],
        ],
      ),
    );
    out.push('');
    out.push('Raw rounds:');
    out.push('');
    out.push(
      mdTable(
        ['round', 'tool', 'images', 'seconds', 'images/s', 'failed', 'an output'],
        finish.rounds.map((r) => [r.round, r.tool, r.images, fmt(r.seconds, 2), fmt(r.imagesPerSecond, 2), r.failures, r.sample]),
      ),
    );
    out.push('');
  }

  if (results.s3) out.push(s3Section(results.s3));
  if (results.instances) out.push(instancesSection(results.instances));
  if (results.auth) out.push(authSection(results.auth));

  out.push('## How to reproduce');
  out.push('');
  out.push(
    [
      '```sh',
      'npm ci',
      'npm run bench            # all seven, then rewrites docs/benchmarks.md',
      '```',
      '',
      '- Linux only (it reads /proc). Run as root, or install `libvips-tools` beforehand: when `vipsthumbnail` is missing the bench runs `apt-get update && apt-get install -y --no-install-recommends libvips-tools` itself (the only traffic off 127.0.0.1), and benchmark 4 reports tusgate alone if that fails.',
      '- Resetting VmHWM writes to /proc/<server pid>/clear_refs (the server is our own child); without that right the sampled peak is used.',
      '- It needs about 2 GiB free under the temp dir and takes a few minutes on 2 cores; every temp dir it makes (`$TMPDIR/tusgate-bench-*`) is removed at the end, also on Ctrl-C.',
      '- Benchmarks 5 and 6 start a throw-away Ceph RGW (4 GiB memstore), redis-server and nginx on loopback with deploy/services/*.sh, installing Debian\'s packages when they are missing (root), and stop them before benchmark 7.',
      '- Knobs: `BENCH_ROUNDS` (runs per server per case in benchmarks 1 and 5, default 5), `BENCH_FINISH_IMAGES` (default 16), `BENCH_FINISH_ROUNDS` (default 3), `BENCH_INSTANCE_ROUNDS` (benchmark 6, default 3), `BENCH_AUTH_ROUNDS` (benchmark 7, rounds per case, default 5). `npm run bench -- --only 5,6` runs some benchmarks and prints them without writing this file.',
    ].join('\n'),
  );
  out.push('');
  return out.join('\n');
}

/** What the receive numbers say about CPU, following the numbers. */
function receiveReading(receive: ReceiveResult): string {
  const parts = ['Server CPU time and minor page faults are from /proc/<pid>/stat (CPU in 10 ms ticks), from the start to the moment every byte was stored.'];
  let costlier = false;
  const faultier: string[] = [];
  for (const c of receive.cases) {
    const of = (server: 'baseline' | 'tusgate', key: 'serverCpuStoredMs' | 'serverFaultsStored') => median(valuesOf(c.runs, server, key));
    const [bCpu, tCpu] = [of('baseline', 'serverCpuStoredMs'), of('tusgate', 'serverCpuStoredMs')];
    const [bFaults, tFaults] = [of('baseline', 'serverFaultsStored'), of('tusgate', 'serverFaultsStored')];
    parts.push(
      `${c.label}, medians: ${fmt(bCpu, 0)} ms CPU and ${fmt(bFaults, 0)} minor faults for the baseline, ${fmt(tCpu, 0)} ms and ${fmt(tFaults, 0)} for tusgate.`,
    );
    if (c.ratio > 1.05 && bCpu > tCpu) {
      costlier = true;
      if (bFaults > 2 * tFaults) faultier.push(c.label);
    }
  }
  if (costlier) {
    parts.push(
      'Where tusgate receives faster than the bare server, the same bytes cost the bare server more CPU; the measure itself was checked against the staged files\' sizes. ' +
        'Both servers write the staged file in the same 64 KiB pieces (strace during development: 4,097 pwrite64 calls per 256 MiB upload on each). ' +
        "A CPU profile of each (development, 4 x 256 MiB) put the bare server's extra time in garbage collection and in Node's Readable.toWeb adapter (`onData`, which copies every chunk)." +
        (faultier.length > 0
          ? ` With many more minor page faults in the bare server (${faultier.join('; ')}), a likely reading, not verified further, is that the smaller bare process hands freed memory back to the kernel and faults it in again, where tusgate's larger heap keeps it.`
          : ''),
    );
  }
  return parts.join(' ');
}

/** What the memory numbers say, in words that follow the numbers. */
function memoryReading(memory: MemoryResult): string {
  const delta = (server: string, label: string) => memory.runs.find((r) => r.server === server && r.label === label)?.peakDelta ?? Number.NaN;
  const parts = [
    `Peak deltas differ by ${mb(memory.difference)} for tusgate and by ${mb(memory.baselineDifference)} for the bare @tus/server control (target: within 20 MB).`,
  ];
  const inherited = Math.abs(memory.difference - memory.baselineDifference) <= 10 * MB;
  if (memory.difference > 20 * MB) {
    parts.push(
      inherited
        ? 'The bare @tus/server grows by about as much, so the extra memory comes with the receive pipeline tusgate shares with it, not with the gate or the finish.'
        : 'The bare @tus/server does not grow as much: the extra memory is tusgate\'s own.',
    );
  }
  const mid = delta('tusgate', '256 MiB');
  const large = delta('tusgate', '1 GiB');
  if (Number.isFinite(mid) && Number.isFinite(large)) {
    parts.push(
      Math.abs(large - mid) <= 10 * MB
        ? `A 256 MiB upload grows tusgate by ${mb(mid)}, a 1 GiB one by ${mb(large)}: the growth levels off instead of following the upload's size: a bounded working set of the receive pipeline (stream buffers, the copy Readable.toWeb makes of every chunk, memory that V8 and the allocator keep once freed; RSS does not fall back within 1 s), not bytes held per upload.`
        : `A 256 MiB upload grows tusgate by ${mb(mid)}, a 1 GiB one by ${mb(large)}: the growth follows the upload's size.`,
    );
  }
  return parts.join(' ');
}

export function writeDoc(results: Results): string {
  const file = path.join(ROOT, 'docs', 'benchmarks.md');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, markdown(results));
  return file;
}
