/**
 * Benchmark 5: the S3 path. The same bytes reach the same Ceph RGW five ways:
 * - PutObject: the AWS SDK in the bench process, one PutObject per upload (no tus at all);
 * - the hop: a plain Node http server that streams each PATCH body into one PutObject
 *   (s3-hop-server.ts), Node's own limit for a server between the client and S3 here, and
 *   the same with the upload's `.info` record written at creation (HOP_RECORD=1);
 * - bare @tus/server + @tus/s3-store (baseline-server.ts, BENCH_STORE=s3);
 * - tusgate with TUS_STORE=s3.
 * Timed to "every byte is in S3": the PutObject's response; the hop's and the bare server's
 * final PATCH response (the hop answers after its PutObject, S3Store after it completed the
 * multipart upload); tusgate's `upload received` log
 * line, written when @tus/server hands the completed upload to the finish. tusgate's final
 * response (after the finish: download, sha256, transcode, publish, delete) is reported too.
 *
 * Traffic: one 4 MiB upload in one PATCH and in 64 KiB PATCHes, through the bare
 * @tus/server + S3Store and through tusgate: the bytes the server process read and wrote
 * (/proc/<pid>/io rchar + wchar: the client's socket, S3's sockets, temporary files, state
 * files, logs), from before the POST to every byte in S3 (as above). The target: 64 KiB
 * chunks move at most 2x the bytes of one PATCH (linear in the upload, not quadratic).
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import os from 'node:os';
import path from 'node:path';
import { createBuckets, emptyBucket, s3Client, s3Env, type Services } from '../support/services.ts';
import { tusUpload } from './clients.ts';
import { imageBuffer } from './payloads.ts';
import { cpuOfAll, pidsWith, readIo, readStat } from './proc.ts';
import { MiB, startBaseline, startHop, startTusgate, type Target } from './servers.ts';
import { countStatuses, fmt, MB, median, rotated } from './stats.ts';
import { mdTable, verdict, type SummaryRow } from './table.ts';

export const S3_PART_SIZE = 8 * MiB;

export type S3Path = 'putobject' | 'hop' | 'hop-record' | 'baseline' | 'tusgate';

const PATH_NAMES: Record<S3Path, string> = {
  putobject: 'PutObject',
  hop: 'http -> PutObject hop',
  'hop-record': 'hop + .info',
  baseline: 'bare S3Store',
  tusgate: 'tusgate',
};

export interface S3Run {
  case: string;
  round: number;
  path: S3Path;
  bytes: number;
  /** ms from the start to every byte in S3 (null: not seen). */
  msStored: number | null;
  /** ms from the start to the last response the client got. */
  msDone: number;
  statuses: string;
  /** CPU ms of the server process until every byte was in S3 (null for PutObject: no server). */
  serverCpuMs: number | null;
  /** CPU ms of the client (this process) over the same span. */
  clientCpuMs: number;
  /** CPU ms of Ceph (the bench cluster's radosgw, ceph-osd and ceph-mon) over the same span (absent in results from before it was measured). */
  cephCpuMs?: number;
}

export interface S3Case {
  name: string;
  label: string;
  uploads: number;
  size: number;
  runs: S3Run[];
  /** Median MB/s to every byte in S3, per path. */
  stored: Record<S3Path, number>;
  /** tusgate's median MB/s to its final response (the finish included). */
  tusgateDone: number;
  /** tusgate / PutObject, tusgate / bare S3Store, tusgate / the hop with the `.info` record. */
  ratio: number;
  ratioToBaseline: number;
  ratioToHop: number;
}

/** Bytes one server process moved for one 4 MiB upload, by chunk size. */
export interface S3Traffic {
  path: 'baseline' | 'tusgate';
  bytes: number;
  chunkSize: number | null;
  /** rchar + wchar of the server from before the POST to every byte in S3 (median of the rounds). */
  moved: number;
  ms: number;
  statuses: string;
}

export interface S3Result {
  rounds: number;
  partSize: number;
  cases: S3Case[];
  /** Traffic of one 4 MiB upload, one PATCH vs 64 KiB chunks (absent in results from before it was measured). */
  traffic?: S3Traffic[];
  /** 1 / 5 / 15-minute load averages when it ended (other work on the machine adds noise). */
  loadAfter?: string;
  /** The CPUs the client, the servers and Ceph share (absent in results from before it was recorded). */
  cores?: number;
}

export const TRAFFIC_BYTES = 4 * MiB;
export const TRAFFIC_CHUNK = 64 * 1024;
/** The target: 64 KiB chunks move at most this many times the bytes of one PATCH. */
export const TRAFFIC_TARGET = 2;

/** tusgate's small-chunk traffic over its one-PATCH traffic (NaN when not measured). */
export function trafficRatio(traffic: S3Traffic[] | undefined, path: S3Traffic['path'] = 'tusgate'): number {
  const of = (chunk: number | null) => traffic?.find((t) => t.path === path && t.chunkSize === chunk)?.moved ?? Number.NaN;
  return of(TRAFFIC_CHUNK) / of(null);
}

