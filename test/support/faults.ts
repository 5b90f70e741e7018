/**
 * Helpers for test/e2e/faults.test.ts: a Redis of a test's own (to restart it without
 * disturbing the suite's), a PATCH that trickles its body under the test's control, the
 * server's resident memory, tus-js-client with every response recorded, and one sweep.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import * as tus from 'tus-js-client';
import { TUS } from './http.ts';
import { ROOT, freePort, tempDir } from './server.ts';

const run = promisify(execFile);

export const KiB = 1024;
export const MiB = 1024 * 1024;

export const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const idOf = (url: string): string => url.split('/').pop() ?? '';

/** Polls `probe` until it answers something other than undefined. */
export async function poll<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

// --- a Redis of the test's own -------------------------------------------------------

export interface OwnRedis {
  url: string;
  dir: string;
  /** `deploy/services/redis.sh restart`: the same port; with persistence `none` every key is gone. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function redisScript(action: 'start' | 'restart' | 'stop', dir: string, env: Record<string, string> = {}): Promise<void> {
  try {
    await run('bash', [path.join(ROOT, 'deploy', 'services', 'redis.sh'), action, dir], {
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`redis ${action} failed:\n${stderr ?? String(error)}`);
  }
}

/** A throw-away redis-server on a free loopback port (not the suite's shared one). */
export async function startOwnRedis(persistence: 'aof' | 'none'): Promise<OwnRedis> {
  const dir = path.join(tempDir('tusgate-faults-redis-'), 'redis');
  const port = await freePort();
  await redisScript('start', dir, { REDIS_PORT: String(port), REDIS_PERSISTENCE: persistence });
  const env = fs.readFileSync(path.join(dir, 'env'), 'utf8');
  const url = /REDIS_URL=(\S+)/.exec(env)?.[1];
  if (!url) throw new Error(`no REDIS_URL in ${dir}/env`);
  let stopped = false;
  return {
    url,
    dir,
    restart: () => redisScript('restart', dir),
    async stop() {
      if (stopped) return;
      stopped = true;
      await redisScript('stop', dir);
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    },
  };
}

// --- a PATCH whose body the test feeds -----------------------------------------------

export type TrickleEnd =
  | { kind: 'response'; at: number; status: number; headers: http.IncomingHttpHeaders; body: string }
  /** The connection ended without a response; `byUs` when the test cut it. */
  | { kind: 'closed'; at: number; byUs: boolean; error?: string };

export interface Trickle {
  /** Body bytes handed to the socket so far. */
  readonly sent: number;
  readonly startedAt: number;
  /** Settles when the server answers or the connection ends, whichever comes first. */
  readonly ended: Promise<TrickleEnd>;
  /** The end, once there is one. */
  readonly end: TrickleEnd | undefined;
  /** Stops the timer and writes the rest of the body at once. */
  sendRest(): void;
  /** Stops the timer (the connection stays open, silent). */
  pause(): void;
  /** Cuts the connection from the client's side (a phone losing its network). */
  cut(): void;
}

/**
 * A PATCH declaring `Content-Length: body.length` that writes `chunkBytes` of `body` every
 * `everyMs`, until the body is sent, the server answers or closes, or the test intervenes.
 */
export function tricklePatch(url: string, offset: number, body: Buffer, chunkBytes: number, everyMs: number): Trickle {
  const startedAt = Date.now();
  let sent = 0;
  let end: TrickleEnd | undefined;
  let cutByUs = false;
  let timer: NodeJS.Timeout | undefined;
  let settle!: (value: TrickleEnd) => void;
  const ended = new Promise<TrickleEnd>((resolve) => {
    settle = resolve;
  });
  const finish = (value: TrickleEnd) => {
    if (end) return;
    end = value;
    clearInterval(timer);
    settle(value);
  };
  const req = http.request(url, {
    method: 'PATCH',
    agent: false,
    headers: {
      ...TUS,
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      'Content-Length': String(body.length),
    },
  });
  let answered = false;
  req.on('response', (res) => {
    answered = true;
    clearInterval(timer);
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    const done = () =>
      finish({ kind: 'response', at: Date.now(), status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
    res.on('end', done);
    res.on('error', done);
    res.on('close', done);
  });
  // once the server has answered, the response's own events tell the end
  req.on('error', (error) => {
    if (!answered) finish({ kind: 'closed', at: Date.now(), byUs: cutByUs, error: error.message });
  });
  req.on('close', () => {
    if (!answered) finish({ kind: 'closed', at: Date.now(), byUs: cutByUs });
  });
  const writeNext = () => {
    if (end || req.destroyed) return;
    const piece = body.subarray(sent, sent + chunkBytes);
    sent += piece.length;
    req.write(piece);
    if (sent >= body.length) {
      clearInterval(timer);
      req.end();
    }
  };
  req.flushHeaders();
  writeNext();
  timer = setInterval(writeNext, everyMs);
  return {
    get sent() {
      return sent;
    },
    startedAt,
    ended,
    get end() {
      return end;
    },
    sendRest() {
      clearInterval(timer);
      if (end || req.destroyed || sent >= body.length) return;
      const rest = body.subarray(sent);
      sent = body.length;
      req.end(rest);
    },
    pause() {
      clearInterval(timer);
    },
    cut() {
      clearInterval(timer);
      if (end) return;
      cutByUs = true;
      req.destroy();
    },
  };
}

/** The resident set of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (!kib) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) * 1024;
}

// --- tus-js-client with every response recorded ---------------------------------------

export interface RecordedOutcome {
  ok: boolean;
  url: string | null;
  /** The last response's status and parsed body. */
  status: number | null;
  body: unknown;
  error?: Error;
  /** Every response the client received, in order: `METHOD status`. */
  responses: Array<{ method: string; status: number }>;
}

export interface RecordedOptions {
  uploadUrl?: string;
  chunkSize?: number;
  retryDelays?: number[];
  onUploadUrlAvailable?: (url: string) => void;
}

function parse(text: string | undefined): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Uploads `data` with tus-js-client, recording every response. With `endpoint` null the
 * client can only resume `options.uploadUrl`: a failed HEAD then counts as an error (and is
 * retried) instead of silently starting a new upload, as tus-js-client does with an endpoint.
 */
export function uploadRecorded(endpoint: string | null, data: Buffer, options: RecordedOptions = {}): Promise<RecordedOutcome> {
  const responses: RecordedOutcome['responses'] = [];
  return new Promise((resolve) => {
    const client = new tus.Upload(data, {
      endpoint: endpoint ?? undefined,
      uploadUrl: options.uploadUrl,
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      retryDelays: options.retryDelays ?? [],
      metadata: { filename: 'photo.jpg', filetype: 'image/jpeg' },
      onAfterResponse: (req, res) => {
        responses.push({ method: req.getMethod(), status: res.getStatus() });
      },
      onUploadUrlAvailable: () => {
        if (client.url) options.onUploadUrlAvailable?.(client.url);
      },
      onSuccess: ({ lastResponse }) =>
        resolve({ ok: true, url: client.url, status: lastResponse.getStatus(), body: parse(lastResponse.getBody()), responses }),
      onError: (error) => {
        const response = error instanceof tus.DetailedError ? error.originalResponse : null;
        resolve({ ok: false, url: client.url, status: response?.getStatus() ?? null, body: parse(response?.getBody()), error, responses });
      },
    });
    client.start();
  });
}

// --- one sweep -----------------------------------------------------------------------

/** What `npm run sweep` printed last: its result line (server/sweep.ts), parsed; {} when there is none. */
export function sweepResult(stdout: string): unknown {
  return JSON.parse(stdout.trim().split('\n').at(-1) || '{}');
}

/** `npm run sweep` with a server's environment; resolves with its exit code and output. */
export function runSweep(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'sweep'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// --- what S3 really holds of an upload ------------------------------------------------

/** Bytes of an unfinished upload staged in S3: its multipart upload's parts plus the `.part` object of an incomplete part. */
export async function s3StagedBytes(s3: S3Client, bucket: string, id: string): Promise<number> {
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: id }));
  const multipart = (uploads.Uploads ?? []).find((upload) => upload.Key === id);
  if (!multipart?.UploadId) throw new Error(`no multipart upload for ${id} in ${bucket}`);
  let bytes = 0;
  let marker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: id, UploadId: multipart.UploadId, PartNumberMarker: marker }));
    for (const part of page.Parts ?? []) bytes += part.Size ?? 0;
    if (!page.IsTruncated) break;
    marker = page.NextPartNumberMarker;
  }
  try {
    const incomplete = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${id}.part` }));
    bytes += incomplete.ContentLength ?? 0;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw error;
  }
  return bytes;
}
