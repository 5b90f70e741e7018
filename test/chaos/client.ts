/**
 * One upload as a client under faults sees it: the real tus-js-client through nginx, with
 * long retry delays, cut at planned progress points (abort(), then a new Upload from the same
 * URL; sometimes also a raw PATCH cut mid-body in between), watched for hangs, and every
 * response recorded (statuses, 5xx with their request ids, offsets that cannot be true).
 *
 * One departure from stock tus-js-client: once the upload has a URL, the client's endpoint
 * is removed, so that a HEAD answering 404/410 (the server lost the upload) ends the upload
 * with that error instead of silently creating a new upload and starting from byte 0.
 */
import http from 'node:http';
import * as tus from 'tus-js-client';
import { cutPatch, errorCodeOf, headUpload, parseJson } from './http.ts';
import type { Rng } from './rng.ts';
import type { Cut, UploadPlan } from './workload.ts';

export const RETRY_DELAYS: readonly number[] = [200, 500, 1000, 2000, 3000, 5000, 5000, 5000, 5000];

export interface FiveXX {
  method: string;
  status: number;
  /** X-Request-Id of the response (tusgate sets it; nginx's own 502s have none). */
  requestId: string | null;
  /** ms since the run's clock started. */
  at: number;
}

export interface Stall {
  at: number;
  /** server: a request without a response; client: a response whose body never ended (tus-js-client's Node stack then waits forever), or no request in flight. */
  side: 'server' | 'client';
  detail: string;
}

export interface ClientRecord {
  plan: UploadPlan;
  /** The upload URL, once created. */
  url: string | null;
  end: 'success' | 'error' | 'deadline' | 'not-started';
  /** The last response's status and body (the 200/201 with the artifact, or the error). */
  status: number | null;
  body: unknown;
  error?: string;
  /** "METHOD status" (or "METHOD network-error") -> count. */
  statuses: Map<string, number>;
  fiveXX: FiveXX[];
  networkErrors: number;
  retries: number;
  cuts: { abort: number; raw: number };
  stalls: Stall[];
  /** Offsets the server answered that cannot be true (beyond the size, not a number). */
  offsetProblems: string[];
  /** A HEAD that answered less than a PATCH had acknowledged: acknowledged bytes lost (tus-js-client re-sends them). `trace`: where in the trace. */
  ackLost: { text: string; trace: number }[];
  /** The highest offset a PATCH response acknowledged. */
  acknowledged: number;
  /** What happened, in order, with ms since the run's clock started. */
  trace: string[];
  startedAt: number;
  endedAt: number;
}

export interface ClientContext {
  endpoint: string;
  /** The run's clock (performance.now() at the upload phase's start). */
  clock: number;
  /** Aborted at the upload phase's deadline. */
  deadline: AbortSignal;
  stallMs: number;
  retryDelays: readonly number[];
  rng: Rng;
}

type SegmentEnd =
  | { kind: 'success'; status: number; body: unknown }
  | { kind: 'error'; status: number | null; body: unknown; message: string }
  | { kind: 'cut'; cut: Cut }
  | { kind: 'stall' }
  | { kind: 'deadline' };

const MAX_TRACE = 300;

export function newRecord(plan: UploadPlan, url: string | null = null): ClientRecord {
  return {
    plan,
    url,
    end: 'not-started',
    status: null,
    body: null,
    statuses: new Map(),
    fiveXX: [],
    networkErrors: 0,
    retries: 0,
    cuts: { abort: 0, raw: 0 },
    stalls: [],
    offsetProblems: [],
    ackLost: [],
    acknowledged: 0,
    trace: [],
    startedAt: 0,
    endedAt: 0,
  };
}

function note(rec: ClientRecord, ctx: ClientContext, text: string): void {
  if (rec.trace.length < MAX_TRACE) rec.trace.push(`${((performance.now() - ctx.clock) / 1000).toFixed(2)}s ${text}`);
  else if (rec.trace.length === MAX_TRACE) rec.trace.push('... (trace truncated)');
}

function count(rec: ClientRecord, key: string): void {
  rec.statuses.set(key, (rec.statuses.get(key) ?? 0) + 1);
}

