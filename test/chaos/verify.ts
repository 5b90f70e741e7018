/**
 * The end check of one upload, with the faults stopped:
 *   completed  the client got the final response; its original.sha256 is what was sent,
 *              GET /uploads/:id says done with the same sha256 and URL, and the artifact
 *              is fetchable and decodes as the image the record describes;
 *   resumed    the client did not finish, but HEAD answers a true offset (<= the size) and
 *              resuming from it with the real remaining bytes completes as above;
 *   refused    a 4xx with an error code ended it (every image here is valid: a failure);
 *   failure    anything else: a 5xx that never recovered, an offset beyond the size, a hang,
 *              a check that does not complete.
 * A published sha256 that differs from what was sent is counted apart (wrong bytes).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { z } from 'zod';
import { newRecord, runUpload, type ClientContext, type ClientRecord } from './client.ts';
import { errorCodeOf, headUpload, parseJson, send } from './http.ts';

/** OUTPUT_LONG_EDGE of the instances (run.ts sets it). */
export const LONG_EDGE = 2048;

export type Outcome = 'completed' | 'resumed' | 'refused' | 'failure';

export interface Verdict {
  outcome: Outcome;
  /** The error code of a refusal. */
  code?: string;
  /** Why it is not completed/resumed, or what was odd about it. */
  reasons: string[];
  wrongBytes: boolean;
  /** GET /uploads/:id said done: an artifact was published for it. */
  published?: boolean;
  /** The check's own resume, when there was one. */
  check?: ClientRecord;
}

export interface VerifyContext {
  /** The proxy's origin, e.g. http://127.0.0.1:8088 */
  proxy: string;
  s3: S3Client;
  s3Endpoint: string;
  publicBucket: string;
  /** For the check's resume (no deadline of its own: the signal given here). */
  client: Omit<ClientContext, 'endpoint'>;
}

const Artifact = z.object({
  id: z.string().optional(),
  url: z.string(),
  format: z.string(),
  width: z.number(),
  height: z.number(),
  bytes: z.number(),
  original: z.object({ bytes: z.number(), sha256: z.string() }),
});
type Artifact = z.infer<typeof Artifact>;

const Status = z.looseObject({ state: z.string(), error: z.object({ code: z.string() }).optional() });

const idOf = (url: string) => url.split('/').pop() ?? '';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isRetryable = (status: number) => status === 409 || status === 423 || status >= 500;

