/**
 * `npm run bench`: the ten benchmarks in one run, on Node 24 LTS (node24.ts), printed with PASS/MISS against their
 * targets, then written to docs/benchmarks.md. Not a test: nothing fails on a timing.
 * Benchmarks 5 and 6 start Ceph RGW, Redis and nginx (deploy/services/*.sh) and stop them
 * (before benchmark 7, which runs on loopback alone).
 * Traffic stays on 127.0.0.1 (but for apt-get, when a package must be installed).
 *
 *   npm run bench                 all ten, then docs/benchmarks.md
 *   npm run bench -- --only 2,3   some of them, printed only
 *
 * Environment: BENCH_ROUNDS (benchmarks 1 and 5, runs per server per case, default 5),
 * BENCH_FINISH_IMAGES (default 16), BENCH_FINISH_ROUNDS (default 3), BENCH_INSTANCE_ROUNDS
 * (benchmark 6, default 3), BENCH_AUTH_ROUNDS (benchmark 7, rounds per case, default 10),
 * BENCH_FOOTPRINT_ROUNDS (benchmark 8, loaded fresh processes per server, default 3),
 * BENCH_FOOTPRINT_IDLE (benchmark 8, fresh processes per server for the idle RSS, default 3),
 * BENCH_AVIF_PHOTOS / BENCH_AVIF_ROUNDS (benchmark 9, default 2 / 2),
 * BENCH_FINISH_LOAD_UPLOADS (benchmark 10, default 50), BENCH_PAGE_REPORTING=keep (leaves free
 * page reporting on: page-reporting.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { build } from '../support/server.ts';
import { startBackends, type Backends } from '../support/services.ts';
import { authBench, authResultLine } from './auth.ts';
import { avifBench, avifLines } from './avif.ts';
import { finishLoadBench, finishLoadLines } from './finish-load.ts';
import { footprintBench, footprintLines } from './footprint.ts';
import { ensureVipsthumbnail } from './debian-tools.ts';
import { finishBench } from './finish.ts';
import { instancesBench } from './instances.ts';
import { memoryBench } from './memory.ts';
import { pausePageReporting, type PageReporting } from './page-reporting.ts';
import { settleMachine } from './proc.ts';
import { receiveBench, receiveResultLines } from './receive.ts';
import { refusalBench } from './refusal.ts';
import { describeMachine, nodeNote, resultCharts, summaryText, writeDoc, type Results } from './report.ts';
import { writeCharts } from './charts.ts';
import { s3Bench } from './s3.ts';
import { runOnNode24 } from './node24.ts';
import { stopAll } from './servers.ts';
import { fmt, MB } from './stats.ts';

/** The whole run is bounded: past this, it stops its servers, cleans up and exits 1. */
const TIME_LIMIT_MS = 20 * 60 * 1000;

const ALL = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

function parseOnly(argv: string[]): Set<number> {
  const at = argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  if (at < 0) return new Set(ALL);
  const value = argv[at]!.includes('=') ? argv[at]!.split('=')[1]! : (argv[at + 1] ?? '');
  return new Set(value.split(',').map(Number).filter((n) => ALL.includes(n)));
}

const envInt = (name: string, fallback: number) => {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
};

const log = (line: string) => process.stdout.write(`${line}\n`);

