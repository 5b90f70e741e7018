/**
 * Benchmark 6: several instances. tusgate in its multi-instance configuration (S3 staging
 * and public stores on the same RGW, shared state in Redis, TRUST_PROXY) measured three
 * ways with the same concurrent uploads: one instance direct, the same instance behind
 * nginx (the proxy's own cost), and two instances behind nginx (round robin).
 * Timed end to end, to the last final response: receive, finish and publish, which is the
 * work that spreads over the instances. Which instance finished each upload comes from the
 * instances' `upload received` log lines.
 */
import path from 'node:path';
import { createBuckets, emptyBucket, s3Client, s3Env, startNginx, type Nginx, type Services } from '../support/services.ts';
import { tusUpload } from './clients.ts';
import { imageBuffer } from './payloads.ts';
import { S3_PART_SIZE } from './s3.ts';
import { MiB, startTusgate, type Target } from './servers.ts';
import { countStatuses, fmt, MB, median } from './stats.ts';
import { mdTable, type SummaryRow } from './table.ts';

export type Setup = 'one direct' | 'one via nginx' | 'two via nginx';

export interface InstanceRun {
  setup: Setup;
  round: number;
  bytes: number;
  /** ms to the last final response. */
  msDone: number;
  /** ms to the last `upload received` line (every byte in S3), null if a line is missing. */
  msStored: number | null;
  statuses: string;
  /** Uploads received by instance A and B. */
  perInstance: [number, number];
}

export interface InstancesResult {
  rounds: number;
  uploads: number;
  size: number;
  runs: InstanceRun[];
  /** Median MB/s to the last final response, per setup. */
  done: Record<Setup, number>;
  /** two via nginx / one direct. */
  ratio: number;
}

const SETUPS: readonly Setup[] = ['one direct', 'one via nginx', 'two via nginx'];

async function oneRun(endpoint: string, instances: [Target, Target], payload: Buffer, uploads: number): Promise<Omit<InstanceRun, 'setup' | 'round'>> {
  const seen = instances.map((t) => t.logs.length);
  const startedWall = Date.now();
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: uploads }, () => tusUpload(endpoint, payload)));
  const msDone = Math.max(...results.map((r) => r.endedAt)) - started;
  const received = instances.map((t, i) => t.logs.slice(seen[i]).filter((line) => line.msg === 'upload received'));
  const all = received.flat();
  return {
    bytes: payload.length * uploads,
    msDone,
    msStored: all.length === uploads ? Math.max(...all.map((line) => Date.parse(String(line.time)))) - startedWall : null,
    statuses: countStatuses(results.map((r) => r.status ?? r.error ?? 'error')),
    perInstance: [received[0]?.length ?? 0, received[1]?.length ?? 0],
  };
}

export async function instancesBench(workDir: string, services: Services, rounds: number, log: (line: string) => void): Promise<InstancesResult> {
  const s3 = s3Client(services);
  const tag = Date.now().toString(36);
  const buckets = { staging: `bench-multi-stage-${tag}`, public: `bench-multi-public-${tag}` };
  await createBuckets(s3, buckets.staging, buckets.public);
  const env = {
    ...s3Env(services, {}, false),
    TUS_STORE: 's3',
    S3_BUCKET: buckets.staging,
    S3_PART_SIZE: String(S3_PART_SIZE),
    PUBLIC_STORE: 's3',
    PUBLIC_S3_BUCKET: buckets.public,
    PUBLIC_BASE_URL: `${services.s3.endpoint}/${buckets.public}`,
    REDIS_URL: services.redisUrl,
    REDIS_KEY_PREFIX: `bench-${tag}:`,
    TRUST_PROXY: 'true',
    TRANSCODE_CONCURRENCY: '2',
  };
  const a = await startTusgate(path.join(workDir, 'instance-a'), env);
  const b = await startTusgate(path.join(workDir, 'instance-b'), env);
  const port = (t: Target) => Number(new URL(t.endpoint).port);
  const proxies: Nginx[] = [];
  const settle = async () => {
    for (const bucket of Object.values(buckets)) await emptyBucket(s3, bucket);
  };
  try {
    proxies.push(await startNginx(services, [port(a)]), await startNginx(services, [port(a), port(b)]));
    const endpoints: Record<Setup, string> = {
      'one direct': a.endpoint,
      'one via nginx': `${proxies[0]!.url}/files/`,
      'two via nginx': `${proxies[1]!.url}/files/`,
    };
    const uploads = 8;
    const size = 16 * MiB;
    // warm-up (not counted): every path once
    const warm = await imageBuffer(4 * MiB);
    for (const setup of SETUPS) await oneRun(endpoints[setup], [a, b], warm, 4);
    await settle();

    const payload = await imageBuffer(size);
    const runs: InstanceRun[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const setup of SETUPS) {
        const run: InstanceRun = { setup, round, ...(await oneRun(endpoints[setup], [a, b], payload, uploads)) };
        runs.push(run);
        log(
          `  round ${round} ${setup.padEnd(13)} final responses ${fmt(run.bytes / MB / (run.msDone / 1000))} MB/s (${fmt(run.msDone, 0)} ms), in S3 after ${fmt(run.msStored, 0)} ms, received by A/B ${run.perInstance.join('/')} [${run.statuses}]`,
        );
        await settle();
      }
    }
    const done = Object.fromEntries(
      SETUPS.map((setup) => [setup, median(runs.filter((r) => r.setup === setup).map((r) => r.bytes / MB / (r.msDone / 1000)))]),
    ) as Record<Setup, number>;
    return { rounds, uploads, size, runs, done, ratio: done['two via nginx'] / done['one direct'] };
  } finally {
    await Promise.allSettled(proxies.map((proxy) => proxy.stop()));
    await a.stop();
    await b.stop();
    await settle().catch(() => {});
  }
}

