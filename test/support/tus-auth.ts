/**
 * test/support/tus.ts's `upload()`, with what an authenticated client adds: fixed
 * `headers` (a cookie, a bearer token) or an `onBeforeRequest` that sets the current token
 * before every request, and `onChunkComplete` (e.g. to pause after a chunk with
 * `abort()`, then `start()` again). The promise settles on success or error only: an
 * aborted upload resumed with `start()` settles when it ends.
 */
import * as tus from 'tus-js-client';
import type { UploadOptions, UploadOutcome } from './tus.ts';

export interface AuthUploadOptions extends UploadOptions {
  headers?: Record<string, string>;
  onBeforeRequest?: (req: tus.HttpRequest) => void | Promise<void>;
  onChunkComplete?: (upload: tus.Upload, chunkSize: number, sent: number, total: number) => void;
}

function parse(text: string | undefined): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function authUpload(endpoint: string, data: Buffer, options: AuthUploadOptions = {}): Promise<UploadOutcome> {
  return new Promise((resolve) => {
    const client: tus.Upload = new tus.Upload(data, {
      endpoint,
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      metadata: options.metadata ?? { filename: 'photo.jpg', filetype: 'image/jpeg' },
      retryDelays: options.retryDelays ?? [],
      uploadUrl: options.uploadUrl,
      uploadLengthDeferred: options.uploadLengthDeferred ?? false,
      headers: options.headers ?? {},
      onBeforeRequest: options.onBeforeRequest,
      onProgress: options.onProgress,
      onChunkComplete: (chunkSize, sent, total) => options.onChunkComplete?.(client, chunkSize, sent, total),
      onUploadUrlAvailable: () => options.onUploadUrlAvailable?.(client),
      onSuccess: ({ lastResponse }) =>
        resolve({ ok: true, url: client.url, status: lastResponse.getStatus(), body: parse(lastResponse.getBody()) }),
      onError: (error) => {
        const response = error instanceof tus.DetailedError ? error.originalResponse : null;
        resolve({ ok: false, url: client.url, status: response?.getStatus() ?? null, body: parse(response?.getBody()), error });
      },
    });
    options.onStart?.(client);
    client.start();
  });
}