const cpuMsSince = (before: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
};

async function putObjects(s3: S3Client, bucket: string, payload: Buffer, uploads: number, tag: string, cephCpu: () => number): Promise<Omit<S3Run, 'case' | 'round' | 'path'>> {
  const cpu = process.cpuUsage();
  const ceph0 = cephCpu();
  const started = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: uploads }, async (_, i) => {
      const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `put-${tag}-${i}`, Body: payload, ContentType: 'application/octet-stream' }));
      return out.$metadata.httpStatusCode ?? 'no status';
    }),
  );
  const ms = performance.now() - started;
  const clientCpuMs = cpuMsSince(cpu);
  return { bytes: payload.length * uploads, msStored: ms, msDone: ms, statuses: countStatuses(statuses), serverCpuMs: null, clientCpuMs, cephCpuMs: cephCpu() - ceph0 };
}

/**
 * tus-js-client uploads to a server. For tusgate, "stored" is the latest `upload received`
 * log line of this run (pino's ISO time, ms), and the CPU counters are read when that line
 * arrives; for the bare server, both are taken at the final response.
 */
async function tusUploads(
  target: Target<string>,
  payload: Buffer,
  uploads: number,
  cephCpu: () => number,
  chunkSize = Number.POSITIVE_INFINITY,
): Promise<Omit<S3Run, 'case' | 'round' | 'path'> & { moved: number }> {
  const seenBefore = target.logs.length;
  const received = () => target.logs.slice(seenBefore).filter((line) => line.msg === 'upload received');
  const serverCpu0 = readStat(target.pid).cpuMs;
  const io = () => {
    const { rchar, wchar } = readIo(target.pid);
    return rchar + wchar;
  };
  const io0 = io();
  const clientCpu0 = process.cpuUsage();
  const ceph0 = cephCpu();
  let atStored: { server: number; client: number; ceph: number; moved: number } | undefined;
  const takeCounters = () => {
    atStored ??= { server: readStat(target.pid).cpuMs - serverCpu0, client: cpuMsSince(clientCpu0), ceph: cephCpu() - ceph0, moved: io() - io0 };
  };
  // read when the last `upload received` line arrives (the server's stdout), not by polling:
  // a 1 ms timer here took CPU from the client that sends the bytes, on the same two cores
  if (target.name === 'tusgate') void target.waitForLog(() => received().length >= uploads, 120_000).then(takeCounters, () => {});
  const startedWall = Date.now();
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: uploads }, () => tusUpload(target.endpoint, payload, { chunkSize })));
  const msDone = Math.max(...results.map((r) => r.endedAt)) - started;
  let msStored: number | null = msDone;
  if (target.name === 'tusgate') {
    const lines = received();
    msStored = lines.length === uploads ? Math.max(...lines.map((line) => Date.parse(String(line.time)))) - startedWall : null;
  } else {
    takeCounters();
  }
  return {
    bytes: payload.length * uploads,
    msStored,
    msDone,
    statuses: countStatuses(results.map((r) => r.status ?? r.error ?? 'error')),
    serverCpuMs: atStored?.server ?? null,
    clientCpuMs: atStored?.client ?? Number.NaN,
    cephCpuMs: atStored?.ceph ?? Number.NaN,
    moved: atStored?.moved ?? Number.NaN,
  };
}

/** One 4 MiB upload per path, in one PATCH and in 64 KiB PATCHes, `rounds` times: the bytes each server moved. */
async function trafficRuns(
  targets: Array<{ path: S3Traffic['path']; target: Target }>,
  rounds: number,
  cephCpu: () => number,
  settle: () => Promise<void>,
  log: (line: string) => void,
): Promise<S3Traffic[]> {
  const payload = await imageBuffer(TRAFFIC_BYTES);
  const out: S3Traffic[] = [];
  for (const chunkSize of [null, TRAFFIC_CHUNK]) {
    for (const { path: p, target } of targets) {
      const runs: Array<{ moved: number; ms: number; statuses: string }> = [];
      for (let round = 1; round <= rounds; round++) {
        const run = await tusUploads(target, payload, 1, cephCpu, chunkSize ?? Number.POSITIVE_INFINITY);
        runs.push({ moved: run.moved, ms: run.msStored ?? Number.NaN, statuses: run.statuses });
        await settle();
      }
      const moved = median(runs.map((r) => r.moved));
      const ms = median(runs.map((r) => r.ms));
      out.push({ path: p, bytes: TRAFFIC_BYTES, chunkSize, moved, ms, statuses: runs.map((r) => r.statuses).join(' ') });
      log(
        `  traffic ${p.padEnd(8)} 4 MiB ${chunkSize === null ? 'in one PATCH  ' : `in ${chunkSize / 1024} KiB PATCHes`}: server moved ${fmt(moved / MB)} MB (rchar + wchar, median of ${rounds}), ${fmt(ms, 0)} ms to in S3 [${runs.map((r) => r.statuses).join(' ')}]`,
      );
    }
  }
  return out;
}