export function instancesRows(result: InstancesResult): SummaryRow[] {
  return [
    {
      benchmark: `6 instances, ${result.uploads} x ${fmt(result.size / MiB, 0)} MiB concurrently`,
      metric: 'median MB/s to the last final response',
      tusgate: `${fmt(result.done['two via nginx'])} (two via nginx)`,
      baseline: `${fmt(result.done['one direct'])} (one direct)`,
      ratio: `${fmt(result.ratio, 3)}x`,
      target: 'none (reported)',
      result: 'info',
    },
  ];
}

export function instancesSection(result: InstancesResult): string {
  const share = (setup: Setup) => {
    const runs = result.runs.filter((r) => r.setup === setup);
    return `${runs.reduce((n, r) => n + r.perInstance[0], 0)}/${runs.reduce((n, r) => n + r.perInstance[1], 0)}`;
  };
  const stored = (setup: Setup) =>
    median(result.runs.filter((r) => r.setup === setup && r.msStored !== null).map((r) => r.bytes / MB / ((r.msStored as number) / 1000)));
  return [
    '## 6. Several instances: two behind nginx vs one direct',
    '',
    [
      '- **Configuration** (every instance): TUS_STORE=s3 and PUBLIC_STORE=s3 on the benchmark 5 RGW, REDIS_URL on a throw-away redis-server (deploy/services/redis.sh), TRUST_PROXY=true, TRANSCODE_CONCURRENCY=2. This is the configuration several instances need; "one direct" runs it too, so only the number of instances and the proxy differ.',
      '- **nginx**: deploy/nginx/tusgate.conf.template rendered by deploy/services/nginx.sh (round robin, no buffering, keep-alive to the upstreams, 2 workers).',
      `- **Load**: ${result.uploads} concurrent tus-js-client uploads of ${fmt(result.size / MiB, 0)} MiB (POST + one PATCH each), timed to the last final response: receive into S3, finish (download, sha256, transcode, publish to S3) and response. "in S3" is the last \`upload received\` line.`,
      `- **Order**: one warm-up per setup (4 x 4 MiB, not counted), then one direct, one via nginx, two via nginx, ... interleaved, ${result.rounds} rounds. Medians.`,
      '- Everything (client, nginx, both instances, RGW, Redis) shares the same two cores: a second instance adds no CPU here, only a second event loop. On real hardware each instance brings its own.',
    ].join('\n'),
    '',
    mdTable(
      ['setup', 'median MB/s to last final response', 'median MB/s to every byte in S3', 'ratio to one direct', 'uploads received by A/B (all rounds)'],
      SETUPS.map((setup) => [setup, fmt(result.done[setup]), fmt(stored(setup)), `${fmt(result.done[setup] / result.done['one direct'], 3)}x`, share(setup)]),
    ),
    '',
    instancesReading(result),
    '',
    'Raw runs:',
    '',
    mdTable(
      ['round', 'setup', 'bytes', 'ms to last final response', 'ms to in S3', 'received by A/B', 'statuses'],
      result.runs.map((r) => [r.round, r.setup, r.bytes, fmt(r.msDone, 0), fmt(r.msStored, 0), r.perInstance.join('/'), r.statuses]),
    ),
    '',
  ].join('\n');
}

/** What the three setups say, following the numbers. */
function instancesReading(result: InstancesResult): string {
  const { done } = result;
  const proxy = done['one via nginx'] / done['one direct'];
  const second = done['two via nginx'] / done['one via nginx'];
  return (
    `nginx in front of one instance gives ${fmt(proxy, 3)}x of the direct throughput; a second instance behind it gives ${fmt(second, 3)}x of one instance behind it. ` +
    (second < 1.1
      ? 'With every process on the same two cores a second instance has no CPU of its own to bring, so this measures what running several instances costs (the proxy hop, shared state in Redis, finish claims), not the scaling they give on separate machines; the round robin did spread the uploads (see the A/B column).'
      : 'The second instance adds throughput even on shared cores.')
  );
}