runOnNode24(fileURLToPath(import.meta.url), process.argv.slice(2));

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tusgate-bench-'));
let cleaned = false;
let backends: Backends | undefined;
let pageReporting: PageReporting | undefined;
async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await stopAll();
  await backends?.stop();
  pageReporting?.restore();
  fs.rmSync(workDir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the servers and removing ${workDir}`);
    void cleanUp().finally(() => process.exit(130));
  });
}

const watchdog = setTimeout(() => {
  log(`\nthe bench ran past ${TIME_LIMIT_MS / 60_000} minutes: stopping (a server may hang; see the last lines above)`);
  void cleanUp().finally(() => process.exit(1));
}, TIME_LIMIT_MS);
watchdog.unref();

async function main(): Promise<void> {
  const only = parseOnly(process.argv.slice(2));
  const started = performance.now();
  build(); // the servers run npm start's build
  const vips = only.has(4) ? ensureVipsthumbnail(log) : { ok: false, note: 'not run' };
  pageReporting = pausePageReporting();
  const calm = await settleMachine();
  const settled = `sync, then ${calm.idle ? 'idle' : 'still busy'} after ${fmt(calm.ms / 1000, 1)} s (${fmt(calm.busy * 100, 0)}% of the CPU busy in the last second${calm.idle ? '' : '; the bench went on'})`;
  const results: Results = { machine: describeMachine(sharp.versions.vips, settled, pageReporting.note), seconds: 0 };
  const m = results.machine;
  log(`tusgate bench: ${m.cores} cores (${m.cpu}), ${m.memory}, ${m.os}, Node ${m.node}, ${m.date}`);
  log(`work dir ${workDir}`);
  log(`free page reporting: ${pageReporting.note}`);
  log(`before the first benchmark: ${settled}`);

  if (only.has(1)) {
    const rounds = envInt('BENCH_ROUNDS', 5);
    log(`\n[1] receive-path throughput, tusgate vs bare @tus/server vs plain Node http -> fs, ${rounds} fresh processes each per case, interleaved`);
    results.receive = await receiveBench(workDir, rounds, log);
    for (const c of results.receive.cases) for (const line of receiveResultLines(c)) log(line);
    log(`  (benchmark 1 took ${fmt(results.receive.seconds, 0)} s)`);
  }
  if (only.has(2)) {
    log('\n[2] refusal cost: 1 GiB of random bytes as one PATCH');
    const r = await refusalBench(workDir);
    results.refusal = r;
    const read = r.serverSocketBytesRead;
    log(`  response ${r.patch.status} ${r.responseCode ?? ''} after ${fmt(r.patch.msToResponse, 1)} ms; connection closed after ${fmt(r.patch.msToClose, 0)} ms (${r.patch.end})`);
    log(`  server read ${read ?? 'n/a'} bytes (log line), rchar ${r.serverRcharDelta}; client wrote ${r.patch.clientBytes} body bytes; persisted ${r.persistedUploadBytes} upload bytes; files left: ${r.files.map((f) => f.path).join(', ') || 'none'}; later HEAD ${r.headStatus}`);
    log(`  => read ${read !== null && read <= 2 ** 20 ? 'PASS' : 'MISS'} (target <= 1 MiB), persisted ${r.persistedUploadBytes === 0 ? 'PASS' : 'MISS'} (target 0)`);
  }
  if (only.has(3)) {
    log('\n[3] server RSS, 1 MiB vs 1 GiB upload, fresh server each (tusgate, then the bare @tus/server as a control)');
    const r = await memoryBench(workDir);
    results.memory = r;
    for (const run of r.runs) {
      log(
        `  ${run.server.padEnd(8)} ${run.label.padEnd(7)} RSS before ${fmt(run.rssBefore / MB)} MB, peak ${fmt(Math.max(run.hwm, run.sampledPeak) / MB)} MB (receive ${fmt(run.receivePeak / MB)}, after ${fmt(run.afterStoredPeak / MB)}), 1 s after ${fmt(run.rssAfter / MB)} MB => delta ${fmt(run.peakDelta / MB)} MB [${run.outcome}]`,
      );
    }
    log(`  => tusgate deltas differ by ${fmt(r.difference / MB)} MB ${r.difference <= 20 * MB ? 'PASS' : 'MISS'} (target <= 20 MB); bare @tus/server: ${fmt(r.baselineDifference / MB)} MB`);
  }
  if (only.has(4)) {
    const images = envInt('BENCH_FINISH_IMAGES', 16);
    const rounds = envInt('BENCH_FINISH_ROUNDS', 3);
    log(`\n[4] finish: ${images} x 12 MP JPEG -> WebP 2048 q80, concurrency 2, tusgate end to end vs vipsthumbnail (${vips.note})`);
    results.finish = await finishBench(workDir, { images, rounds, concurrency: 2, vips }, log);
    const f = results.finish;
    log(`  => tusgate ${fmt(f.tusgateMedian, 2)} images/s, vipsthumbnail ${f.available ? fmt(f.vipsMedian, 2) : 'n/a'} images/s, ratio ${f.available ? `${fmt(f.ratio, 3)}x` : 'n/a'} (no target)`);
  }

  if (only.has(5) || only.has(6)) {
    log('\nstarting Ceph RGW and Redis (deploy/services; installs Debian packages when missing)');
    backends = await startBackends(4 * 1024 ** 3);
  }
  if (only.has(5) && backends) {
    const rounds = envInt('BENCH_ROUNDS', 5);
    log(`\n[5] S3 path: raw PutObject vs the http -> PutObject hop (without and with the .info) vs bare @tus/server + S3Store vs tusgate, same RGW, ${rounds} interleaved runs each`);
    results.s3 = await s3Bench(workDir, backends.services, rounds, log);
    for (const c of results.s3.cases) {
      log(`  => ${c.label}: PutObject ${fmt(c.stored.putobject)} MB/s, hop ${fmt(c.stored.hop)} (${fmt(c.stored.hop / c.stored.putobject, 3)}x), hop + .info ${fmt(c.stored['hop-record'])} (${fmt(c.stored['hop-record'] / c.stored.putobject, 3)}x), bare S3Store ${fmt(c.stored.baseline)}, tusgate ${fmt(c.stored.tusgate)}; tusgate/PutObject ${fmt(c.ratio, 3)}x ${c.ratio >= 0.8 ? 'PASS' : 'MISS'} (target >= 0.8x), tusgate/hop + .info ${fmt(c.ratioToHop, 3)}x, tusgate/bare ${fmt(c.ratioToBaseline, 3)}x`);
    }
  }
  if (only.has(6) && backends) {
    const rounds = envInt('BENCH_INSTANCE_ROUNDS', 3);
    log(`\n[6] instances: one direct, one via nginx, two via nginx (S3 + Redis), ${rounds} interleaved rounds`);
    results.instances = await instancesBench(workDir, backends.services, rounds, log);
    const d = results.instances.done;
    log(`  => one direct ${fmt(d['one direct'])} MB/s, one via nginx ${fmt(d['one via nginx'])}, two via nginx ${fmt(d['two via nginx'])}; two/one ${fmt(results.instances.ratio, 3)}x (no target)`);
  }
  if (backends) {
    log('\nstopping Ceph RGW and Redis');
    await backends.stop();
  }
  if (only.has(7)) {
    const rounds = envInt('BENCH_AUTH_ROUNDS', 10);
    log(`\n[7] JWT auth on vs off: tusgate AUTH_MODE=none vs AUTH_MODE=jwt (HS256), a fresh server per run, ${rounds} interleaved rounds per case`);
    results.auth = await authBench(workDir, rounds, log);
    for (const c of results.auth.cases) log(authResultLine(c));
    log(`  (load average at the end, 1 / 5 / 15 min: ${results.auth.loadAfter})`);
  }
  if (only.has(8)) {
    const rounds = envInt('BENCH_FOOTPRINT_ROUNDS', 3);
    const idleProcesses = envInt('BENCH_FOOTPRINT_IDLE', 3);
    log(`\n[8] footprint of the embedded default: idle RSS (${Math.max(rounds, idleProcesses)} fresh processes each), then 100 concurrent 8 MiB uploads with transcodes (${rounds} of them), tusgate vs bare @tus/server`);
    results.footprint = await footprintBench(workDir, { rounds, idleProcesses }, log);
    for (const line of footprintLines(results.footprint)) log(line);
  }
  if (only.has(9)) {
    const photos = envInt('BENCH_AVIF_PHOTOS', 2);
    const rounds = envInt('BENCH_AVIF_ROUNDS', 2);
    log(`\n[9] AVIF: ${photos} x 12 MP JPEG -> AVIF 2048, tusgate end to end and transcode alone vs avifenc and vipsthumbnail at equal size, ${rounds} runs each`);
    results.avif = await avifBench(workDir, { photos, rounds }, log);
    for (const line of avifLines(results.avif)) log(line);
  }
  if (only.has(10)) {
    const uploads = envInt('BENCH_FINISH_LOAD_UPLOADS', 50);
    log(`\n[10] finish load: ${uploads} concurrent 24 MP (6000x4000) uploads and finishes on one tusgate with the defaults`);
    results.finishLoad = await finishLoadBench(workDir, { uploads }, log);
    for (const line of finishLoadLines(results.finishLoad)) log(line);
  }

  results.seconds = (performance.now() - started) / 1000;
  log(`\nSummary (${fmt(results.seconds, 0)} s, Node ${m.node}${nodeNote(m.node)})\n`);
  log(summaryText(results));
  if (only.size === ALL.length) {
    const file = writeDoc(results);
    log(`\nwrote ${path.relative(process.cwd(), file)}`);
  } else {
    log('\n(some benchmarks only: docs/benchmarks.md left as it was)');
    if (process.env.BENCH_CHARTS_DIR) for (const file of writeCharts(process.env.BENCH_CHARTS_DIR, resultCharts(results))) log(`wrote ${file}`);
  }
}

try {
  await main();
} catch (error) {
  log(`\nbench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanUp();
}
