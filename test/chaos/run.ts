/**
 * `npm run chaos`: uploads under faults. N tusgate instances (S3 staging and public store on
 * Ceph RGW, shared state in a Redis of the run's own) behind nginx; M real tus-js-client
 * uploads of distinct JPEGs and PNGs, several at a time, cut at random progress points and
 * resumed; meanwhile Redis is restarted and instances are SIGKILLed and replaced at random
 * moments. Then, faults stopped, every upload is checked (verify.ts) and the counts printed.
 * Exit 1 on any failure or wrong bytes. Loopback only; bounded in count and time; everything
 * it starts is stopped at the end, also on failure or Ctrl-C.
 *
 *   npm run chaos
 *   CHAOS_UPLOADS=12 npm run chaos
 *   npm run chaos -- --seed 123 --instances 2 --uploads 20
 *
 * Settings (flag / environment, default): --seed / CHAOS_SEED (from the clock, printed),
 * --instances / CHAOS_INSTANCES (3), --uploads / CHAOS_UPLOADS (40), --concurrency /
 * CHAOS_CONCURRENCY (8), --deadline / CHAOS_DEADLINE_S (360), --fault-gap-min/-max /
 * CHAOS_FAULT_GAP_MIN_S/MAX_S (3, 8), --max-faults / CHAOS_MAX_FAULTS (80), --stall /
 * CHAOS_STALL_S (90). When the run fails, the instances' logs and the client traces are
 * written to a file in the temp dir (its path is printed); CHAOS_KEEP_LOGS=1 writes it always.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { s3Client, s3Env, startBackends, type Backends, type Nginx } from '../support/services.ts';
import { tempDir } from '../support/server.ts';
import { createRunBuckets, inventory, removeRunBuckets, type Buckets, type Inventory } from './buckets.ts';
import { newRecord, RETRY_DELAYS, runUpload, type ClientRecord } from './client.ts';
import { Instances, nginxErrorLog, OwnRedis, startProxy } from './cluster.ts';
import { describeConfig, readConfig, type ChaosConfig } from './config.ts';
import { startFaults, type FaultLoop } from './faults.ts';
import { buildReport } from './report.ts';
import { rng } from './rng.ts';
import { formatLine } from './serverlog.ts';
import { LONG_EDGE, verify, type Verdict } from './verify.ts';
import { makeWorkload } from './workload.ts';

const log = (line: string) => process.stdout.write(`${line}\n`);

// the AWS SDK's notice that it will want Node 22 says nothing about this run
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (!`${warning.name} ${warning.message}`.includes('NodeVersionSupportWarning')) process.stderr.write(`${warning.name}: ${warning.message}\n`);
});
const seconds = (since: number) => (performance.now() - since) / 1000;

/** Runs `work` over `items`, `limit` at a time, in order of the list. */
async function pool<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function configOrExit(): ChaosConfig {
  try {
    return readConfig(process.argv.slice(2), process.env);
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
    process.exit(2);
  }
}
const config = configOrExit();
/** Setup (Ceph, images), the upload phase, and the checks, with room: past this the run stops, cleans up and exits 1. */
const TIME_LIMIT_MS = (config.deadlineS + 15 * 60) * 1000;
const CHECK_TIME_MS = 5 * 60 * 1000;

const root = tempDir('tusgate-chaos-');
const tag = `${Date.now().toString(36)}-${config.seed}`;
const buckets: Buckets = { staging: `chaos-stage-${tag}`, public: `chaos-public-${tag}` };
let backends: Backends | undefined;
let bucketsMade = false;
let redis: OwnRedis | undefined;
let instances: Instances | undefined;
let nginx: Nginx | undefined;
let faults: FaultLoop | undefined;
let cleaned = false;

async function cleanUp(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await faults?.stop().catch(() => {});
  await instances?.stop().catch(() => {});
  await nginx?.stop().catch(() => {});
  await redis?.stop().catch(() => {});
  if (backends && bucketsMade) await removeRunBuckets(s3Client(backends.services), buckets).catch(() => {});
  await backends?.stop().catch(() => {});
  fs.rmSync(root, { recursive: true, force: true });
}

// Ctrl-C reaches this process twice (from the terminal, and relayed by tsx): the first
// starts the cleanup, the others must not cut it short.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (cleaned) return log(`${signal}: still cleaning up`);
    log(`\n${signal}: stopping everything the run started`);
    void cleanUp().finally(() => process.exit(130));
  });
}

const watchdog = setTimeout(() => {
  log(`\nthe chaos run went past ${TIME_LIMIT_MS / 60_000} minutes: stopping (something hangs; see the lines above)`);
  void cleanUp().finally(() => process.exit(1));
}, TIME_LIMIT_MS);
watchdog.unref();