export async function s3Bench(workDir: string, services: Services, rounds: number, log: (line: string) => void): Promise<S3Result> {
  const s3 = s3Client(services);
  // Ceph's CPU per run: it shares the cores with the client and the servers
  const cephPids = pidsWith(path.join(services.scratch, 'ceph'));
  if (cephPids.length === 0) throw new Error(`benchmark 5: no Ceph process found with ${path.join(services.scratch, 'ceph')} in its command line`);
  const cephCpu = cpuOfAll(cephPids);
  const tag = Date.now().toString(36);
  const buckets = { put: `bench-put-${tag}`, hop: `bench-hop-${tag}`, hopRecord: `bench-hopr-${tag}`, baseline: `bench-bare-${tag}`, tusgate: `bench-gate-${tag}` };
  await createBuckets(s3, ...Object.values(buckets));
  const env = s3Env(services, {}, false);
  const hop = await startHop({ ...env, S3_BUCKET: buckets.hop });
  const hopRecord = await startHop({ ...env, S3_BUCKET: buckets.hopRecord, HOP_RECORD: '1' });
  const baseline = await startBaseline(path.join(workDir, 's3-baseline'), {
    ...env,
    BENCH_STORE: 's3',
    S3_BUCKET: buckets.baseline,
    S3_PART_SIZE: String(S3_PART_SIZE),
  });
  const tusgate = await startTusgate(path.join(workDir, 's3-tusgate'), {
    ...env,
    TUS_STORE: 's3',
    S3_BUCKET: buckets.tusgate,
    S3_PART_SIZE: String(S3_PART_SIZE),
    TRANSCODE_CONCURRENCY: '2',
  });
  const settle = async () => {
    for (const bucket of Object.values(buckets)) await emptyBucket(s3, bucket);
  };
  try {
    const cases = [
      { name: 'single', label: '1 x 64 MiB, one PATCH', uploads: 1, size: 64 * MiB },
      { name: 'concurrent', label: '8 x 8 MiB concurrently', uploads: 8, size: 8 * MiB },
    ];
    const paths: Array<{ path: S3Path; run: (payload: Buffer, uploads: number, id: string) => ReturnType<typeof putObjects> }> = [
      { path: 'putobject', run: (payload, uploads, id) => putObjects(s3, buckets.put, payload, uploads, id, cephCpu) },
      { path: 'hop', run: async (payload, uploads) => tusUploads(hop, payload, uploads, cephCpu) },
      { path: 'hop-record', run: async (payload, uploads) => tusUploads(hopRecord, payload, uploads, cephCpu) },
      { path: 'baseline', run: async (payload, uploads) => tusUploads(baseline, payload, uploads, cephCpu) },
      { path: 'tusgate', run: async (payload, uploads) => tusUploads(tusgate, payload, uploads, cephCpu) },
    ];
    // warm-up (not counted): connections, JIT, RGW's first writes to each bucket
    const warm = await imageBuffer(8 * MiB);
    for (const p of paths) await p.run(warm, 2, 'warm');
    await settle();

    const out: S3Case[] = [];
    for (const c of cases) {
      const payload = await imageBuffer(c.size);
      const runs: S3Run[] = [];
      for (let round = 1; round <= rounds; round++) {
        // each path takes each place in turn: the one after the bare S3Store (whose temporary
        // parts RGW is still collecting) is not always the same
        for (const p of rotated(paths, round)) {
          const run: S3Run = { case: c.name, round, path: p.path, ...(await p.run(payload, c.uploads, `${c.name}-${round}`)) };
          runs.push(run);
          const mbps = run.msStored === null ? null : run.bytes / MB / (run.msStored / 1000);
          log(
            `  ${c.name} round ${round} ${p.path.padEnd(9)} in S3 ${fmt(mbps)} MB/s (${fmt(run.msStored, 0)} ms), last response ${fmt(run.msDone, 0)} ms [${run.statuses}], CPU to in S3: server ${fmt(run.serverCpuMs, 0)} ms, client ${fmt(run.clientCpuMs, 0)} ms, Ceph ${fmt(run.cephCpuMs, 0)} ms`,
          );
          await settle();
        }
      }
      const medianOf = (p: S3Path, key: 'msStored' | 'msDone') =>
        median(runs.filter((r) => r.path === p).map((r) => (r[key] === null ? Number.NaN : r.bytes / MB / ((r[key] as number) / 1000))));
      const stored = {
        putobject: medianOf('putobject', 'msStored'),
        hop: medianOf('hop', 'msStored'),
        'hop-record': medianOf('hop-record', 'msStored'),
        baseline: medianOf('baseline', 'msStored'),
        tusgate: medianOf('tusgate', 'msStored'),
      };
      out.push({
        ...c,
        runs,
        stored,
        tusgateDone: medianOf('tusgate', 'msDone'),
        ratio: stored.tusgate / stored.putobject,
        ratioToBaseline: stored.tusgate / stored.baseline,
        ratioToHop: stored.tusgate / stored['hop-record'],
      });
    }
    log('  traffic: one 4 MiB upload, one PATCH vs 64 KiB PATCHes (the bare S3Store once: it is slow and quadratic)');
    const traffic = [
      ...(await trafficRuns([{ path: 'tusgate', target: tusgate }], Math.max(2, Math.min(rounds, 3)), cephCpu, settle, log)),
      ...(await trafficRuns([{ path: 'baseline', target: baseline }], 1, cephCpu, settle, log)),
    ];
    const ratio = trafficRatio(traffic);
    log(
      `  => traffic: tusgate 64 KiB PATCHes / one PATCH ${fmt(ratio, 2)}x ${ratio <= TRAFFIC_TARGET ? 'PASS' : 'MISS'} (target <= ${TRAFFIC_TARGET}x); bare S3Store ${fmt(trafficRatio(traffic, 'baseline'), 1)}x`,
    );
    const loadAfter = os.loadavg().map((l) => l.toFixed(2)).join(' / ');
    log(`  (load average at the end of benchmark 5, 1 / 5 / 15 min: ${loadAfter})`);
    return { rounds, partSize: S3_PART_SIZE, cases: out, traffic, loadAfter, cores: os.availableParallelism() };
  } finally {
    await hop.stop();
    await hopRecord.stop();
    await baseline.stop();
    await tusgate.stop();
    await settle().catch(() => {});
  }
}

