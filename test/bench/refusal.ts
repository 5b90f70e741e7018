/**
 * Benchmark 2: the cost of a refusal. A 1 GiB upload of random bytes (no image at all),
 * created with a raw POST and sent as ONE PATCH by a raw Node HTTP client that streams it
 * from a generator (never more than a few chunks in memory) and, like a naive client,
 * keeps sending after the response until the server closes the connection.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileTypeFromBuffer } from 'file-type';
import { filesUnder } from '../support/server.ts';
import { create, streamedPatch, type StreamedPatch } from './clients.ts';
import { generatedBody } from './payloads.ts';
import { readIo } from './proc.ts';
import { GiB, startTusgate } from './servers.ts';
import { sleep } from './stats.ts';

export interface RefusalResult {
  uploadBytes: number;
  patch: StreamedPatch;
  /** socketBytesRead of the PATCH's request log line (null: no line). */
  serverSocketBytesRead: number | null;
  /** The error code in the response body. */
  responseCode: string | null;
  /** Bytes the server process read (sockets, files, pipes) from the PATCH's start until the connection closed. */
  serverRcharDelta: number;
  /** Every file under the data dir after the refusal, with its size. */
  files: Array<{ path: string; bytes: number }>;
  /** Bytes of upload data persisted: every file except state/ (the upload's record) and tus .json metadata. */
  persistedUploadBytes: number;
  headStatus: number | null;
}

/** 64 KiB of random bytes in which file-type finds no type (checked, not assumed). */
async function randomHead(): Promise<Buffer> {
  for (;;) {
    const head = randomBytes(64 * 1024);
    if (!(await fileTypeFromBuffer(head))) return head;
  }
}

function codeOf(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

function isMetadata(relative: string): boolean {
  return relative.startsWith(`state${path.sep}`) || relative.endsWith('.json');
}

export async function refusalBench(workDir: string): Promise<RefusalResult> {
  const dataDir = path.join(workDir, 'refusal');
  const server = await startTusgate(dataDir);
  try {
    const size = GiB;
    const url = await create(server.endpoint, size, 'photo.jpg');
    const id = url.slice(url.lastIndexOf('/') + 1);
    const body = generatedBody(size, await randomHead());
    const rchar0 = readIo(server.pid).rchar;
    const patch = await streamedPatch(url, 0, size, body.stream, 60_000);
    const rcharDelta = readIo(server.pid).rchar - rchar0;
    const line = await server
      .waitForLog((l) => l.msg === 'request' && l.method === 'PATCH' && typeof l.path === 'string' && l.path.includes(id), 5_000)
      .catch(() => undefined);
    await sleep(200);
    const files = filesUnder(dataDir).map((relative) => ({ path: relative, bytes: fs.statSync(path.join(dataDir, relative)).size }));
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } }).catch(() => undefined);
    return {
      uploadBytes: size,
      patch,
      serverSocketBytesRead: typeof line?.socketBytesRead === 'number' ? line.socketBytesRead : null,
      responseCode: codeOf(patch.body),
      serverRcharDelta: rcharDelta,
      files,
      persistedUploadBytes: files.filter((f) => !isMetadata(f.path)).reduce((sum, f) => sum + f.bytes, 0),
      headStatus: head?.status ?? null,
    };
  } finally {
    await server.stop();
  }
}