/** Records one response: its status, a 5xx, and whether the offset it states can be true. */
function observe(rec: ClientRecord, ctx: ClientContext, method: string, status: number, header: (name: string) => string | undefined): void {
  count(rec, `${method} ${status}`);
  const size = rec.plan.data.length;
  const offsetText = header('Upload-Offset');
  const offset = offsetText === undefined ? undefined : Number(offsetText);
  note(rec, ctx, `${method} ${status}${offset === undefined ? '' : ` offset=${offset}`}${status >= 400 ? ` ${header('X-Request-Id') ?? ''}` : ''}`);
  if (status >= 500) {
    rec.fiveXX.push({ method, status, requestId: header('X-Request-Id') ?? null, at: Math.round(performance.now() - ctx.clock) });
  }
  if (offset === undefined || status >= 300) return;
  if (!Number.isInteger(offset) || offset < 0 || offset > size) {
    rec.offsetProblems.push(`${method} ${status} answered Upload-Offset ${offsetText} for a ${size}-byte upload`);
    return;
  }
  if (method === 'PATCH') rec.acknowledged = Math.max(rec.acknowledged, offset);
  if (method === 'HEAD' && offset < rec.acknowledged) {
    rec.ackLost.push({ text: `HEAD answered offset ${offset} after a PATCH had acknowledged ${rec.acknowledged}`, trace: rec.trace.length - 1 });
    rec.acknowledged = offset;
  }
}

function describePending(requests: Iterable<tus.HttpRequest>, responded: Set<tus.HttpRequest>, started: Map<tus.HttpRequest, number>): { side: Stall['side']; detail: string } {
  const now = performance.now();
  const parts: string[] = [];
  let side: Stall['side'] = 'client';
  for (const req of requests) {
    const age = Math.round(now - (started.get(req) ?? now));
    const headers = responded.has(req);
    if (!headers) side = 'server';
    parts.push(`${req.getMethod()} ${req.getURL().split('/').pop() ?? ''} for ${age} ms, ${headers ? 'response headers received, body never ended' : 'no response'}`);
  }
  return { side, detail: parts.join('; ') || 'no request in flight' };
}

/** One tus-js-client Upload object, until it succeeds, gives up, is cut, stalls or meets the deadline. */
function segment(rec: ClientRecord, ctx: ClientContext, chunkSize: number, cutsLeft: Cut[]): Promise<SegmentEnd> {
  const { plan } = rec;
  return new Promise((resolve) => {
    let settled = false;
    let lastActivity = performance.now();
    const pending = new Set<tus.HttpRequest>();
    const responded = new Set<tus.HttpRequest>();
    const started = new Map<tus.HttpRequest, number>();
    const touch = () => {
      lastActivity = performance.now();
    };
    const finish = (end: SegmentEnd) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      ctx.deadline.removeEventListener('abort', onDeadline);
      resolve(end);
    };
    const stop = (end: SegmentEnd) => {
      if (settled) return;
      client.abort().catch(() => {});
      finish(end);
    };
    const onDeadline = () => stop({ kind: 'deadline' });

    const client: tus.Upload = new tus.Upload(plan.data, {
      endpoint: rec.url ? null : ctx.endpoint,
      uploadUrl: rec.url,
      chunkSize,
      retryDelays: [...ctx.retryDelays],
      metadata: { filename: `chaos-${plan.index}.${plan.mime === 'image/png' ? 'png' : 'jpg'}`, filetype: plan.mime },
      onBeforeRequest: (req) => {
        pending.add(req);
        started.set(req, performance.now());
        touch();
        // send() creates the Node request right after this hook: watch for its response headers
        setImmediate(() => {
          const underlying: unknown = req.getUnderlyingObject();
          if (underlying instanceof http.ClientRequest) underlying.once('response', () => responded.add(req));
        });
      },
      onAfterResponse: (req, res) => {
        pending.delete(req);
        touch();
        observe(rec, ctx, req.getMethod(), res.getStatus(), (name) => res.getHeader(name));
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200) {
          // cuts already behind the resumed offset are dropped, not fired at the first byte
          const offset = Number(res.getHeader('Upload-Offset'));
          while (cutsLeft[0] && cutsLeft[0].fraction * plan.data.length <= offset) cutsLeft.shift();
        }
      },
      onProgress: (sent, total) => {
        touch();
        const next = cutsLeft[0];
        // (the last progress event comes with the final response: a cut then would only drop the response)
        if (next && client.url && sent < total && sent >= next.fraction * total) {
          cutsLeft.shift();
          note(rec, ctx, `cut (${next.kind}) at ${sent}/${total}`);
          stop({ kind: 'cut', cut: next });
        }
      },
      onUploadUrlAvailable: () => {
        if (client.url && client.url !== rec.url) {
          rec.url = client.url;
          note(rec, ctx, `upload URL ${client.url}`);
        }
        client.options.endpoint = null;
      },
      onShouldRetry: (error, attempt) => {
        pending.delete(error.originalRequest);
        const status = error.originalResponse?.getStatus() ?? 0;
        if (status === 0) {
          rec.networkErrors += 1;
          count(rec, `${error.originalRequest.getMethod()} network-error`);
          note(rec, ctx, `${error.originalRequest.getMethod()} network error: ${error.causingError?.message ?? error.message.split('\n')[0]}`);
        }
        // tus-js-client's own rule: everything but a 4xx, and 409 and 423
        const retry = status < 400 || status >= 500 || status === 409 || status === 423;
        if (retry) {
          rec.retries += 1;
          note(rec, ctx, `retry ${attempt + 1} after ${ctx.retryDelays[attempt] ?? '?'} ms`);
        }
        return retry;
      },
      onSuccess: ({ lastResponse }) => finish({ kind: 'success', status: lastResponse.getStatus(), body: parseJson(lastResponse.getBody()) }),
      onError: (error) => {
        const response = error instanceof tus.DetailedError ? error.originalResponse : null;
        finish({ kind: 'error', status: response?.getStatus() ?? null, body: parseJson(response?.getBody()), message: error.message.split('\n')[0] ?? String(error) });
      },
    });

    const watchdog = setInterval(() => {
      if (performance.now() - lastActivity < ctx.stallMs) return;
      const { side, detail } = describePending(pending, responded, started);
      rec.stalls.push({ at: Math.round(performance.now() - ctx.clock), side, detail });
      note(rec, ctx, `stall (${side}): ${detail}`);
      stop({ kind: 'stall' });
    }, 1000);
    if (ctx.deadline.aborted) return finish({ kind: 'deadline' });
    ctx.deadline.addEventListener('abort', onDeadline, { once: true });
    client.start();
  });
}

