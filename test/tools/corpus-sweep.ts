/**
 * Corpus sweep: uploads every file of a real-world image corpus (a folder with a
 * manifest.json, e.g. /work/shared/corpus; never copied into the project) to a tusgate
 * server with the real tus-js-client, and compares what happened with the manifest's
 * `expected` / `acceptable` outcome.
 *
 *   npm run corpus -- [CORPUS_DIR] [--only SUBSTRING]... [--json FILE] [--long-edge N] [--keep]
 *
 * CORPUS_DIR defaults to ../shared/corpus relative to the project root. The server is
 * TUSGATE_URL (e.g. http://127.0.0.1:1080) when set; otherwise the sweep starts its own
 * on a free port and a temporary data dir (and restarts it if it crashes, recording the
 * crash as a mismatch).
 *
 * Accepted = 2xx with an artifact; the artifact is fetched and must be a WebP with no
 * EXIF/XMP (sharp metadata), no EXIF/XMP chunk and no GPS bytes outside the pixel data,
 * and, when the manifest gives display_width/height, exactly those fitted inside the long
 * edge (never enlarged). Refused = 4xx with a JSON `{ error: { code, message } }` whose
 * code is an image verdict. Any 5xx, transport failure or server crash is a mismatch.
 * Exit status: 0 when nothing mismatched, 1 on mismatches, 2 when the sweep could not run.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp, { type Metadata } from 'sharp';
import type * as tus from 'tus-js-client';
import { ROOT, startServer, type LogLine, type RunningServer } from '../support/server.ts';
import { upload, type UploadOutcome } from '../support/tus.ts';
import { TERMINAL_CODES } from '../../hooks/errors.ts';

// ---------------------------------------------------------------------------------------
// The manifest

interface Entry {
  path: string;
  kind: string;
  expected: Outcome;
  acceptable: Outcome[];
  why: string;
  true_mime?: string | null;
  size?: number;
  sha256?: string;
  width?: number | null;
  height?: number | null;
  display_width?: number;
  display_height?: number;
  exif_orientation?: number;
  has_gps?: boolean;
  has_icc?: boolean;
  frames?: number;
}

type Outcome = 'accept' | 'reject';
type Got = Outcome | 'error';

interface Manifest {
  files: Entry[];
}

// ---------------------------------------------------------------------------------------
// Options

const CONCURRENCY = 2;
const CHUNK_SIZE = 256 * 1024;
const UPLOAD_TIMEOUT_MS = 180_000;

/** The codes that are a verdict on the image itself (README "Error codes"): the gate's, the finish's, the size limit. */
const IMAGE_VERDICTS: ReadonlySet<string> = new Set([...TERMINAL_CODES, 'E_UPLOAD_TOO_LARGE']);

interface Options {
  corpus: string;
  only: string[];
  json?: string;
  longEdge: number;
  keep: boolean;
}

function usage(message?: string): never {
  if (message) console.error(`corpus-sweep: ${message}`);
  console.error('usage: npm run corpus -- [CORPUS_DIR] [--only SUBSTRING]... [--json FILE] [--long-edge N] [--keep]');
  process.exit(2);
}

function parseArgs(argv: string[]): Options {
  const options: Options = { corpus: path.resolve(ROOT, '..', 'shared', 'corpus'), only: [], longEdge: 2048, keep: false };
  let corpusSet = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) usage(`${arg} needs a value`);
      return next;
    };
    if (arg === '--only') options.only.push(value());
    else if (arg === '--json') options.json = path.resolve(value());
    else if (arg === '--long-edge') options.longEdge = Number(value());
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--help' || arg === '-h') usage();
    else if (arg.startsWith('--')) usage(`unknown option ${arg}`);
    else if (!corpusSet) {
      options.corpus = path.resolve(arg);
      corpusSet = true;
    } else usage(`unexpected argument ${arg}`);
  }
  if (!Number.isInteger(options.longEdge) || options.longEdge < 1) usage('--long-edge must be a positive integer');
  return options;
}

// ---------------------------------------------------------------------------------------
// The server: TUSGATE_URL, or one of our own that is restarted after a crash

interface Target {
  /** Base URL, e.g. http://127.0.0.1:18123 */
  url: string;
  endpoint: string;
  /** Bumped at every (re)start; an upload remembers the generation it ran against. */
  generation: number;
  own?: RunningServer;
  /** Generations whose server died, with what is known of the death. */
  deaths: Map<number, string>;
  /** Set when the sweep stops its own server: that exit is no crash. */
  stopping?: boolean;
  /** Data dirs of every own server started (a crashed one's too), removed at the end. */
  dataDirs: string[];
}