/** GET /uploads/:id until it is no longer processing (a 5xx or a network error is asked again). */
async function settledStatus(v: VerifyContext, id: string, timeoutMs = 90_000): Promise<{ state: string; body: unknown; note?: string }> {
  const deadline = performance.now() + timeoutMs;
  let last = 'no answer';
  while (performance.now() < deadline && !v.client.deadline.aborted) {
    try {
      const res = await send(`${v.proxy}/uploads/${id}`, { timeoutMs: 20_000 });
      const body = parseJson(res.body);
      if (res.status === 200) {
        const status = Status.safeParse(body);
        if (!status.success) return { state: 'invalid', body, note: `GET /uploads/${id} answered a body that is not a status: ${res.body.slice(0, 200)}` };
        if (status.data.state !== 'processing') return { state: status.data.state, body };
        last = 'processing';
      } else if (res.status >= 400 && res.status < 500) {
        return { state: `http-${res.status}`, body };
      } else {
        last = `HTTP ${res.status} ${res.body.slice(0, 200)}`;
      }
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(500);
  }
  const waited = v.client.deadline.aborted ? 'when the checks ran out of time' : `after ${timeoutMs} ms`;
  return { state: 'timeout', body: null, note: `GET /uploads/${id} still ${last} ${waited}` };
}

/** The artifact's bytes: a plain GET of its URL (the public bucket is world-readable), else GetObject. */
async function fetchArtifact(v: VerifyContext, url: string): Promise<{ bytes?: Buffer; problem?: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    if (res.ok) return { bytes: Buffer.from(await res.arrayBuffer()) };
    const prefix = `${v.s3Endpoint}/${v.publicBucket}/`;
    if (res.status === 403 && url.startsWith(prefix)) {
      const object = await v.s3.send(new GetObjectCommand({ Bucket: v.publicBucket, Key: url.slice(prefix.length) }));
      return { bytes: Buffer.from((await object.Body?.transformToByteArray()) ?? new Uint8Array()) };
    }
    return { problem: `GET ${url} answered ${res.status}` };
  } catch (error) {
    return { problem: `GET ${url} failed: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** What the client was answered and what the server now says about a complete upload. */
async function checkPublished(v: VerifyContext, rec: ClientRecord, id: string, body: unknown): Promise<Verdict> {
  const plan = rec.plan;
  const reasons: string[] = [];
  let wrongBytes = false;
  const given = Artifact.safeParse(body);
  const final: Artifact | undefined = given.success ? given.data : undefined;
  if (final) {
    if (final.original.sha256 !== plan.sha256) {
      wrongBytes = true;
      reasons.push(`final response: original.sha256 ${final.original.sha256} is not the sha256 sent (${plan.sha256})`);
    }
    if (final.original.bytes !== plan.data.length) reasons.push(`final response: original.bytes ${final.original.bytes}, sent ${plan.data.length}`);
    if (final.id !== undefined && final.id !== id) reasons.push(`final response: id ${final.id} for upload ${id}`);
  }
  const status = await settledStatus(v, id);
  if (status.state !== 'done') {
    const code = errorCodeOf(status.body);
    const text = status.note ?? `GET /uploads/${id}: ${JSON.stringify(status.body)?.slice(0, 300)}`;
    if (code && !final) return { outcome: 'refused', code, reasons: [text], wrongBytes };
    return { outcome: 'failure', reasons: [...reasons, `the upload is complete but ${text}`], wrongBytes };
  }
  const record = Artifact.safeParse(status.body);
  if (!record.success) return { outcome: 'failure', reasons: [...reasons, `GET /uploads/${id} says done without an artifact: ${JSON.stringify(status.body).slice(0, 300)}`], wrongBytes, published: true };
  const done = record.data;
  if (done.original.sha256 !== plan.sha256) {
    wrongBytes = true;
    reasons.push(`GET /uploads/${id}: original.sha256 ${done.original.sha256} is not the sha256 sent (${plan.sha256})`);
  }
  if (final && final.url !== done.url) reasons.push(`GET /uploads/${id} names ${done.url}, the final response ${final.url} (two artifacts?)`);
  const artifact = await fetchArtifact(v, done.url);
  if (!artifact.bytes) {
    reasons.push(artifact.problem ?? 'artifact not fetchable');
  } else {
    try {
      const meta = await sharp(artifact.bytes).metadata();
      if (meta.format !== done.format || meta.width !== done.width || meta.height !== done.height) {
        reasons.push(`artifact decodes as ${meta.format} ${meta.width}x${meta.height}, the record says ${done.format} ${done.width}x${done.height}`);
      }
      const scale = Math.min(1, LONG_EDGE / Math.max(plan.width, plan.height));
      if (Math.abs(done.width - plan.width * scale) > 2 || Math.abs(done.height - plan.height * scale) > 2) {
        reasons.push(`artifact is ${done.width}x${done.height}, the image sent ${plan.width}x${plan.height} (expected it to fit inside ${LONG_EDGE})`);
      }
    } catch (error) {
      reasons.push(`artifact ${done.url} does not decode: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { outcome: reasons.length === 0 ? 'completed' : 'failure', reasons, wrongBytes, published: true };
}

/** HEAD until it answers something other than 423/5xx/a network error (a dead holder's lock lapses), at most `timeoutMs`. */
async function settledHead(v: VerifyContext, url: string, timeoutMs = 40_000): Promise<{ status: number; offset?: number; length?: number; problem?: string }> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline && !v.client.deadline.aborted) {
    try {
      const res = await headUpload(url, 20_000);
      if (!isRetryable(res.status)) {
        const offset = res.header('Upload-Offset');
        const length = res.header('Upload-Length');
        return { status: res.status, offset: offset === undefined ? undefined : Number(offset), length: length === undefined ? undefined : Number(length) };
      }
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(1000);
  }
  return { status: 0, problem: `HEAD did not settle ${v.client.deadline.aborted ? 'before the checks ran out of time' : `within ${timeoutMs} ms`} (last: ${last || 'none'})` };
}

/** The verdict on one upload (what the client saw in the upload phase, then the checks). */
export async function verify(v: VerifyContext, rec: ClientRecord): Promise<Verdict> {
  const plan = rec.plan;
  const base: string[] = [];
  if (rec.offsetProblems.length > 0) base.push(...rec.offsetProblems.map((p) => `offset not true: ${p}`));
  const serverStalls = rec.stalls.filter((s) => s.side === 'server');
  if (serverStalls.length > 0) base.push(...serverStalls.map((s) => `hung at ${s.at} ms: ${s.detail}`));
  if (rec.url && !rec.url.startsWith(`${v.proxy}/files/`)) base.push(`upload URL ${rec.url} does not point at the proxy`);
  const withBase = (verdict: Verdict): Verdict => {
    if (base.length === 0) return verdict;
    return { ...verdict, outcome: verdict.outcome === 'refused' ? 'refused' : 'failure', reasons: [...base, ...verdict.reasons] };
  };

  if (!rec.url) {
    const code = errorCodeOf(rec.body);
    if (rec.end === 'error' && rec.status !== null && rec.status >= 400 && rec.status < 500 && code) {
      return withBase({ outcome: 'refused', code, reasons: [`creation refused: ${rec.error ?? ''}`], wrongBytes: false });
    }
    return withBase({ outcome: 'failure', reasons: [`never created (${rec.end}): ${rec.error ?? `last status ${rec.status}`}`], wrongBytes: false });
  }
  const id = idOf(rec.url);

  if (rec.end === 'success') return withBase(await checkPublished(v, rec, id, rec.body));

  // a refusal the client was given (not one of the statuses it retries)
  if (rec.end === 'error' && rec.status !== null && rec.status >= 400 && rec.status < 500 && !isRetryable(rec.status)) {
    const head = await settledHead(v, rec.url);
    const status = await settledStatus(v, id, 20_000);
    const code = errorCodeOf(rec.body) ?? errorCodeOf(status.body) ?? `HTTP ${rec.status}`;
    return withBase({
      outcome: 'refused',
      code,
      reasons: [`the client was refused: ${rec.error ?? ''}; afterwards HEAD ${head.status || head.problem} offset ${head.offset ?? '-'}, GET /uploads/${id} ${JSON.stringify(status.body)?.slice(0, 200)}`],
      wrongBytes: false,
    });
  }

  // unfinished (retries exhausted, a stall, the deadline): is the offset true, does it resume?
  const why = `upload phase ended ${rec.end}${rec.error ? `: ${rec.error}` : ''}`;
  const head = await settledHead(v, rec.url);
  if (head.problem) return withBase({ outcome: 'failure', reasons: [why, head.problem], wrongBytes: false });
  if (head.status !== 200) {
    const status = await settledStatus(v, id, 20_000);
    const code = errorCodeOf(status.body) ?? `HEAD ${head.status}`;
    return withBase({ outcome: 'refused', code, reasons: [why, `HEAD ${head.status}; GET /uploads/${id} ${JSON.stringify(status.body)?.slice(0, 200)}`], wrongBytes: false });
  }
  const size = plan.data.length;
  if (head.offset === undefined || !Number.isInteger(head.offset) || head.offset < 0 || head.offset > size || head.length !== size) {
    return withBase({ outcome: 'failure', reasons: [why, `HEAD answered Upload-Offset ${head.offset} Upload-Length ${head.length} for a ${size}-byte upload`], wrongBytes: false });
  }
  // resume with the real remaining bytes (one PATCH), no cuts, no faults
  const check = newRecord(plan, rec.url);
  await runUpload(check, { ...v.client, endpoint: `${v.proxy}/files/` }, { chunkSize: Number.POSITIVE_INFINITY, cuts: false, maxStalls: 0 });
  const resumedFrom = `resumed from offset ${head.offset} of ${size}`;
  if (check.end === 'success') {
    const published = await checkPublished(v, check, id, check.body);
    const outcome = published.outcome === 'completed' ? 'resumed' : published.outcome;
    return withBase({ ...published, outcome, reasons: [why, resumedFrom, ...published.reasons], check });
  }
  const code = errorCodeOf(check.body);
  if (check.end === 'error' && check.status !== null && check.status >= 400 && check.status < 500 && code) {
    return withBase({ outcome: 'refused', code, reasons: [why, `${resumedFrom}: refused ${check.error ?? ''}`], wrongBytes: false, check });
  }
  return withBase({ outcome: 'failure', reasons: [why, `${resumedFrom}: ${check.end} ${check.error ?? ''} ${check.stalls.map((s) => s.detail).join('; ')}`], wrongBytes: false, check });
}
