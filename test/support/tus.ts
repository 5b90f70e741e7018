/** Uploads with the real tus-js-client (Node), resolving to what the client saw. */
import * as tus from 'tus-js-client';

export interface UploadOutcome {
  ok: boolean;
  /** The upload URL (Location), once created. */
  url: string | null;
  status: number | null;
  /** The last response's body, parsed when it is JSON. */
  body: unknown;
  error?: Error;
}

export interface UploadOptions {
  chunkSize?: number;
  metadata?: Record<string, string>;
  retryDelays?: number[];
  uploadUrl?: string;
  uploadLengthDeferred?: boolean;
  onProgress?: (sent: number, total: number) => void;
  onUploadUrlAvailable?: (upload: tus.Upload) => void;
  /** Gives access to the Upload object, e.g. to abort it. */
  onStart?: (upload: tus.Upload) => void;
  /** What an authenticated client adds: fixed headers (a cookie, a bearer token), or the current token set before every request. */
  headers?: Record<string, string>;
  onBeforeRequest?: (req: tus.HttpRequest) => void | Promise<void>;
  /** After each chunk (e.g. to pause with `abort()`, then `start()` again: the promise settles when the upload ends). */
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

export function upload(endpoint: string, data: Buffer, options: UploadOptions = {}): Promise<UploadOutcome> {
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
      onChunkComplete: (chunkSize, sent, total) => options.onChunkComplete?.(client, chunkSize, sent, total),
      onProgress: options.onProgress,
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

export function errorCode(outcome: UploadOutcome): string | undefined {
  const body = outcome.body as { error?: { code?: string } } | null;
  return body?.error?.code;
}
