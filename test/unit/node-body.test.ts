/**
 * server/node-body.ts: the web-stream body @tus/server sees is only a placeholder for the
 * Node stream. It fails loudly when something reads it, and costs nothing until then (a
 * pull at construction would build, and throw away, an Error per request). The body limit
 * passes chunks on without keeping any of its own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyLimiter, BodyReadThroughWebStreamError, NodeBodyRequest } from '../../server/node-body.ts';

/** One POST to a server whose handler hands the placeholder body to `inspect`. */
async function withBody<T>(inspect: (body: ReadableStream | null) => Promise<T>): Promise<T> {
  let result: Promise<T> | undefined;
  const server = http.createServer((req, res) => {
    result = inspect(new NodeBodyRequest(req, res).body);
    void result.finally(() => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    await fetch(`http://127.0.0.1:${port}/files/`, { method: 'POST', body: 'abc' });
    if (!result) throw new Error('the handler did not run');
    return await result;
  } finally {
    server.close();
  }
}

describe('the placeholder body', () => {
  it('is not pulled until read, then fails with BodyReadThroughWebStreamError', async () => {
    const { before, read } = await withBody(async (body) => {
      if (!body) throw new Error('a POST has a body');
      const reader = body.getReader();
      const settled = reader.closed.then(
        () => 'closed',
        () => 'errored',
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      const before = await Promise.race([settled, Promise.resolve('pending')]);
      const read = await reader.read().then(
        () => 'read',
        (error: unknown) => error,
      );
      return { before, read };
    });
    expect(before).toBe('pending');
    expect(read).toBeInstanceOf(BodyReadThroughWebStreamError);
  });
});

describe('the body limiter', () => {
  /** A source of 64 KiB chunks that counts how many it was asked for. */
  function counted(): { source: Readable; pulled: () => number } {
    let pulled = 0;
    const source = new Readable({
      highWaterMark: 0,
      read() {
        pulled += 1;
        this.push(Buffer.alloc(64 * 1024, pulled));
      },
    });
    return { source, pulled: () => pulled };
  }

  it('keeps no chunk ahead of its reader (StreamLimiter kept one more per request on each side)', async () => {
    const { source, pulled } = counted();
    const limiter = new BodyLimiter(1 << 30);
    source.pipe(limiter);
    const reader = limiter[Symbol.asyncIterator]();
    const first = await reader.next();
    const second = await reader.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([first.value, second.value].map((chunk: unknown) => (Buffer.isBuffer(chunk) ? chunk[0] : -1))).toEqual([1, 2]);
    expect(limiter.readableLength).toBe(0);
    expect(pulled()).toBe(2);
    source.destroy();
  });

  it('fails past its limit with the 413 @tus/utils gives (the error table maps it to E_UPLOAD_TOO_LARGE)', async () => {
    const limiter = new BodyLimiter(100);
    const failed = new Promise<unknown>((resolve) => limiter.once('error', resolve));
    limiter.resume();
    limiter.write(Buffer.alloc(60));
    limiter.write(Buffer.alloc(60));
    expect(await failed).toMatchObject({ name: 'Error', status_code: 413 });
  });
});
