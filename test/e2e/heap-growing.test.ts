/**
 * HEAP_GROWING_PERCENT: once the server listens, V8 computes each new heap limit with the fixed
 * factor 1 + percent/100; 0 leaves V8's own rule. Read from V8's own trace of the real server
 * (test/support/gc-trace.mjs forces a full collection every 100 ms and turns the trace on).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type LogLine, type RunningServer } from '../support/server.ts';

const TRACE = fileURLToPath(new URL('../support/gc-trace.mjs', import.meta.url));
const servers: RunningServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop('SIGKILL')));
});

/**
 * The growing factors of V8's latest heap limits. Node 24's V8 prints "factor 2.0 based on ..."
 * with the factor applied; Node 20's prints its dynamic factor there and the one applied at
 * the end of "Limit: ... new limit: N KB (2.0)". V8 prints through C's stdout, which a pipe
 * buffers, so lines of collections before the server listened may come after its "listening"
 * line: only the last few, of the collections forced well after it, are read.
 */
function latestFactors(logs: LogLine[], count: number): number[] {
  const lines = logs.map((line) => line.msg);
  const limits = lines.flatMap((msg) => /\[HeapController\] Limit: .* \((\d+\.\d)\)$/.exec(msg)?.[1] ?? []);
  const factors = lines.flatMap((msg) => /\[HeapController\] factor (\d+\.\d) based on/.exec(msg)?.[1] ?? []);
  const applied = (limits.length > 0 ? limits : factors).map(Number);
  expect(applied.length).toBeGreaterThan(count);
  return applied.slice(-count);
}

async function factorsOf(env: Record<string, string>): Promise<number[]> {
  const server = await startServer({ env: { NODE_OPTIONS: `--import ${TRACE}`, ...env } });
  servers.push(server);
  await sleep(1500); // about 15 forced collections after the server listened
  return latestFactors(server.logs, 3);
}

describe('HEAP_GROWING_PERCENT', () => {
  it('sets the growing factor of every heap limit once the server listens: 100 by default (2.0), as configured, and V8 its own with 0', async () => {
    const [byDefault, configured, off] = await Promise.all([factorsOf({}), factorsOf({ HEAP_GROWING_PERCENT: '150' }), factorsOf({ HEAP_GROWING_PERCENT: '0' })]);
    expect(byDefault).toEqual([2, 2, 2]);
    expect(configured).toEqual([2.5, 2.5, 2.5]);
    // V8's own factor depends on its measured speeds (between 1.1 and 4.0; 4.0 on an idle server)
    expect(off).not.toEqual([2, 2, 2]);
    expect(off).not.toEqual([2.5, 2.5, 2.5]);
  });

  it('refuses a value out of range at start-up', async () => {
    await expect(startServer({ env: { HEAP_GROWING_PERCENT: '401' } })).rejects.toThrow(/HEAP_GROWING_PERCENT/);
  });
});
