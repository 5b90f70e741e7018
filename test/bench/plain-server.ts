/**
 * Benchmark 1's "Node's own limit": a plain Node `http` server that pipes each request body
 * into a file with stream.pipeline and fs.createWriteStream, nothing else. It speaks just
 * enough tus 1.0 for tus-js-client: POST (creation) answers 201 with a Location, HEAD the
 * Upload-Offset, PATCH writes the body at Upload-Offset and answers 204 with the new offset.
 * No validation beyond what that needs, no locks, no metadata file, no hooks: the floor the
 * receive path of any Node server sits on, on this machine.
 * Started as a child process by test/bench/servers.ts. Environment: PORT, BENCH_DIR.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { answer, serveTiny } from './tiny-tus.ts';

const port = Number(process.env.PORT);
const directory = process.env.BENCH_DIR;
if (!directory || !Number.isInteger(port)) {
  process.stderr.write('plain-server: set PORT and BENCH_DIR\n');
  process.exit(2);
}

/** Upload id -> its declared length and the bytes written so far. */
const uploads = new Map<string, { length: number; offset: number }>();

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && (url.pathname === '/files' || url.pathname === '/files/')) {
    const length = Number(req.headers['upload-length']);
    if (!Number.isSafeInteger(length) || length < 0) return answer(res, 400);
    const id = randomBytes(16).toString('hex');
    fs.closeSync(fs.openSync(path.join(directory!, id), 'w'));
    uploads.set(id, { length, offset: 0 });
    req.resume();
    return answer(res, 201, { Location: `/files/${id}` });
  }
  const id = url.pathname.startsWith('/files/') ? url.pathname.slice('/files/'.length) : '';
  const upload = uploads.get(id);
  if (!upload) {
    req.resume();
    return answer(res, 404);
  }
  if (req.method === 'HEAD') return answer(res, 200, { 'Upload-Offset': String(upload.offset), 'Upload-Length': String(upload.length), 'Cache-Control': 'no-store' });
  if (req.method === 'PATCH') {
    const offset = Number(req.headers['upload-offset']);
    if (offset !== upload.offset) {
      req.resume();
      return answer(res, 409);
    }
    const file = fs.createWriteStream(path.join(directory!, id), { flags: 'r+', start: offset });
    await pipeline(req, file);
    upload.offset = offset + file.bytesWritten;
    return answer(res, 204, { 'Upload-Offset': String(upload.offset) });
  }
  req.resume();
  return answer(res, 405);
}

serveTiny('plain', port, handle);