async function startOwn(target: Target): Promise<void> {
  const server = await startServer({ env: { LOG_LEVEL: 'info' } });
  target.own = server;
  target.dataDirs.push(server.dataDir);
  target.url = server.url;
  target.endpoint = server.endpoint;
  target.generation += 1;
  const generation = target.generation;
  server.process.once('exit', (code, signal) => {
    if (target.stopping) return;
    const tail = server.stderr().trim().split('\n').slice(-8).join('\n');
    target.deaths.set(generation, `server process exited (code ${code}, signal ${signal})${tail ? `; stderr: ${tail}` : ''}`);
  });
}

async function connect(): Promise<Target> {
  const target: Target = { url: '', endpoint: '', generation: 0, deaths: new Map(), dataDirs: [] };
  const external = process.env.TUSGATE_URL;
  if (external) {
    const base = external.replace(/\/+$/, '').replace(/\/files$/, '');
    target.url = base;
    target.endpoint = `${base}/files/`;
    target.generation = 1;
    if (!(await healthy(target))) throw new Error(`TUSGATE_URL=${external}: GET /healthz does not answer 200`);
  } else {
    await startOwn(target);
  }
  return target;
}

async function healthy(target: Target): Promise<boolean> {
  try {
    const response = await fetch(`${target.url}/healthz`, { signal: AbortSignal.timeout(5000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Before each upload: a dead own server is replaced (one restart at a time). */
let restarting: Promise<void> | undefined;
async function ensureAlive(target: Target): Promise<void> {
  if (!target.own || !target.deaths.has(target.generation)) return;
  restarting ??= (async () => {
    console.error(`corpus-sweep: ${target.deaths.get(target.generation)}; restarting the server`);
    await startOwn(target);
  })().finally(() => {
    restarting = undefined;
  });
  await restarting;
}

// ---------------------------------------------------------------------------------------
// One file

interface Result {
  path: string;
  expected: Outcome;
  acceptable: Outcome[];
  why: string;
  got: Got;
  status: number | null;
  code?: string;
  message?: string;
  /** Why this file is a mismatch beyond the outcome (artifact checks, 5xx, transport, crash). */
  problems: string[];
  /** Observations that are not failures (orientation/frames where the manifest is silent). */
  notes: string[];
  uploadId?: string;
  artifact?: { url: string; width: number; height: number; bytes: number; pages?: number };
  /** Warn/error log lines the server wrote about this upload (own server only). */
  serverLog: string[];
  ms: number;
  mismatch: boolean;
}

interface ArtifactBody {
  id?: string;
  url?: string;
  format?: string;
  width?: number;
  height?: number;
  bytes?: number;
  original?: { bytes?: number; sha256?: string };
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

function isArtifact(body: unknown): body is ArtifactBody {
  return typeof body === 'object' && body !== null && typeof (body as ArtifactBody).url === 'string';
}

function errorOf(body: unknown): { code?: string; message?: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as ErrorBody).error;
  return typeof error === 'object' && error !== null ? error : undefined;
}

function uploadWithTimeout(endpoint: string, data: Buffer, filename: string): Promise<UploadOutcome & { timedOut?: boolean }> {
  let client: tus.Upload | undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<UploadOutcome & { timedOut: boolean }>((resolve) => {
    timer = setTimeout(() => {
      void client?.abort(false);
      resolve({ ok: false, url: client?.url ?? null, status: null, body: null, timedOut: true });
    }, UPLOAD_TIMEOUT_MS);
  });
  const done = upload(endpoint, data, {
    chunkSize: CHUNK_SIZE,
    metadata: { filename },
    retryDelays: [], // a 5xx must show, not be retried away
    onStart: (started) => {
      client = started;
    },
  });
  return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
}

async function statusOf(target: Target, id: string): Promise<{ state?: string; error?: { code?: string; message?: string } } & ArtifactBody> {
  try {
    const response = await fetch(`${target.url}/uploads/${id}`, { signal: AbortSignal.timeout(10_000) });
    return (await response.json()) as { state?: string } & ArtifactBody;
  } catch (error) {
    return { state: `unavailable (${(error as Error).message})` };
  }
}

async function sweepOne(target: Target, corpus: string, entry: Entry, longEdge: number): Promise<Result> {
  const started = Date.now();
  const result: Result = {
    path: entry.path,
    expected: entry.expected,
    acceptable: entry.acceptable?.length ? entry.acceptable : [entry.expected],
    why: entry.why,
    got: 'error',
    status: null,
    problems: [],
    notes: [],
    serverLog: [],
    ms: 0,
    mismatch: false,
  };
  const file = path.join(corpus, entry.path);
  const data = fs.readFileSync(file);
  await ensureAlive(target);
  const generation = target.generation;
  const logStart = target.own?.logs.length ?? 0;
  const outcome = await uploadWithTimeout(target.endpoint, data, path.basename(entry.path));
  result.uploadId = outcome.url?.split('/').pop() || undefined;
  result.status = outcome.status;

  // A dead server is a mismatch whatever the client saw (give the exit event a moment).
  if (target.own && !outcome.ok) await new Promise((resolve) => setTimeout(resolve, 200));
  const death = target.deaths.get(generation);

  if (outcome.timedOut) {
    result.problems.push(`no outcome within ${UPLOAD_TIMEOUT_MS / 1000} s (upload aborted)`);
  } else if (outcome.ok) {
    if (outcome.status === null || outcome.status < 200 || outcome.status >= 300) {
      result.problems.push(`tus-js-client reported success with status ${outcome.status}`);
    }
    let body: unknown = outcome.body;
    if (!isArtifact(body) && result.uploadId) {
      // the final response body was lost or empty: the status endpoint has the record
      result.notes.push('final response had no artifact body; used GET /uploads/:id');
      body = await statusOf(target, result.uploadId);
    }
    if (isArtifact(body)) {
      result.got = 'accept';
      await checkArtifact(body, entry, data, longEdge, result);
    } else {
      result.problems.push(`2xx without an artifact: ${JSON.stringify(body)?.slice(0, 200)}`);
    }
  } else if (outcome.status !== null) {
    const error = errorOf(outcome.body);
    result.code = error?.code;
    result.message = error?.message ?? (typeof outcome.body === 'string' ? outcome.body.slice(0, 300) : undefined);
    if (outcome.status >= 500) {
      result.problems.push(`server error ${outcome.status}${result.code ? ` ${result.code}` : ''}`);
    } else if (outcome.status >= 400) {
      result.got = 'reject';
      if (!error?.code) result.problems.push(`${outcome.status} without a JSON error code`);
      else if (!IMAGE_VERDICTS.has(error.code)) result.problems.push(`refused with ${error.code}, which is not a verdict on the image`);
    } else {
      result.problems.push(`unexpected status ${outcome.status}`);
    }
  } else {
    // No HTTP response reached the client (connection reset, refused...): not a clean outcome.
    const reason = outcome.error?.message.split('\n')[0] ?? 'unknown error';
    let what = `no HTTP response reached the client: ${reason}`;
    if (result.uploadId && !death) {
      const status = await statusOf(target, result.uploadId);
      what += `; GET /uploads/:id says ${JSON.stringify({ state: status.state, error: status.error })}`;
      if (status.error?.code) {
        result.code = status.error.code;
        result.message = status.error.message;
      }
    }
    result.problems.push(what);
  }
  if (death) result.problems.push(`SERVER CRASH during this upload: ${death}`);

  if (target.own) {
    const id = result.uploadId;
    for (const line of target.own.logs.slice(logStart)) {
      if (line.level < 40) continue;
      if (id && line.uploadId !== id && !JSON.stringify(line).includes(id)) continue;
      if (!id && line.level < 50) continue;
      result.serverLog.push(describeLog(line));
    }
  }
  result.ms = Date.now() - started;
  result.mismatch = result.problems.length > 0 || result.got === 'error' || !result.acceptable.includes(result.got);
  return result;
}

function describeLog(line: LogLine): string {
  const { level, msg, code, reason, err, status } = line as LogLine & { code?: string; reason?: string; err?: { message?: string }; status?: number };
  const parts = [`[${level >= 50 ? 'error' : 'warn'}] ${msg}`];
  if (status) parts.push(`status=${status}`);
  if (code) parts.push(`code=${code}`);
  if (reason) parts.push(`reason=${reason}`);
  if (err?.message) parts.push(`err=${err.message.split('\n')[0]}`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------
// The artifact

/** `width` x `height` fitted inside a `longEdge` square, never enlarged (sharp's fit: 'inside' with withoutEnlargement). */
export function fitted(width: number, height: number, longEdge: number): [number, number] {
  if (width <= longEdge && height <= longEdge) return [width, height];
  if (width >= height) return [longEdge, Math.max(1, Math.round((height * longEdge) / width))];
  return [Math.max(1, Math.round((width * longEdge) / height)), longEdge];
}

function sameSize(got: [number, number], want: [number, number]): boolean {
  // sharp may round the short side the other way: allow one pixel there, none on the long edge.
  return Math.abs(got[0] - want[0]) <= 1 && Math.abs(got[1] - want[1]) <= 1 && (got[0] === want[0] || got[1] === want[1]);
}

interface RiffChunk {
  fourcc: string;
  data: Buffer;
}

function riffChunks(image: Buffer): RiffChunk[] | string {
  if (image.length < 12 || image.toString('latin1', 0, 4) !== 'RIFF' || image.toString('latin1', 8, 12) !== 'WEBP') return 'not a RIFF/WEBP file';
  const chunks: RiffChunk[] = [];
  let i = 12;
  while (i + 8 <= image.length) {
    const fourcc = image.toString('latin1', i, i + 4);
    const size = image.readUInt32LE(i + 4);
    if (i + 8 + size > image.length) return `chunk ${JSON.stringify(fourcc)} runs past the end of the file`;
    chunks.push({ fourcc, data: image.subarray(i + 8, i + 8 + size) });
    if (fourcc === 'ANMF' && size >= 16) {
      // frames carry their own sub-chunks after a 16-byte header
      const inner = riffChunks(Buffer.concat([Buffer.from('RIFF\0\0\0\0WEBP', 'latin1'), image.subarray(i + 8 + 16, i + 8 + size)]));
      if (typeof inner === 'string') return `in ANMF: ${inner}`;
      chunks.push(...inner);
    }
    i += 8 + size + (size % 2);
  }
  return chunks;
}

/** Chunks that hold compressed pixels: any byte pattern may occur in them by chance. */
const BITSTREAM_CHUNKS = new Set(['VP8 ', 'VP8L', 'ALPH', 'ANMF']);
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

async function checkArtifact(body: ArtifactBody, entry: Entry, original: Buffer, longEdge: number, result: Result): Promise<void> {
  const problems = result.problems;
  if (body.format !== 'webp') problems.push(`artifact format is ${JSON.stringify(body.format)}, not webp`);
  const originalSha = createHash('sha256').update(original).digest('hex');
  if (body.original?.sha256 !== originalSha) problems.push(`original.sha256 ${body.original?.sha256} is not the sha256 of the file sent`);
  if (body.original?.bytes !== original.length) problems.push(`original.bytes ${body.original?.bytes} is not ${original.length}`);

  let image: Buffer;
  try {
    const response = await fetch(body.url as string, { signal: AbortSignal.timeout(30_000) });
    image = Buffer.from(await response.arrayBuffer());
    if (response.status !== 200) {
      problems.push(`GET artifact answered ${response.status}`);
      return;
    }
    const type = response.headers.get('content-type');
    if (type !== 'image/webp') problems.push(`artifact served as ${type}, not image/webp`);
  } catch (error) {
    problems.push(`GET artifact failed: ${(error as Error).message}`);
    return;
  }
  if (body.bytes !== image.length) problems.push(`artifact is ${image.length} bytes, the record says ${body.bytes}`);

  let meta: Metadata;
  try {
    meta = await sharp(image, { animated: true }).metadata();
  } catch (error) {
    problems.push(`the artifact does not decode: ${(error as Error).message}`);
    return;
  }
  const width = meta.width;
  const height = meta.pageHeight ?? meta.height;
  result.artifact = { url: body.url as string, width, height, bytes: image.length, pages: meta.pages };
  if (meta.format !== 'webp') problems.push(`artifact decodes as ${meta.format}, not webp`);
  if (meta.exif !== undefined) problems.push(`artifact carries EXIF (${meta.exif.length} bytes)`);
  if (meta.xmp !== undefined) problems.push(`artifact carries XMP (${meta.xmp.length} bytes)`);
  if (meta.orientation !== undefined) problems.push(`artifact carries an Orientation tag (${meta.orientation})`);
  if (width !== body.width || height !== body.height) {
    problems.push(`artifact is ${width}x${height}, the record says ${body.width}x${body.height}`);
  }

  const chunks = riffChunks(image);
  if (typeof chunks === 'string') {
    problems.push(`artifact RIFF structure: ${chunks}`);
  } else {
    const vp8x = chunks.find((chunk) => chunk.fourcc === 'VP8X');
    const flags = vp8x?.data[0] ?? 0;
    if (flags & VP8X_EXIF) problems.push('artifact VP8X header flags EXIF');
    if (flags & VP8X_XMP) problems.push('artifact VP8X header flags XMP');
    for (const chunk of chunks) {
      if (chunk.fourcc === 'EXIF' || chunk.fourcc === 'XMP ') problems.push(`artifact has a ${chunk.fourcc.trim()} chunk (${chunk.data.length} bytes)`);
      if (BITSTREAM_CHUNKS.has(chunk.fourcc)) continue;
      if (chunk.data.includes('GPS')) problems.push(`artifact chunk ${JSON.stringify(chunk.fourcc)} contains "GPS" bytes`);
      if (chunk.data.includes('Exif\0\0')) problems.push(`artifact chunk ${JSON.stringify(chunk.fourcc)} contains an EXIF header`);
    }
    if (meta.icc) result.notes.push(`artifact keeps an ICC profile (${meta.icc.length} bytes)`);
  }

  if (entry.display_width && entry.display_height) {
    const want = fitted(entry.display_width, entry.display_height, longEdge);
    if (!sameSize([width, height], want)) {
      problems.push(
        `artifact is ${width}x${height}; display size ${entry.display_width}x${entry.display_height} fitted in ${longEdge} is ${want[0]}x${want[1]}`,
      );
    }
  } else if (entry.width && entry.height && entry.exif_orientation === undefined) {
    // No display size in the manifest: the stored size is only a hint (AVIF irot, canvases).
    const want = fitted(entry.width, entry.height, longEdge);
    if (!sameSize([width, height], want)) result.notes.push(`artifact is ${width}x${height}; stored size ${entry.width}x${entry.height} fitted is ${want[0]}x${want[1]}`);
  }
  if (entry.frames && entry.frames > 1) {
    // libwebp merges identical consecutive frames (adding up their delays): compare running times, not counts.
    const total = (delays: number[] | undefined) => (delays ?? []).reduce((sum, delay) => sum + delay, 0);
    const originalMeta = await sharp(original, { animated: true }).metadata().catch(() => undefined);
    const pages = meta.pages ?? 1;
    if (pages === 1) {
      result.notes.push(`artifact is a still image; the original has ${entry.frames} frames (identical frames merged, or animation dropped)`);
    } else if (originalMeta?.delay && total(meta.delay) !== total(originalMeta.delay)) {
      result.notes.push(`artifact animation runs ${total(meta.delay)} ms in ${pages} frames; the original runs ${total(originalMeta.delay)} ms in ${entry.frames}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Report

function cell(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat.padEnd(width);
}

function gotLabel(result: Result): string {
  if (result.got === 'accept') return 'accept';
  if (result.got === 'reject') return `reject ${result.status}`;
  return result.status ? `error ${result.status}` : 'error';
}

function serverSays(result: Result): string {
  if (result.code || result.message) return `${result.code ?? ''} ${result.message ?? ''}`.trim();
  if (result.artifact) return `${result.artifact.width}x${result.artifact.height} webp`;
  return '';
}

function printReport(results: Result[], seconds: number): void {
  const mismatches = results.filter((result) => result.mismatch);
  if (mismatches.length) {
    const widths = [44, 14, 12, 60, 60];
    const row = (cells: string[]) => cells.map((text, i) => cell(text, widths[i] ?? 20)).join(' | ');
    console.log(`\nMISMATCHES (${mismatches.length})\n`);
    console.log(row(['file', 'expected', 'got', 'server code / message', 'why (manifest)']));
    console.log(widths.map((w) => '-'.repeat(w)).join('-+-'));
    for (const result of mismatches) {
      const expected = result.acceptable.length > 1 ? result.acceptable.join('|') : result.expected;
      console.log(row([result.path, expected, gotLabel(result), serverSays(result) || result.problems[0] || '', result.why]));
    }
    console.log('\nDETAILS\n');
    for (const result of mismatches) {
      console.log(`${result.path}  (upload ${result.uploadId ?? '-'})`);
      console.log(`  expected: ${result.expected} (acceptable: ${result.acceptable.join(', ')})`);
      console.log(`  got:      ${gotLabel(result)}${serverSays(result) ? `: ${serverSays(result)}` : ''}`);
      for (const problem of result.problems) console.log(`  problem:  ${problem}`);
      for (const line of result.serverLog) console.log(`  log:      ${line}`);
      console.log(`  why:      ${result.why}\n`);
    }
  }
  const noted = results.filter((result) => result.notes.length && !result.mismatch);
  if (noted.length) {
    console.log(`NOTES (not failures; the manifest gives no display size or frame policy) (${noted.length})\n`);
    for (const result of noted) console.log(`  ${result.path}: ${result.notes.join('; ')}`);
    console.log('');
  }
  const ok = results.filter((result) => !result.mismatch);
  const acceptedOk = ok.filter((result) => result.got === 'accept').length;
  const refusedOk = ok.filter((result) => result.got === 'reject').length;
  const tolerated = ok.filter((result) => result.got !== result.expected).length;
  const server5xx = results.filter((result) => (result.status ?? 0) >= 500).length;
  const crashes = results.filter((result) => result.problems.some((problem) => problem.startsWith('SERVER CRASH'))).length;
  const codes = new Map<string, number>();
  for (const result of results) if (result.got === 'reject') codes.set(result.code ?? '?', (codes.get(result.code ?? '?') ?? 0) + 1);
  console.log(`TOTALS (${results.length} files in ${seconds.toFixed(1)} s)`);
  console.log(`  ${acceptedOk} accepted as expected`);
  console.log(`  ${refusedOk} refused as expected`);
  if (tolerated) console.log(`    (of which ${tolerated} took the other outcome the manifest also allows)`);
  console.log(`  ${mismatches.length} mismatches${server5xx || crashes ? ` (${server5xx} with a 5xx, ${crashes} during a server crash)` : ''}`);
  console.log(`  refusal codes: ${[...codes].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}`);
}

// ---------------------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const manifestPath = path.join(options.corpus, 'manifest.json');
  if (!fs.existsSync(manifestPath)) usage(`no manifest.json in ${options.corpus}`);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Manifest;
  let entries = manifest.files;
  if (options.only.length) entries = entries.filter((entry) => options.only.some((part) => entry.path.includes(part)));
  const missing = entries.filter((entry) => !fs.existsSync(path.join(options.corpus, entry.path)));
  if (missing.length) usage(`manifest files missing from ${options.corpus}: ${missing.map((entry) => entry.path).join(', ')}`);
  if (!entries.length) usage('no manifest entry matches');

  const target = await connect();
  const stopOwn = async () => {
    const own = target.own;
    if (!own) return;
    target.stopping = true;
    await own.stop();
    if (!options.keep) for (const dir of target.dataDirs) fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void stopOwn().finally(() => process.exit(130));
  });
  console.log(`corpus-sweep: ${entries.length} files from ${options.corpus} -> ${target.endpoint}${target.own ? ` (own server, data ${target.own.dataDir})` : ''}`);

  const started = Date.now();
  const results: Result[] = new Array(entries.length);
  let next = 0;
  let finished = 0;
  const worker = async () => {
    for (;;) {
      const index = next++;
      const entry = entries[index];
      if (!entry) return;
      let result: Result;
      try {
        result = await sweepOne(target, options.corpus, entry, options.longEdge);
      } catch (error) {
        result = {
          path: entry.path,
          expected: entry.expected,
          acceptable: entry.acceptable,
          why: entry.why,
          got: 'error',
          status: null,
          problems: [`the sweep itself failed on this file: ${(error as Error).stack ?? String(error)}`],
          notes: [],
          serverLog: [],
          ms: 0,
          mismatch: true,
        };
      }
      results[index] = result;
      finished += 1;
      const mark = result.mismatch ? 'MISMATCH' : 'ok';
      process.stderr.write(`[${String(finished).padStart(3)}/${entries.length}] ${mark.padEnd(8)} ${gotLabel(result).padEnd(11)} ${result.code ?? ''} ${result.path}\n`);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    await stopOwn();
  }
  printReport(results, (Date.now() - started) / 1000);
  if (options.json) {
    fs.writeFileSync(options.json, `${JSON.stringify({ corpus: options.corpus, endpoint: target.endpoint, results }, null, 2)}\n`);
    console.log(`  results written to ${options.json}`);
  }
  // A crash between two uploads is attributed to no file: it fails the sweep all the same.
  const crashes = results.filter((result) => result.problems.some((problem) => problem.startsWith('SERVER CRASH'))).length;
  if (target.deaths.size > crashes) {
    console.log(`  SERVER CRASHES not tied to a file: ${[...target.deaths.values()].join(' / ')}`);
    return 1;
  }
  return results.some((result) => result.mismatch) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`corpus-sweep: ${(error as Error).stack ?? String(error)}`);
    process.exit(2);
  },
);