export function s3Rows(result: S3Result): SummaryRow[] {
  return [...result.cases.flatMap((c) => caseRows(c)), ...trafficRows(result)];
}

function trafficRows(result: S3Result): SummaryRow[] {
  if (!result.traffic) return [];
  const moved = (path: S3Traffic['path'], chunk: number | null) => result.traffic?.find((t) => t.path === path && t.chunkSize === chunk)?.moved ?? Number.NaN;
  const ratio = trafficRatio(result.traffic);
  return [
    {
      benchmark: '5 S3 traffic, 4 MiB in 64 KiB PATCHes',
      metric: 'MB the server moved (rchar + wchar) vs one PATCH',
      tusgate: fmt(moved('tusgate', TRAFFIC_CHUNK) / MB),
      baseline: `${fmt(moved('tusgate', null) / MB)} (one PATCH)`,
      ratio: `${fmt(ratio, 2)}x`,
      target: `<= ${TRAFFIC_TARGET}x`,
      result: verdict(Number.isFinite(ratio) ? ratio <= TRAFFIC_TARGET : undefined),
    },
    {
      benchmark: '5 S3 traffic, 4 MiB in 64 KiB PATCHes',
      metric: 'the same through bare @tus/server + S3Store',
      tusgate: fmt(moved('baseline', TRAFFIC_CHUNK) / MB),
      baseline: `${fmt(moved('baseline', null) / MB)} (one PATCH)`,
      ratio: `${fmt(trafficRatio(result.traffic, 'baseline'), 1)}x`,
      target: 'none (reported)',
      result: 'info' as const,
    },
  ];
}

function caseRows(c: S3Case): SummaryRow[] {
  const { putobject, hop } = c.stored;
  const hopRecord = c.stored['hop-record'];
  return [
    {
      benchmark: `5 S3 path ${c.label}`,
      metric: 'median MB/s to every byte in S3',
      tusgate: fmt(c.stored.tusgate),
      baseline: `${fmt(putobject)} (PutObject)`,
      ratio: `${fmt(c.ratio, 3)}x`,
      target: '>= 0.8x',
      result: verdict(Number.isFinite(c.ratio) ? c.ratio >= 0.8 : undefined),
    },
    {
      benchmark: `5 S3 path ${c.label}`,
      metric: 'the http -> PutObject hop vs PutObject, without / with the .info at creation',
      tusgate: `${fmt(hop)} / ${fmt(hopRecord)} (hop)`,
      baseline: `${fmt(putobject)} (PutObject)`,
      ratio: `${fmt(hop / putobject, 3)}x / ${fmt(hopRecord / putobject, 3)}x`,
      target: 'none (Node\'s limit here)',
      result: 'info' as const,
    },
    {
      benchmark: `5 S3 path ${c.label}`,
      metric: 'tusgate vs the hop with the .info',
      tusgate: fmt(c.stored.tusgate),
      baseline: `${fmt(hopRecord)} (hop + .info)`,
      ratio: `${fmt(c.ratioToHop, 3)}x`,
      target: 'none (reported)',
      result: 'info' as const,
    },
    {
      benchmark: `5 S3 path ${c.label}`,
      metric: 'the same vs bare @tus/server + S3Store',
      tusgate: fmt(c.stored.tusgate),
      baseline: `${fmt(c.stored.baseline)} (bare S3Store)`,
      ratio: `${fmt(c.ratioToBaseline, 3)}x`,
      target: 'none (reported)',
      result: 'info' as const,
    },
  ];
}

