/**
 * Vitest global setup (and the bench's benchmarks 5 and 6): the real services the suite
 * needs, started once per run on loopback by the project's own scripts (which install
 * Debian's packages when missing), and stopped at the end, also on failure. A service that
 * cannot start fails the run.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { ROOT, build, freePort, tempDir } from './server.ts';

const run = promisify(execFile);

export interface Services {
  s3: {
    endpoint: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  redisUrl: string;
  /** Scratch root for per-test nginx instances. */
  scratch: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Services;
    /** The Chromium the browser tests drive (Debian's, installed by deploy/services/chromium.sh). */
    chromium: string;
  }
}

function readEnv(file: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

async function service(name: string, action: 'start' | 'stop', dir: string, env: Record<string, string> = {}): Promise<void> {
  const script = path.join(ROOT, 'deploy', 'services', `${name}.sh`);
  try {
    await run('bash', [script, action, dir], { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`${name} ${action} failed:\n${stderr ?? String(error)}`);
  }
}

export interface Backends {
  services: Services;
  /** Stops Ceph RGW and Redis and removes their scratch root (safe to call twice). */
  stop(): Promise<void>;
}

/**
 * Ceph RGW and Redis on free loopback ports, under a fresh scratch root, installed from
 * Debian's packages when missing. Used by the test suite's global setup and by the bench.
 */
export async function startBackends(memstoreBytes = 6 * 1024 ** 3): Promise<Backends> {
  const root = tempDir('tusgate-services-');
  const cephDir = path.join(root, 'ceph');
  const redisDir = path.join(root, 'redis');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled([service('ceph-rgw', 'stop', cephDir), service('redis', 'stop', redisDir)]);
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    const [rgwPort, redisPort] = [await freePort(), await freePort()];
    // installs (apt) must not run twice at once: start one after the other
    await service('redis', 'start', redisDir, { REDIS_PORT: String(redisPort) });
    await service('ceph-rgw', 'start', cephDir, { RGW_PORT: String(rgwPort), CEPH_MEMSTORE_BYTES: String(memstoreBytes) });
    const s3env = readEnv(path.join(cephDir, 'env'));
    const redisEnv = readEnv(path.join(redisDir, 'env'));
    const services: Services = {
      s3: {
        endpoint: s3env.S3_ENDPOINT ?? '',
        region: s3env.S3_REGION ?? 'us-east-1',
        accessKeyId: s3env.AWS_ACCESS_KEY_ID ?? '',
        secretAccessKey: s3env.AWS_SECRET_ACCESS_KEY ?? '',
      },
      redisUrl: redisEnv.REDIS_URL ?? '',
      scratch: root,
    };
    // prove the S3 server answers before anything relies on it
    await s3Client(services).send(new CreateBucketCommand({ Bucket: 'tusgate-probe' }));
    return { services, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  build(); // every server the tests start runs the build, as npm start does
  const backends = await startBackends();
  project.provide('services', backends.services);
  try {
    // after the other installs: apt must not run twice at once
    const { stdout } = await run('bash', [path.join(ROOT, 'deploy', 'services', 'chromium.sh'), 'ensure'], { maxBuffer: 1024 * 1024, timeout: 600_000 });
    project.provide('chromium', stdout.trim().split('\n').at(-1) ?? '');
  } catch (error) {
    await backends.stop();
    const { stderr } = error as { stderr?: string };
    throw new Error(`chromium ensure failed:\n${stderr ?? String(error)}`);
  }
  return backends.stop;
}

export function s3Client(services: Services): S3Client {
  return new S3Client({
    endpoint: services.s3.endpoint,
    region: services.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createBuckets(s3: S3Client, ...buckets: string[]): Promise<void> {
  for (const bucket of buckets) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

/** Deletes every object and aborts every multipart upload in a bucket (RGW's memstore keeps them in RAM). */
export async function emptyBucket(s3: S3Client, bucket: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
    const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
    if (keys.length === 0) break;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    removed += keys.length;
  }
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const upload of uploads.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
  }
  return removed;
}

/** The environment that points a tusgate server at the test S3 server (and Redis, when asked). */
export function s3Env(services: Services, buckets: { staging?: string; public?: string }, redis = true): Record<string, string> {
  return {
    S3_ENDPOINT: services.s3.endpoint,
    S3_REGION: services.s3.region,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: services.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.s3.secretAccessKey,
    ...(buckets.staging ? { TUS_STORE: 's3', S3_BUCKET: buckets.staging, S3_PART_SIZE: String(5 * 1024 * 1024) } : {}),
    ...(buckets.public
      ? { PUBLIC_STORE: 's3', PUBLIC_S3_BUCKET: buckets.public, PUBLIC_S3_KEY_PREFIX: 'media/', PUBLIC_BASE_URL: `${services.s3.endpoint}/${buckets.public}/media` }
      : {}),
    ...(redis ? { REDIS_URL: services.redisUrl, REDIS_KEY_PREFIX: `t${Math.random().toString(36).slice(2, 8)}:` } : {}),
  };
}

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

/** nginx in front of the given tusgate ports (round robin), from deploy/nginx/tusgate.conf.template. */
export async function startNginx(services: Services, upstreamPorts: number[]): Promise<Nginx> {
  const dir = path.join(services.scratch, `nginx-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`);
  const port = await freePort();
  await service('nginx', 'start', dir, { NGINX_PORT: String(port), UPSTREAMS: upstreamPorts.map((p) => `127.0.0.1:${p}`).join(',') });
  return { url: `http://127.0.0.1:${port}`, stop: () => service('nginx', 'stop', dir) };
}

/** Deletes every key under `prefix` in the suite's Redis (a test file's own keys: Redis outlives a run). */
export async function clearRedisPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
