/** Raw HTTP for the chaos run, every request bounded in time (a hung server must not hang the harness). */
import http from 'node:http';
import { TUS } from '../support/http.ts';

export interface Reply {
  status: number;
  header(name: string): string | undefined;
  body: string;
}

export class Timeout extends Error {}

export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        const headers = res.headers;
        resolve({
          status: res.statusCode ?? 0,
          header: (name) => {
            const value = headers[name.toLowerCase()];
            return Array.isArray(value) ? value.join(', ') : value;
          },
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Timeout(`${options.method ?? 'GET'} ${url}: no complete response within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(options.body);
  });
}

export const headUpload = (url: string, timeoutMs?: number): Promise<Reply> => send(url, { method: 'HEAD', headers: { ...TUS }, timeoutMs });

export function parseJson(text: string | undefined | null): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The `error.code` of a tusgate error body, if it is one. */
export function errorCodeOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const error = body.error;
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/**
 * A PATCH that declares the rest of the upload but sends only `bytes`, then loses its
 * connection after `waitMs` (or after `maxMs`, when the server does not read them): a
 * phone going through a tunnel. Resolves with the response status if one came first.
 */
export function cutPatch(url: string, offset: number, bytes: Buffer, declaredLength: number, waitMs: number, maxMs = 5_000): Promise<number | null> {
  return new Promise((resolve) => {
    let status: number | null = null;
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(declaredLength) },
    });
    const cut = () => {
      clearTimeout(hardStop);
      req.destroy();
      resolve(status);
    };
    const hardStop = setTimeout(cut, maxMs);
    req.on('response', (res) => {
      status = res.statusCode ?? null;
      res.resume();
    });
    req.on('error', () => {});
    req.write(bytes, () => setTimeout(cut, waitMs));
  });
}