export function s3Section(result: S3Result): string {
  const lines = [
    '## 5. The S3 path: tusgate vs raw PutObject of the same bytes, same RGW',
    '',
    [
      '- **S3 server**: Ceph RGW 16 (Debian), single node, memstore OSD, on loopback, started by the bench through deploy/services/ceph-rgw.sh, with `tcp_nodelay=1` on its beast frontend: without it every RGW response that has a body (GetObject, ListParts, CreateMultipartUpload) waited ~44 ms for the client\'s delayed ACK (Nagle), measured here, and the S3Store paths ran at half the speed. Its garbage collector frees deleted objects at once (`rgw gc obj min wait = 0`): with the default 2 h, memstore kept every deleted byte in RAM, and multipart writes slowed by half as the OSD grew, measured here. It shares the two cores with the client and the servers.',
      '- **PutObject**: @aws-sdk/client-s3 in the bench process, one PutObject per upload from a Buffer (checksums WHEN_REQUIRED, as tusgate). No tus, no part splitting: the ceiling for "these bytes into this RGW".',
      '- **http -> PutObject hop**: test/bench/s3-hop-server.ts, `http.createServer`; a POST answers 201, and the PATCH body (the whole upload) is streamed into one PutObject of the upload\'s object with tusgate\'s S3 client settings, answered 204 after S3 answered. No state, locks, gate or finish: Node\'s own limit here for any server between the client and S3, POST then PATCH as tus needs. **hop + .info**: the same, with its POST first writing the upload\'s `<id>.info` object, the record @tus/s3-store, tusd\'s s3store and tusgate write at creation.',
      `- **bare @tus/server + @tus/s3-store**: test/bench/baseline-server.ts with BENCH_STORE=s3, partSize ${fmt(result.partSize / MiB, 0)} MiB, the same client settings. Its final PATCH response comes after CompleteMultipartUpload.`,
      `- **tusgate**: TUS_STORE=s3, S3_PART_SIZE=${fmt(result.partSize / MiB, 0)} MiB, PUBLIC_STORE=file, no Redis. "In S3" is the \`upload received\` log line (the object is written, in one PutObject or by completing its multipart upload, and @tus/server calls the finish); "final response" adds the finish: download of the staged object, sha256, transcode, publish, deletion of the staged object.`,
      '- **Driver**: tus-js-client 4, Buffer source, POST then one PATCH per upload, no retries; the payload is the benchmark 1 JPEG plus filler.',
      `- **Order**: a warm-up of 2 x 8 MiB per path (not counted), then the five interleaved in an order rotated each round (PutObject, hop, hop + .info, bare, tusgate; then hop, hop + .info, bare, tusgate, PutObject; ...), ${result.rounds} runs each per case; every bucket is emptied between runs. Medians.`,
    ].join('\n'),
    '',
    mdTable(
      ['case', 'PutObject MB/s', 'hop MB/s', 'hop + .info MB/s', 'bare S3Store MB/s', 'tusgate MB/s in S3', 'tusgate / PutObject', 'tusgate / hop + .info', 'tusgate / bare', 'tusgate MB/s to final response (incl. finish)'],
      result.cases.map((c) => [
        c.label,
        fmt(c.stored.putobject),
        fmt(c.stored.hop),
        fmt(c.stored['hop-record']),
        fmt(c.stored.baseline),
        fmt(c.stored.tusgate),
        `${fmt(c.ratio, 3)}x`,
        `${fmt(c.ratioToHop, 3)}x`,
        `${fmt(c.ratioToBaseline, 3)}x`,
        fmt(c.tusgateDone),
      ]),
    ),
    '',
    'Raw runs:',
    '',
    mdTable(
      ['case', 'round', 'path', 'bytes', 'ms to in S3', 'ms to last response', 'server CPU ms to in S3', 'client CPU ms to in S3', 'Ceph CPU ms to in S3', 'statuses'],
      result.cases.flatMap((c) =>
        c.runs.map((r) => [r.case, r.round, r.path, r.bytes, fmt(r.msStored, 0), fmt(r.msDone, 0), fmt(r.serverCpuMs, 0), fmt(r.clientCpuMs, 0), fmt(r.cephCpuMs, 0), r.statuses]),
      ),
    ),
    '',
    ...trafficSection(result),
    s3Reading(result),
    '',
  ];
  return lines.join('\n');
}

function trafficSection(result: S3Result): string[] {
  if (!result.traffic) return [];
  return [
    `Traffic of one 4 MiB upload (the bytes the server process read and wrote, /proc/<pid>/io rchar + wchar, from before the POST to every byte in S3; target: 64 KiB PATCHes move at most ${TRAFFIC_TARGET}x the bytes of one PATCH):`,
    '',
    mdTable(
      ['server', 'PATCHes', 'MB moved', 'ms to in S3', 'statuses'],
      result.traffic.map((t) => [t.path === 'tusgate' ? 'tusgate' : 'bare S3Store', t.chunkSize === null ? 'one' : `${t.chunkSize / 1024} KiB`, fmt(t.moved / MB), fmt(t.ms, 0), t.statuses]),
    ),
    '',
  ];
}

