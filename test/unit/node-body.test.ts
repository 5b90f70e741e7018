/**
 * server/node-body.ts: the web-stream body @tus/server sees is only a placeholder for the
 * Node stream. It fails loudly when something reads it, and costs nothing until then (a
 * pull at construction would build, and throw away, an Error per request).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { BodyReadThroughWebStreamError, NodeBodyRequest } from '../../server/node-body.ts';

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
