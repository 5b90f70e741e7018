/** The clients: tus-js-client (Node, Buffer source, one PATCH or chunks) and raw HTTP/1.1 with a streamed body. */
import http from 'node:http';
import type { Readable } from 'node:stream';
import * as tus from 'tus-js-client';

export interface TusResult {
  ok: boolean;
  status: number | null;
  body: string;
  /** performance.now() at the final response (success or error). */
  endedAt: number;
  error?: string;
}

export interface TusOptions {
  /** Headers sent on every request (e.g. `Authorization: Bearer <token>`). */
  headers?: Record<string, string>;
  /** Bytes per PATCH; default Infinity: the whole buffer in one PATCH. */
  chunkSize?: number;
  filename?: string;
  timeoutMs?: number;
}

/** One upload with tus-js-client: POST (creation), then the buffer in PATCHes of `chunkSize` (default: one). Aborted after `timeoutMs`. */
export function tusUpload(endpoint: string, data: Buffer, options: TusOptions = {}): Promise<TusResult> {
  const { headers = {}, chunkSize = Number.POSITIVE_INFINITY, filename = 'photo.jpg', timeoutMs = 120_000 } = options;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: TusResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      void upload.abort(false);
      finish({ ok: false, status: null, body: '', endedAt: performance.now(), error: `no final response within ${timeoutMs} ms` });
    }, timeoutMs);
    const upload = new tus.Upload(data, {
      endpoint,
      chunkSize,
      headers,
      retryDelays: [],
      metadata: { filename, filetype: 'image/jpeg' },
      onSuccess: ({ lastResponse }) =>
        finish({ ok: true, status: lastResponse.getStatus(), body: lastResponse.getBody() ?? '', endedAt: performance.now() }),
      onError: (error) => {
        const response = error instanceof tus.DetailedError ? error.originalResponse : null;
        finish({
          ok: false,
          status: response?.getStatus() ?? null,
          body: response?.getBody() ?? '',
          endedAt: performance.now(),
          error: error.message.split('\n')[0],
        });
      },
    });
    upload.start();
  });
}

const TUS = { 'Tus-Resumable': '1.0.0' };

/** Creates an upload with a raw POST; answers its absolute URL. */
export function create(endpoint: string, length: number, filename = 'photo.jpg'): Promise<string> {
  const metadata = `filename ${Buffer.from(filename).toString('base64')},filetype ${Buffer.from('image/jpeg').toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      endpoint,
      { method: 'POST', agent: false, headers: { ...TUS, 'Upload-Length': String(length), 'Upload-Metadata': metadata } },
      (res) => {
        res.resume();
        res.on('end', () => {
          const location = res.headers.location;
          if (res.statusCode !== 201 || !location) reject(new Error(`create answered ${res.statusCode}`));
          else resolve(new URL(location, endpoint).toString());
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface StreamedPatch {
  status: number | null;
  body: string;
  /** ms from the request's start to the response's headers (null: no response). */
  msToResponse: number | null;
  /** ms from the request's start to the socket's close. */
  msToClose: number;
  /** Body bytes handed to the socket when the response arrived, and in all (kernel + at most one queued write). */
  clientBytesAtResponse: number | null;
  clientBytes: number;
  /** How the connection ended. */
  end: string;
}

/**
 * One PATCH whose body is `body` (streamed, never held whole), with Content-Length `length`.
 * Keeps sending after an early response, as a naive client would, until the server closes
 * the connection or the body ends; then waits for the close. `timeoutMs` bounds it all.
 */
export function streamedPatch(url: string, offset: number, length: number, body: Readable, timeoutMs = 120_000): Promise<StreamedPatch> {
  return new Promise((resolve) => {
    const started = performance.now();
    let status: number | null = null;
    let responseBody = '';
    let msToResponse: number | null = null;
    let atResponse: number | null = null;
    let maxWritten = 0;
    let end = 'closed';
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: {
        ...TUS,
        'Upload-Offset': String(offset),
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(length),
      },
    });
    const headerBytes = () => Buffer.byteLength((req as unknown as { _header?: string })._header ?? '');
    const written = () => {
      const n = req.socket?.bytesWritten;
      if (typeof n === 'number' && Number.isFinite(n)) maxWritten = Math.max(maxWritten, n);
      return Math.max(0, maxWritten - headerBytes());
    };
    const sampler = setInterval(written, 2);
    const timer = setTimeout(() => {
      end = `timeout after ${timeoutMs} ms`;
      req.destroy();
    }, timeoutMs);
    req.on('response', (res) => {
      msToResponse = performance.now() - started;
      atResponse = written();
      status = res.statusCode ?? null;
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        responseBody += text;
      });
      res.on('error', () => {});
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      end = error.code ?? error.message;
      body.destroy();
    });
    req.on('close', () => {
      written();
      clearInterval(sampler);
      clearTimeout(timer);
      body.destroy();
      resolve({
        status,
        body: responseBody,
        msToResponse,
        msToClose: performance.now() - started,
        clientBytesAtResponse: atResponse,
        clientBytes: Math.max(0, maxWritten - headerBytes()),
        end,
      });
    });
    body.pipe(req);
  });
}
