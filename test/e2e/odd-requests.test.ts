/**
 * Odd requests, many of them: seeded random tus requests (methods, paths, lengths, offsets,
 * metadata, overrides, bodies) and racing PATCHes at random offsets, against the real server.
 * Whatever arrives, the server answers a whole response, never a 5xx (but the documented
 * 501 for concatenation), refuses with the JSON body every client can read, logs no error,
 * and keeps every upload's offset within its length. The seed makes every run send the same
 * requests; racing PATCHes still interleave as they will.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fixtures from '../support/fixtures.ts';
import { create, head, patch, request, type RawResponse } from '../support/http.ts';
import { xorshift32 } from '../support/random.ts';
import { startServer, type RunningServer } from '../support/server.ts';

let server: RunningServer;

beforeAll(async () => {
  server = await startServer({ env: { LOG_LEVEL: 'info' } });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** Seeded choices: every run makes the same ones. */
function prng(seed: number): { below(n: number): number; chance(p: number): boolean; pick<T>(items: readonly T[]): T } {
  const next = xorshift32(seed);
  const unit = () => next() / 2 ** 32;
  return {
    below: (n) => Math.floor(unit() * n),
    chance: (p) => unit() < p,
    pick: (items) => items[Math.floor(unit() * items.length)]!,
  };
}

/** What is wrong with a response, or undefined when it is one the server may give. */
function problemOf(method: string, res: RawResponse): string | undefined {
  if (res.status >= 500 && !res.body.includes('"E_NOT_IMPLEMENTED"')) return `status ${res.status}`;
  if (/\bat .+\.(ts|js):\d+/.test(res.body)) return 'a stack trace in the body';
  // a HEAD response announces the length of the body it leaves out
  const length = res.headers['content-length'];
  if (method !== 'HEAD' && length !== undefined && Buffer.byteLength(res.body) !== Number(length)) return `a body of ${Buffer.byteLength(res.body)} bytes, announced ${length}`;
  if (res.status >= 400 && method !== 'HEAD') {
    try {
      const body = res.json<{ error?: { code?: unknown; message?: unknown } }>();
      if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') return 'a refusal without { error: { code, message } }';
    } catch {
      return 'a refusal that is not JSON';
    }
  }
  return undefined;
}

const SEED = 20261201;

describe('odd requests', () => {
  it('600 random tus requests: whole responses, JSON refusals, no 5xx, no error logged', async () => {
    const random = prng(SEED);
    const ids: string[] = ['0'.repeat(32)];
    const methods = ['POST', 'PATCH', 'HEAD', 'DELETE', 'GET', 'OPTIONS', 'PUT', 'PROPFIND'];
    const lengths = ['', '0', '-1', '1', '100', '1e3', 'abc', '99999999999999999999', '1.5', ' 10', '0x10', '52428801', '4096'];
    const metadata = ['filename cGhvdG8uanBn', 'filename', 'filename !!!', 'a b,c d', ',,,', 'filetype dGV4dC9odG1s', 'x'.repeat(5000), 'filename cGhvdG8uanBn,filename cGhvdG8uanBn'];
    const bodies = ['', '\xff\xd8\xff', '<html>', '\x89PNG\r\n\x1a\n', 'GIF89a\x01\x00\x01\x00'.repeat(3)].map((text) => Buffer.from(text, 'latin1'));
    const problems: string[] = [];
    for (let i = 0; i < 600; i++) {
      const id = random.pick(ids);
      const path = random.pick([
        '/files', '/files/', `/files/${id}`, `/files/${id}/more`, '/files/../../etc/passwd', '/files/%00', `/files/${'a'.repeat(300)}`,
        `/uploads/${id}`, '/uploads/%2e%2e', '/media/../../package.json', '/media/%2e%2e/%2e%2e/package.json', '//files', '/files?x=1',
      ]);
      const method = random.pick(methods);
      const headers: Record<string, string> = {};
      if (random.chance(0.9)) headers['Tus-Resumable'] = random.pick(['1.0.0', '1.0.0', '0.2.2', '', 'x']);
      if (random.chance(0.5)) headers['Upload-Length'] = random.pick(lengths);
      if (random.chance(0.3)) headers['Upload-Defer-Length'] = random.pick(['1', '0', 'x']);
      if (random.chance(0.5)) headers['Upload-Offset'] = random.pick(lengths);
      if (random.chance(0.4)) headers['Content-Type'] = random.pick(['application/offset+octet-stream', 'text/plain', 'application/json', '']);
      if (random.chance(0.4)) headers['Upload-Metadata'] = random.pick(metadata);
      if (random.chance(0.2)) headers['X-HTTP-Method-Override'] = random.pick([...methods, 'x', '']);
      if (random.chance(0.1)) headers['Upload-Concat'] = random.pick(['partial', 'final;/files/a /files/b']);
      const body = random.chance(0.5) ? random.pick(bodies) : Buffer.alloc(0);
      // well-formed HTTP: Node's client frames no body of a GET, HEAD, DELETE or OPTIONS by itself
      if (body.length > 0) headers['Content-Length'] = String(body.length);
      const res = await request(`${server.url}${path}`, { method, headers, body }).catch((error: unknown) => {
        problems.push(`${method} ${path} ${JSON.stringify(headers)}: no whole response (${String(error)})`);
        return undefined;
      });
      if (!res) continue;
      if (res.status === 201 && typeof res.headers.location === 'string') ids.push(res.headers.location.split('/').pop() ?? '');
      const problem = problemOf(method, res);
      if (problem) problems.push(`${method} ${path} ${JSON.stringify(headers).slice(0, 300)}: ${problem}`);
    }
    expect(problems).toEqual([]);
    expect(server.process.exitCode).toBeNull();
    expect(server.logs.filter((line) => line.level >= 50)).toEqual([]);
  });

  it('racing PATCHes at random offsets on 40 uploads: offsets stay within lengths, no 5xx, no error logged', async () => {
    const random = prng(SEED + 1);
    const sources = [await fixtures.png(300, 200), await fixtures.jpeg(400, 300), fixtures.randomBytesOf(50_000)];
    const problems: string[] = [];
    const seen = new Set<number>();
    for (let u = 0; u < 40; u++) {
      const data = random.pick(sources);
      const url = await create(server.endpoint, data.length);
      const rounds = 1 + random.below(4);
      for (let round = 0; round < rounds; round++) {
        const offset = Number((await head(url)).headers['upload-offset'] ?? 0);
        const racers = Array.from({ length: 1 + random.below(3) }, () => {
          const at = random.pick([0, offset, offset, random.below(data.length)]);
          const end = random.chance(0.5) ? data.length : Math.min(data.length, at + 1 + random.below(data.length - at));
          return patch(url, at, data.subarray(at, end));
        });
        for (const res of await Promise.all(racers)) {
          seen.add(res.status);
          const problem = problemOf('PATCH', res);
          if (problem) problems.push(`${url}: ${problem}`);
        }
      }
      const final = await head(url);
      const status = await request(`${server.url}/uploads/${url.split('/').pop()}`);
      if (final.status >= 500 || status.status >= 500) problems.push(`${url}: HEAD ${final.status}, status ${status.status}`);
      if (final.status === 200 && Number(final.headers['upload-offset']) > data.length) problems.push(`${url}: offset ${final.headers['upload-offset']} over ${data.length}`);
    }
    expect(problems).toEqual([]);
    // the workload did reach the interesting answers: completions, partial writes, refusals, conflicts
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 204, 409, 415]));
    expect(server.logs.filter((line) => line.level >= 50)).toEqual([]);
  });
});
