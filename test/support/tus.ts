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
    const client = new tus.Upload(data, {
      endpoint,
      chunkSize: options.chunkSize ?? Number.POSITIVE_INFINITY,
      metadata: options.metadata ?? { filename: 'photo.jpg', filetype: 'image/jpeg' },
      retryDelays: options.retryDelays ?? [],
      uploadUrl: options.uploadUrl,
      uploadLengthDeferred: options.uploadLengthDeferred ?? false,
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
