/** Raw HTTP/1.1 requests with full control of headers and body (fetch adds headers of its own). */
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export const TUS = { 'Tus-Resumable': '1.0.0' } as const;

/** Creates an upload with a raw POST; returns its URL. */
export async function create(endpoint: string, length: number, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length), ...headers } });
  if (res.status !== 201 || typeof res.headers.location !== 'string') {
    throw new Error(`create failed: ${res.status} ${res.body}`);
  }
  return res.headers.location;
}

export function patch(url: string, offset: number, body: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  return request(url, {
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...headers },
    body,
  });
}

export function head(url: string): Promise<RawResponse> {
  return request(url, { method: 'HEAD', headers: { ...TUS } });
}

/**
 * A PATCH that declares `declaredLength` bytes but sends only `bytes`, then loses its
 * connection after `waitMs`: what a phone going through a tunnel does.
 */
export function cutPatch(url: string, offset: number, bytes: Buffer, declaredLength: number, waitMs = 300): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(declaredLength) },
    });
    req.on('error', () => resolve());
    req.write(bytes, () =>
      setTimeout(() => {
        req.destroy();
        resolve();
      }, waitMs),
    );
  });
}