/**
 * One case's CPU, medians per path, and what it allows: the client, the servers and Ceph
 * share `cores` CPUs, so a path that needs C CPU-ms in all takes at least C / cores ms.
 */
function cpuBudget(c: S3Case, cores: number | undefined): string {
  const of = (p: S3Path, key: 'serverCpuMs' | 'clientCpuMs' | 'cephCpuMs') => median(c.runs.filter((r) => r.path === p).map((r) => r[key] ?? Number.NaN));
  const ms = (p: S3Path) => median(c.runs.filter((r) => r.path === p).map((r) => r.msStored ?? Number.NaN));
  const sum = (p: S3Path) => (p === 'putobject' ? 0 : of(p, 'serverCpuMs')) + of(p, 'clientCpuMs') + of(p, 'cephCpuMs');
  const line = (p: S3Path, name: string) =>
    `${name}: Ceph ${fmt(of(p, 'cephCpuMs'), 0)}${p === 'putobject' ? '' : ` + server ${fmt(of(p, 'serverCpuMs'), 0)}`} + client ${fmt(of(p, 'clientCpuMs'), 0)} = ${fmt(sum(p), 0)} CPU-ms in ${fmt(ms(p), 0)} ms`;
  const paths: S3Path[] = ['putobject', 'hop', 'hop-record', 'baseline', 'tusgate'];
  const text = `${c.label}, medians per ${fmt((c.size * c.uploads) / MiB, 0)} MiB: ${paths.map((p) => line(p, PATH_NAMES[p])).join('; ')}.`;
  if (cores === undefined || !Number.isFinite(sum('tusgate'))) return text;
  // 0.8x of PutObject's speed is 1.25x its time: all the CPU of tusgate's path must fit in it
  const allowed = (ms('putobject') / 0.8) * cores;
  const left = allowed - of('tusgate', 'cephCpuMs') - of('tusgate', 'clientCpuMs');
  return (
    `${text} On ${cores} cores, tusgate's path needs at least ${fmt(sum('tusgate') / cores, 0)} ms for that CPU; ` +
    `0.8x of PutObject is ${fmt(ms('putobject') / 0.8, 0)} ms, at most ${fmt(allowed, 0)} CPU-ms in all, which leaves tusgate's server ${fmt(left, 0)} ms beside Ceph and the client (it used ${fmt(of('tusgate', 'serverCpuMs'), 0)}` +
    (c.ratio >= 0.8
      ? ').'
      : of('tusgate', 'serverCpuMs') > left
        ? `: more than the ${cores} cores leave it, so here CPU is the limit).`
        : ': the cores leave room, so what is missing is time, not CPU: the requests before the first byte reaches S3 and the waits between them).')
  );
}

/**
 * What the hop measured in this run says about the 0.8x target: the hop with the `.info` is
 * what any tus server that keeps S3Store's layout must at least do on this machine.
 */
function hopSentence(result: S3Result): string {
  const cpu = (c: S3Case, p: S3Path) => median(c.runs.filter((r) => r.path === p).map((r) => r.serverCpuMs ?? Number.NaN));
  const each = result.cases.map(
    (c) =>
      `${c.label} ${fmt(c.stored.hop / c.stored.putobject, 2)}x PutObject without the \`.info\` and ${fmt(c.stored['hop-record'] / c.stored.putobject, 2)}x with it (its server: ${fmt(cpu(c, 'hop-record'), 0)} CPU-ms, tusgate's ${fmt(cpu(c, 'tusgate'), 0)}), tusgate ${fmt(c.ratioToHop, 2)}x the hop with the \`.info\``,
  );
  const short = result.cases.filter((c) => c.stored['hop-record'] / c.stored.putobject < 0.8);
  const verdictText =
    short.length > 0
      ? `So on this machine even a server that writes the upload's record and forwards its bytes, with nothing else, stays under 0.8x of PutObject for ${short.map((c) => c.label).join(' and ')}: there the target is out of reach for a tus server that keeps S3Store's layout, and what tusgate can still gain is the gap to the hop.`
      : 'So the hop itself reaches 0.8x of PutObject here: what tusgate misses is its own work.';
  return `The http -> PutObject hop (test/bench/s3-hop-server.ts), measured in this run: ${each.join('; ')}. ${verdictText}`;
}

