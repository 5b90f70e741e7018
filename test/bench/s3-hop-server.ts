/**
 * Benchmark 5's "Node's own limit" for a tus server on S3: a plain Node `http` server that
 * streams each PATCH body straight into one PutObject of the upload's object, nothing else.
 * It speaks just enough tus 1.0 for tus-js-client uploading in one PATCH: POST answers 201
 * with a Location, HEAD the Upload-Offset, and PATCH (the whole upload from offset 0) sends
 * the body to S3 as it arrives and answers 204 once S3 has answered. No validation beyond
 * that, no locks, no state, no gate, no finish.
 * With HOP_RECORD=1 its POST first writes the upload's record as an `<id>.info` object, as
 * @tus/s3-store and tusd's s3store do at creation (and tusgate on S3 staging), so the S3
 * server does that work too.
 * The S3 client has tusgate's settings (storage/s3-client.ts). Started as a child process by
 * test/bench/servers.ts. Environment: PORT, S3_ENDPOINT, S3_REGION, S3_BUCKET, the AWS_*
 * credentials, HOP_RECORD.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { S3 } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../../storage/s3-client.ts';
import { answer, serveTiny } from './tiny-tus.ts';

const port = Number(process.env.PORT);
const bucket = process.env.S3_BUCKET;
if (!bucket || !Number.isInteger(port)) {
  process.stderr.write('s3-hop-server: set PORT and S3_BUCKET\n');
  process.exit(2);
}
const record = process.env.HOP_RECORD === '1';
const s3 = new S3(s3ClientConfig({ endpoint: process.env.S3_ENDPOINT, region: process.env.S3_REGION ?? 'us-east-1', forcePathStyle: true, checksumMode: 'WHEN_REQUIRED' }));

/** Upload id -> its declared length and whether its object is in S3. */
const uploads = new Map<string, { length: number; offset: number }>();

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && (url.pathname === '/files' || url.pathname === '/files/')) {
    req.resume();
    const length = Number(req.headers['upload-length']);
    if (!Number.isSafeInteger(length) || length < 0) return answer(res, 400);
    const id = randomBytes(16).toString('hex');
    if (record) {
      const info = { id, size: length, offset: 0, metadata: req.headers['upload-metadata'] ?? '', creation_date: new Date().toISOString() };
      await s3.putObject({ Bucket: bucket, Key: `${id}.info`, Body: JSON.stringify(info) });
    }
    uploads.set(id, { length, offset: 0 });
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
    // only the whole upload in one PATCH: one PutObject needs its length up front
    if (Number(req.headers['upload-offset']) !== 0 || upload.offset !== 0 || Number(req.headers['content-length']) !== upload.length) {
      req.resume();
      return answer(res, 409);
    }
    await s3.putObject({ Bucket: bucket, Key: id, Body: req, ContentLength: upload.length });
    upload.offset = upload.length;
    return answer(res, 204, { 'Upload-Offset': String(upload.offset) });
  }
  req.resume();
  return answer(res, 405);
}

serveTiny('hop', port, handle);
