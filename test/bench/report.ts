/** The machine, the summary table (stdout) and docs/benchmarks.md. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { authRows, authSection, type AuthResult } from './auth.ts';
import { avifRows, avifSection, type AvifResult } from './avif.ts';
import { finishLoadRows, finishLoadSection, type FinishLoadResult } from './finish-load.ts';
import { footprintCharts, footprintRows, footprintSection, type FootprintResult } from './footprint.ts';
import type { FinishResult } from './finish.ts';
import { instancesRows, instancesSection, type InstancesResult } from './instances.ts';
import { memoryCharts, type MemoryResult } from './memory.ts';
import { receiveCharts, receiveRows, receiveSection, type ReceiveResult } from './receive.ts';
import { type Chart, chartImage, writeCharts } from './charts.ts';
import type { RefusalResult } from './refusal.ts';
import { s3Rows, s3Section, type S3Result } from './s3.ts';
import { fmt, loadAverages, MB } from './stats.ts';
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
  /** How the machine settled before the first benchmark (settleMachine). */
  settled: string;
  /** What the bench found and did about free page reporting (page-reporting.ts). */
  pageReporting: string;
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

export function describeMachine(libvips: string, settled: string, pageReporting: string): Machine {
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
    settled,
    pageReporting,
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
  footprint?: FootprintResult;
  avif?: AvifResult;
  finishLoad?: FinishLoadResult;
  seconds: number;
}

