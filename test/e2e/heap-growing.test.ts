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
 * The factors V8 used for the heap limits after the server said it listens. Node 24's V8
 * prints "factor 2.0 based on ..." with the factor applied; Node 20's prints its dynamic
 * factor there and the one applied at the end of "Limit: ... new limit: N KB (2.0)".
 */
function factorsAfterListening(logs: LogLine[]): number[] {
  const listening = logs.findIndex((line) => line.msg.startsWith('tusgate listening'));
  const after = logs.slice(listening + 1).map((line) => line.msg);
  const limits = after.flatMap((msg) => /\[HeapController\] Limit: .* \((\d+\.\d)\)$/.exec(msg)?.[1] ?? []);
  const factors = after.flatMap((msg) => /\[HeapController\] factor (\d+\.\d) based on/.exec(msg)?.[1] ?? []);
  return (limits.length > 0 ? limits : factors).map(Number);
}

async function factorsOf(env: Record<string, string>): Promise<number[]> {
  const server = await startServer({ env: { NODE_OPTIONS: `--import ${TRACE}`, ...env } });
  servers.push(server);
  await sleep(800);
  return factorsAfterListening(server.logs);
}

describe('HEAP_GROWING_PERCENT', () => {
  it('sets the growing factor of every heap limit once the server listens: 100 by default (2.0), as configured, and V8 its own with 0', async () => {
    const [byDefault, configured, off] = await Promise.all([factorsOf({}), factorsOf({ HEAP_GROWING_PERCENT: '150' }), factorsOf({ HEAP_GROWING_PERCENT: '0' })]);
    expect(byDefault.length).toBeGreaterThan(2);
    expect(new Set(byDefault.slice(1))).toEqual(new Set([2]));
    expect(new Set(configured.slice(1))).toEqual(new Set([2.5]));
    expect(off.length).toBeGreaterThan(2);
    expect(off.slice(1)).not.toContain(2.5);
    expect(off.slice(1)).not.toContain(2);
  });

  it('refuses a value out of range at start-up', async () => {
    await expect(startServer({ env: { HEAP_GROWING_PERCENT: '401' } })).rejects.toThrow(/HEAP_GROWING_PERCENT/);
  });
});