function writeDump(records: ClientRecord[], verdicts: Verdict[]): string {
  const file = path.join(os.tmpdir(), `tusgate-chaos-${tag}.log`);
  const lines: string[] = [`tusgate chaos run, ${describeConfig(config)}`, ''];
  records.forEach((rec, i) => {
    lines.push(`== ${rec.plan.label} ${rec.url ?? '(no url)'} ${verdicts[i]?.outcome ?? 'unchecked'}`, ...rec.trace.map((t) => `  ${t}`));
    const check = verdicts[i]?.check;
    if (check) lines.push('  -- check --', ...check.trace.map((t) => `  ${t}`));
  });
  lines.push('', '== server logs (all instances, by time; i<slot>.<generation>)');
  for (const tagged of instances?.logs() ?? []) lines.push(formatLine(tagged));
  if (backends) lines.push('', '== nginx error.log', ...nginxErrorLog(backends.services));
  for (const slot of instances?.slots ?? []) {
    slot.generations.forEach((server, generation) => {
      if (server.stderr().trim()) lines.push('', `== stderr of i${slot.index}.${generation}`, server.stderr());
    });
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function main(): Promise<boolean> {
  const started = performance.now();
  const seed = rng(config.seed);
  log(`tusgate chaos run: ${describeConfig(config)}`);
  log(`${os.cpus().length} cores, Node ${process.versions.node}, scratch ${root}`);

  const plans = await makeWorkload(config.uploads, seed.fork('workload'), log);
  log('starting Ceph RGW (deploy/services; installs Debian packages when missing)');
  backends = await startBackends(3 * 1024 ** 3);
  const { services } = backends;
  const s3 = s3Client(services);
  const publicReadable = await createRunBuckets(s3, buckets);
  bucketsMade = true;
  redis = await OwnRedis.start(path.join(root, 'redis'));
  log(`redis of the run at ${redis.url} (AOF); buckets ${buckets.staging}, ${buckets.public}${publicReadable ? ' (world-readable)' : ' (artifacts read with GetObject)'}`);
  const env = {
    ...s3Env(services, { staging: buckets.staging, public: buckets.public }),
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `chaos-${tag}:`,
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'info',
    OUTPUT_LONG_EDGE: String(LONG_EDGE),
  };
  instances = await Instances.start(config.instances, env);
  nginx = await startProxy(services, instances);
  log(`${config.instances} instances on ports ${instances.slots.map((s) => s.port).join(', ')} behind nginx at ${nginx.url}`);
  const setupS = seconds(started);

  // the upload phase, with faults
  const clock = performance.now();
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(), config.deadlineS * 1000);
  faults = startFaults({
    rng: seed.fork('faults'),
    redis,
    instances,
    gapMinMs: config.faultGapMinS * 1000,
    gapMaxMs: config.faultGapMaxS * 1000,
    maxFaults: config.maxFaults,
    started: clock,
    log,
  });
  log(`\nuploading ${plans.length} images through ${nginx.url}/files/ with faults`);
  const endpoint = `${nginx.url}/files/`;
  const records = plans.map((plan) => newRecord(plan));
  let finished = 0;
  await pool(records, config.concurrency, async (rec) => {
    if (deadline.signal.aborted) return rec;
    await runUpload(rec, { endpoint, clock, deadline: deadline.signal, stallMs: config.stallS * 1000, retryDelays: RETRY_DELAYS, rng: seed.fork(`client-${rec.plan.index}`) });
    finished += 1;
    log(
      `  [upload  ${String(Math.round(performance.now() - clock)).padStart(7)} ms] ${String(finished).padStart(3)}/${records.length} ${rec.plan.label} ${rec.end}${rec.error ? ` (${rec.error})` : ''}: cuts ${rec.cuts.abort + rec.cuts.raw}, retries ${rec.retries}, 5xx ${rec.fiveXX.length}`,
    );
    return rec;
  });
  clearTimeout(deadlineTimer);
  await faults.stop();
  const uploadsS = seconds(clock);
  log(`upload phase over after ${uploadsS.toFixed(0)} s, ${faults.events.length} faults; checking every upload (faults stopped)`);

  // the checks, every instance up
  const harnessProblems = [...faults.problems];
  for (const slot of instances.slots) {
    if (slot.current) continue;
    try {
      await instances.replace(slot);
    } catch (error) {
      harnessProblems.push(`before the checks: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const checkClock = performance.now();
  const checkDeadline = AbortSignal.timeout(CHECK_TIME_MS);
  const verdicts = await pool(records, 8, (rec) =>
    verify(
      { proxy: nginx?.url ?? '', s3, s3Endpoint: services.s3.endpoint, publicBucket: buckets.public, client: { clock, deadline: checkDeadline, stallMs: config.stallS * 1000, retryDelays: [500, 1000, 2000, 3000, 5000, 5000], rng: seed.fork('checks') } },
      rec,
    ).catch((error: unknown): Verdict => ({ outcome: 'failure', reasons: [`the check itself failed: ${error instanceof Error ? error.message : String(error)}`], wrongBytes: false })),
  );
  const checksS = seconds(checkClock);
  let stock: Inventory | null = null;
  try {
    stock = await inventory(s3, buckets);
  } catch (error) {
    harnessProblems.push(`listing the buckets failed: ${error instanceof Error ? error.message : String(error)}`);
  }

  const report = buildReport({
    config,
    records,
    verdicts,
    faults: faults.events,
    harnessProblems,
    notes: faults.notes,
    inventory: stock,
    logs: instances.logs(),
    stderrs: instances.stderrs(),
    nginxErrors: nginxErrorLog(services),
    seconds: { setup: setupS, uploads: uploadsS, checks: checksS, total: seconds(started) },
  });
  log(report.text);
  if (!report.ok || process.env.CHAOS_KEEP_LOGS === '1') log(`\nclient traces and every server log line: ${writeDump(records, verdicts)}`);
  return report.ok;
}

let ok = false;
try {
  ok = await main();
} catch (error) {
  log(`\nchaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  clearTimeout(watchdog);
  await cleanUp();
}
process.exitCode = ok ? 0 : 1;