/** Between an abort and the resume: a raw PATCH from the current offset that is cut mid-body. */
async function rawCut(rec: ClientRecord, ctx: ClientContext): Promise<void> {
  if (!rec.url) return;
  const size = rec.plan.data.length;
  try {
    const head = await headUpload(rec.url, 20_000);
    observe(rec, ctx, 'HEAD', head.status, head.header);
    const offset = Number(head.header('Upload-Offset'));
    if (head.status !== 200 || !Number.isInteger(offset) || offset >= size) return;
    const bytes = rec.plan.data.subarray(offset, offset + ctx.rng.int(1, Math.min(size - offset, 2 * 1024 * 1024)));
    const waitMs = ctx.rng.int(50, 800);
    const status = await cutPatch(rec.url, offset, bytes, size - offset, waitMs);
    note(rec, ctx, `raw PATCH at ${offset}: ${bytes.length} of ${size - offset} bytes sent, cut after ${waitMs} ms${status === null ? '' : ` (answered ${status} first)`}`);
    if (status !== null) observe(rec, ctx, 'PATCH', status, () => undefined);
  } catch (error) {
    rec.networkErrors += 1;
    note(rec, ctx, `raw cut: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Uploads `rec.plan` (or resumes `rec.url`) to the end: success, an error tus-js-client
 * gives up on, or the deadline. Stalls are recorded and the upload resumed, at most
 * `maxStalls` times.
 */
export async function runUpload(rec: ClientRecord, ctx: ClientContext, options: { chunkSize?: number; cuts?: boolean; maxStalls?: number } = {}): Promise<ClientRecord> {
  const cutsLeft = options.cuts === false ? [] : [...rec.plan.cuts];
  const chunkSize = options.chunkSize ?? rec.plan.chunkSize;
  const maxStalls = options.maxStalls ?? 3;
  rec.startedAt = performance.now();
  for (;;) {
    const end = await segment(rec, ctx, chunkSize, cutsLeft);
    if (end.kind === 'cut') {
      rec.cuts[end.cut.kind] += 1;
      if (end.cut.kind === 'raw') await rawCut(rec, ctx);
      continue;
    }
    if (end.kind === 'stall' && rec.stalls.length < maxStalls) continue;
    rec.endedAt = performance.now();
    if (end.kind === 'success') {
      rec.end = 'success';
      rec.status = end.status;
      rec.body = end.body;
    } else if (end.kind === 'error') {
      rec.end = 'error';
      rec.status = end.status;
      rec.body = end.body;
      // tus-js-client's message repeats the URL and the whole body: keep its first words, the status and the code
      rec.error = `${end.message.split(', originated from')[0]}${end.status === null ? '' : ` (HTTP ${end.status}${errorCodeOf(end.body) ? ` ${errorCodeOf(end.body)}` : ''})`}`;
    } else if (end.kind === 'stall') {
      rec.end = 'error';
      rec.error = `gave up after ${rec.stalls.length} stalls`;
    } else {
      rec.end = 'deadline';
    }
    note(rec, ctx, `end: ${rec.end}${rec.error ? ` ${rec.error}` : ''}`);
    return rec;
  }
}