const mb = (bytes: number) => `${fmt(bytes / MB, 1)} MB`;
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 2)} MiB`;

export function summaryRows(results: Results): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const { receive, refusal, memory, finish } = results;
  if (receive) rows.push(...receiveRows(receive));
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
      target: '>= 1.0x',
      result: verdict(finish.available ? finish.ratio >= 1 : undefined),
    });
  }
  if (results.s3) rows.push(...s3Rows(results.s3));
  if (results.instances) rows.push(...instancesRows(results.instances));
  if (results.auth) rows.push(...authRows(results.auth));
  if (results.footprint) rows.push(...footprintRows(results.footprint));
  if (results.avif) rows.push(...avifRows(results.avif));
  if (results.finishLoad) rows.push(...finishLoadRows(results.finishLoad));
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
    `Written by \`npm run bench\` (test/bench/run.ts) on ${machine.date} with Node ${machine.node}${nodeNote(machine.node)}; the whole run took ${fmt(results.seconds, 0)} s. ` +
      'Rerun it rather than editing this file. Timings are not tests: the targets are printed as PASS/MISS and nothing fails on them.',
  );
  out.push('');
  out.push(`Node 24 LTS is the recommended runtime for tusgate and for this bench: see "How to reproduce" for running it on Node 24 on a machine whose node is older, as .ci/run does.`);
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
        ['Node', `${machine.node}${nodeNote(machine.node)}`],
        ...Object.entries(machine.packages).map(([name, v]) => [name, v]),
        ['vipsthumbnail', finish?.available ? `${finish.vipsVersion} (Debian libvips-tools)` : 'not available'],
        ['tusgate commit', machine.commit],
        ['load average at start (1 / 5 / 15 min)', machine.loadAverage],
        ['before the first benchmark', machine.settled],
        ['free page reporting (test/bench/page-reporting.ts)', machine.pageReporting],
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

  if (receive) out.push(receiveSection(receive));

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
    for (const chart of memoryCharts(memory)) out.push(chartImage(chart), '');
  }

  if (finish) {
    out.push('## 4. Finish: 12 MP JPEG to WebP 2048, tusgate end to end vs vipsthumbnail');
    out.push('');
    out.push(
      [
        `- Photos: 4 distinct 4000x3000 JPEGs (quality 90; colour gradient, upscaled-noise texture and grain), ${finish.photoBytes.map((b) => mb(b)).join(', ')}; used in turn, ${finish.images} per round.`,
        `- **tusgate**: tus-js-client uploads (POST + one PATCH); the final response comes after the finish (sha256, decode, auto-orient, resize to fit 2048x2048, sRGB, WebP quality 80 effort ${finish.webpEffort ?? 4}, publish to disk). ${finish.concurrency} uploads in flight; TRANSCODE_CONCURRENCY=${finish.concurrency}, SHARP_THREADS=1.`,
        `- **vipsthumbnail** (${finish.vipsVersion}, Debian libvips-tools): \`vipsthumbnail in.jpg -s 2048x2048 -o out.webp[Q=80,strip,effort=${finish.webpEffort ?? 4}]\` (tusgate's default WEBP_EFFORT, given to tusgate too), ${finish.concurrency} processes at a time, VIPS_CONCURRENCY=1 (one thread per image, as SHARP_THREADS=1), VIPSHOME removed from its environment (importing sharp sets it and it breaks the Debian CLI). Includes each process's start-up.`,
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
  if (results.footprint) out.push(footprintSection(results.footprint));
  if (results.avif) out.push(avifSection(results.avif));
  if (results.finishLoad) out.push(finishLoadSection(results.finishLoad));

  out.push('## How to reproduce');
  out.push('');
  out.push(
    [
      '```sh',
      'npm ci',
      'npm run bench            # all ten, then rewrites docs/benchmarks.md and the charts next to it (docs/bench-*.svg)',
      '```',
      '',
      '- **Node 24 LTS** is the recommended runtime (Node 20 left maintenance in April 2026; the AWS SDK drops it in January 2027). The bench runs on whichever `node` is first on PATH (the servers it starts use the same `process.execPath`), and reports its version in the machine table, in the first line of this page and in the summary header it prints. Where the machine\'s node is older, install Node 24 from the npm registry\'s `node` package into a folder of its own and put it first on PATH, as .ci/run does for the test suite:',
      '',
      '  ```sh',
      '  dir="${TMPDIR:-/tmp}/tusgate-node24"',
      '  [ -x "$dir/node_modules/.bin/node" ] || npm install --prefix "$dir" --no-audit --no-fund node@24',
      '  PATH="$dir/node_modules/.bin:$PATH" npm run bench',
      '  ```',
      '',
      '  (`node_modules/.bin/node` there links to `node_modules/node/bin/node`; either folder on PATH works.) npm itself stays the machine\'s; `npm run` starts the script with the `node` found on PATH.',
      '- Linux only (it reads /proc). Run as root, or install `libvips-tools` beforehand: when `vipsthumbnail` is missing the bench runs `apt-get update && apt-get install -y --no-install-recommends libvips-tools` itself (the only traffic off 127.0.0.1), and benchmark 4 reports tusgate alone if that fails.',
      '- Resetting VmHWM writes to /proc/<server pid>/clear_refs (the server is our own child); without that right the sampled peak is used.',
      '- It needs about 2 GiB free under the temp dir and takes a few minutes on 2 cores; every temp dir it makes (`$TMPDIR/tusgate-bench-*`) is removed at the end, also on Ctrl-C.',
      '- Benchmarks 5 and 6 start a throw-away Ceph RGW (4 GiB memstore), redis-server and nginx on loopback with deploy/services/*.sh, installing Debian\'s packages when they are missing (root), and stop them before benchmark 7.',
      '- Benchmark 1 starts a fresh server process for every measured run (3 servers x 2 cases x `BENCH_ROUNDS`, 30 processes by default): under a minute on 2 cores here; its section says how long it took.',
      '- Knobs: `BENCH_ROUNDS` (runs per server per case in benchmarks 1 and 5, default 5; in benchmark 1 that many fresh processes per server and case), `BENCH_FINISH_IMAGES` (default 16), `BENCH_FINISH_ROUNDS` (default 3), `BENCH_INSTANCE_ROUNDS` (benchmark 6, default 3), `BENCH_AUTH_ROUNDS` (benchmark 7, rounds per case, default 10), `BENCH_FOOTPRINT_ROUNDS` (benchmark 8, loaded fresh processes per server, default 3), `BENCH_FOOTPRINT_IDLE` (benchmark 8, fresh processes per server for the idle RSS, default 3), `BENCH_AVIF_PHOTOS` and `BENCH_AVIF_ROUNDS` (benchmark 9, default 2 and 2), `BENCH_FINISH_LOAD_UPLOADS` (benchmark 10, default 50), `BENCH_PAGE_REPORTING=keep` (leaves free page reporting on; by default the bench stops it for its run where /sys/module/page_reporting exists and it is root, and touches 6 GiB (at most half of the free memory) once first: test/bench/page-reporting.ts). Benchmark 9 installs Debian\'s `libavif-bin` (avifenc) and `libvips-tools` when missing (root). `npm run bench -- --only 5,6` runs some benchmarks and prints them without writing this file or the charts; with `BENCH_CHARTS_DIR=<folder>` it writes the charts of the benchmarks it ran into that folder.',
    ].join('\n'),
  );
  out.push('');
  return out.join('\n');
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
  writeCharts(path.dirname(file), resultCharts(results));
  return file;
}

/** The SVG charts of the benchmarks that ran (docs/bench-*.svg, linked from their sections). */
export function resultCharts(results: Results): Chart[] {
  return [...(results.receive ? receiveCharts(results.receive) : []), ...(results.memory ? memoryCharts(results.memory) : []), ...(results.footprint ? footprintCharts(results.footprint) : [])];
}

/** The recommended runtime is Node 24 LTS: a note after an older version. */
export const nodeNote = (version: string): string =>
  Number(/^v(\d+)/.exec(version)?.[1] ?? 0) >= 24 ? '' : ' (not Node 24 LTS, the recommended runtime)';