/** What the CPU columns say, following the numbers. */
function s3Reading(result: S3Result): string {
  const parts = [
    `CPU from /proc/<pid>/stat (10 ms ticks) of the server and of Ceph (the bench cluster's radosgw, ceph-osd and ceph-mon), and process.cpuUsage() of the client, from the start to every byte in S3.${result.loadAfter ? ` Load average at the end: ${result.loadAfter}.` : ''}`,
  ];
  for (const c of result.cases) parts.push(cpuBudget(c, result.cores));
  const behind = result.cases.filter((c) => c.ratio < 0.8);
  if (behind.length > 0) {
    parts.push(
      `Under 0.8x of PutObject: ${behind.map((c) => `${c.label} ${fmt(c.ratio, 2)}x (bare @tus/server + S3Store: ${fmt(c.stored.baseline / c.stored.putobject, 2)}x)`).join('; ')}. ` +
        'tusgate streams each part straight into UploadPart (storage/s3-part-writer.ts; the bare S3Store writes every part to a temporary file and reads it back), and an upload that fits one part goes to its object in one PutObject, as the baseline does; what is left is per upload: the POST (the `.info` object, then the state record), the client\'s round trip from the 201 to its PATCH, one ListObjectsV2 in the PATCH (asked while the gate reads the first bytes), and the hop through the server, on two cores shared with RGW, the client and whatever else the machine runs (see the load average). ' +
        'With several uploads at once, the finishes of the first ones (GetObject of the staged original, sha256, transcode, DeleteObjects) may run while the last ones are still arriving: in one traced run of 8 x 8 MiB, five of the eight downloads overlapped the last 200 ms of receiving; in two later ones, every download began after the last byte was in S3. ' +
        `${hopSentence(result)} ` +
        'tusgate\'s work per upload beyond the hop\'s: six S3 requests for an upload that fits one part (tusgate_s3_requests_total, checked by test/e2e/s3-staging.test.ts: the `.info` at creation; a listing and the object in the PATCH; the download, a listing and one DeleteObjects in the finish), about forty file operations (its state records, written atomically with fsync, the lock marks, the finish\'s temporary file and the artifact), the gate, and the finish. ' +
        'Multipart itself costs something on this RGW: the SDK alone, from memory, 64 MiB in 8 MiB parts took ~430 ms with two parts in flight against ~350 ms for one PutObject on the same RGW (0.82x; 0.62x one part at a time, about 1.0x with four in flight or 16 MiB parts), the ceiling of a server that stages in 8 MiB parts and waits for each part\'s answer before the next but one. tusgate keeps up to S3_PARTS_IN_FLIGHT (4) parts of an upload in flight: in two interleaved A/Bs of 16 rounds (two tusgate processes on one RGW, 1 x 64 MiB, started in both orders) four in flight gave 0.96x and 0.98x PutObject where two gave 0.90x and 0.92x. With several uploads at once the server\'s own CPU (the column above) competes with RGW\'s on these two cores. Measured with no gain on 8 x 8 MiB (interleaved A/Bs, 12 rounds, both orders): writing the `allowed` state record while the bytes flow to S3 instead of before (that fsync took 15 to 127 ms with eight at once; measured again later in two A/Bs of 8 rounds against the unchanged build as the other server on the same RGW, medians of the ratios within a round: 1.05x and 0.92x for 8 x 8 MiB, 1.22x and 1.03x for 1 x 64 MiB, so it was not kept), S3_STREAM_AFTER_BYTES at 256 KiB or 64 KiB (the UploadPart opens sooner, then takes longer: these two cores are busy either way), and writing the `.info` and the `pending` state record of a creation at once instead of one after the other (four runs of 8 rounds against the unchanged build as the other server on the same RGW, medians of the ratios within a round 1.00x, 1.09x, 1.02x and 0.98x for 8 x 8 MiB, 0.96x and 1.03x for 1 x 64 MiB). Without `Expect: 100-continue` (storage/s3-client.ts), which made the SDK open a connection of its own for every part and object of 2 MB or more and wait a round trip for RGW\'s 100, the time to in S3 was 0.92x and 0.97x for 8 x 8 MiB and 0.92x for 1 x 64 MiB in three interleaved A/Bs of 12 rounds (an earlier session\'s A/B had shown no gain). The PutObject baseline keeps the SDK\'s default. ' +
        'Not writing the `.info` at creation at all (the most that moving it out of the POST, to the first PATCH, could gain: a build that never wrote it against one that did, one A/B of 8 rounds) gave 1.05x for 8 x 8 MiB and 1.07x for 1 x 64 MiB, far from the gap to 0.8x; libuv\'s thread pool at 16 threads instead of 4 (UV_THREADPOOL_SIZE, for the state records\' file operations; one A/B of 8 rounds) 1.01x for both. ' +
        'A CPU profile of the two servers\' main threads over 12 rounds of 8 x 8 MiB (one process each, tusgate\'s finishes included): busy 6.6 s for tusgate and 2.5 s for the hop with the `.info`, about 43 ms more per upload, spread out: GC 0.68 s (the hop: 0.44), sha256 0.48 s (the finish), the AWS SDK\'s @smithy/core 0.52 s self (0.22; tusgate makes six requests an upload, the hop two), the file operations of the state records and the finish\'s temporary file (node:internal/fs/promises 1.25 s inclusive), @tus/server 0.28 s inclusive; the largest single item, writeBuffer (socket and file writes), is 0.97 s against the hop\'s 0.74. ' +
        'Measured once free page reporting no longer added its noise (test/bench/page-reporting.ts; the hop with the `.info` then reached 0.82-0.91x PutObject for 8 x 8 MiB in six runs, against 0.78-0.81x in the two full runs before): a timeline of tusgate\'s 8 x 8 MiB, from timestamps a scratch build wrote (three runs of 6 to 8 rounds; per round the median of the eight uploads, from the round\'s first POST), has the PATCH arriving at 39-40 ms, the gate\'s first verdict at 56-69, the `allowed` state record durable at 97-120 (the slowest of the eight at 181-206), the PutObject opened at 119-134 and answered at 238-258, and the last upload in S3 at 291-327 ms. That record write is 0.5-1.6 ms of disk time here (the same write by a separate process every 10 ms through a benchmark 5 run: medians per 5 s of 0.5-1.6 ms), so the rest is the wait of its ten or so file operations for tusgate\'s busy event loop. Three scratch builds, each in an interleaved A/B of 8 rounds as the second server on the same RGW (medians of the ratios within a round): no fsync at all, 1.13x for 8 x 8 MiB and 0.99x for 1 x 64 MiB (not taken: a state record must survive a power cut); the `allowed` record written while the bytes flow, with the last chunk held back until it is durable, 0.90x (slower: the record then took about 130 ms, and the last chunk waited for it); state reads reused under the lock, the two unlinks of a state write done at once and one kept directory handle for its fsync, 1.05x: the record was durable 40 ms sooner (the slowest upload\'s 110 ms sooner), but the last upload was in S3 no sooner (306 against 308 ms), because the PutObjects that began sooner took longer. So in this case the wait before the first byte reaches S3 is hidden behind the other uploads\' bytes, and the limit is the CPU of the whole path on two cores: what tusgate\'s server spends beyond the hop\'s (the CPU sentence above). ' +
        'Ceph alone (radosgw and its OSD) spends about as much CPU on tusgate\'s path as on PutObject\'s, so on two cores tusgate\'s path reaches 0.8x only if its server needs no more than what the CPU sentence of each case leaves it, and only if its requests leave no time unused. Where tusgate\'s CPU goes, measured during development: a POST costs 3.3 ms of server CPU with file staging (bare @tus/server + FileStore: 1.3 ms; strace counts about thirty file operations, each a trip through libuv\'s thread pool, for the state record, its index entry, the lock mark and the staging record) and 5.8 ms with S3 staging (the `.info` PutObject); a PATCH of a small upload about 11 ms beside its bytes (from rounds of 8 x 1 MiB: 22 ms an upload in all); and mark-compacts: `--trace-gc` showed two to three of them per 64 MiB, back to back, each freeing almost nothing, as in the slow mode of benchmark 1. A larger young generation did not change their number (`--max-semi-space-size=16`: the same two to three per 64 MiB). The chunks of a part are kept until the part is full (for a body that ends early) and were left to the collector; they are now freed once S3 acknowledged their part (storage/s3-part-writer.ts), which took the mark-compacts of eight 64 MiB uploads from 23 to 18 and the server CPU to in S3 down by about a tenth (two fresh processes each, 6 rounds: 8 x 8 MiB medians 460 and 480 ms against 490 and 540; 1 x 64 MiB 360 and 300 against 400 and 340). What started them was V8\'s limit for the old generation: after each mark-compact it allowed this small heap (about 26 MB live) only its minimum step, live + 8 MB (`--trace-incremental-marking`: "Start (allocation limit)" at 28 MB of a 36 MB limit), which the objects of the parts in flight (the SDK\'s request and its signing, the part\'s chunks), promoted through the 1 MiB young generation, filled within one upload. Since then the server sets V8\'s growing factor to 1 + HEAP_GROWING_PERCENT/100 (default 100, so 2) once it listens (server/heap-growing.ts): in interleaved A/Bs on one RGW (one process each, 12 rounds; the first two with the flag on node\'s command line against none, the third with HEAP_GROWING_PERCENT=0 against the default), the time to in S3 was 0.80x, 0.89x and 0.87x of V8\'s own rule for 1 x 64 MiB and 0.96x, 0.94x and 0.86x for 8 x 8 MiB, and the server\'s CPU per round (to the final response, the finish included) 79 to 88% of it; `--trace-gc` then showed at most one mark-compact per 64 MiB. The idle RSS and the peak of benchmark 8 did not grow (that benchmark, one run each: idle 88.4 against 86.6 MB with the factor set on node\'s command line, which is why it is set only after start-up; peak 222.9 against 227.8 MB).',
    );
  }
  const slower = result.cases.filter((c) => c.ratioToBaseline < 0.95);
  if (slower.length > 0) {
    parts.push(
      `tusgate is slower than the bare server in ${slower.map((c) => `${c.label} (${fmt(c.ratioToBaseline, 2)}x)`).join('; ')}: part of that is npm start's 1 MiB young generation (README, "Memory"), measured at about 5% on this path; the rest is tusgate's own work per request (the gate's state and records, logs) and run-to-run noise: across ten runs during development, tusgate/bare for 8 concurrent uploads ranged from 0.81x to 1.11x.`,
    );
  }
  return parts.join(' ');
}
