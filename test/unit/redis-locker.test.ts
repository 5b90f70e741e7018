/** The Redis Locker against a real redis-server (started by the suite's global setup). */
import { ERRORS } from '@tus/utils';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RedisLocker, takeLease } from '../../storage/redis-locker.ts';

const { redisUrl } = inject('services');
const connections: Redis[] = [];

function locker(ttlMs = 1000, acquireTimeoutMs = 5000): RedisLocker {
  const redis = new Redis(redisUrl);
  const subscriber = new Redis(redisUrl);
  connections.push(redis, subscriber);
  return new RedisLocker({ redis, subscriber, prefix: `locktest-${Math.random().toString(36).slice(2)}:`, ttlMs, acquireTimeoutMs, retryMs: 20 });
}

afterAll(() => {
  for (const connection of connections) connection.disconnect();
});

const never = () => new AbortController().signal;

describe('RedisLocker', () => {
  it('excludes a second holder and asks the first to release', async () => {
    const shared = locker();
    const first = shared.newLock('upload-1');
    let asked = 0;
    await first.lock(never(), () => {
      asked += 1;
    });
    const second = new RedisLocker(shared.options).newLock('upload-1');
    let secondHas = false;
    const waiting = second.lock(never(), () => {}).then(() => {
      secondHas = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(secondHas).toBe(false);
    expect(asked).toBe(1);
    await first.unlock();
    await waiting;
    expect(secondHas).toBe(true);
    await second.unlock();
  });

  it('hands the lock to a waiter when the holder dies (no renewal, expiry)', async () => {
    const doomed = locker(600);
    await doomed.newLock('upload-2').lock(never(), () => {});
    const survivor = locker(600);
    const prefix = doomed.options.prefix;
    const waiter = new RedisLocker({ ...survivor.options, prefix }).newLock('upload-2');
    // the holder's process dies: its connection goes, its renewals stop
    doomed.options.redis.disconnect();
    const started = Date.now();
    await waiter.lock(never(), () => {});
    expect(Date.now() - started).toBeGreaterThan(100);
    await waiter.unlock();
  });

  it('renews the lock while its holder works', async () => {
    const shared = locker(300, 400);
    const holder = shared.newLock('upload-3');
    await holder.lock(never(), () => {});
    await new Promise((resolve) => setTimeout(resolve, 900)); // three TTLs
    await expect(shared.newLock('upload-3').lock(never(), () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await holder.unlock();
  });

  it('gives up when the request is aborted', async () => {
    const shared = locker();
    const holder = shared.newLock('upload-4');
    await holder.lock(never(), () => {});
    const controller = new AbortController();
    const attempt = shared.newLock('upload-4').lock(controller.signal, () => {});
    setTimeout(() => controller.abort(), 100);
    await expect(attempt).rejects.toBe(ERRORS.ABORTED);
    await holder.unlock();
  });
});

describe('takeLease', () => {
  it('admits one holder at a time and lapses when not renewed', async () => {
    const redis = new Redis(redisUrl);
    connections.push(redis);
    const key = `lease-${Math.random()}`;
    const lease = await takeLease(redis, key, 500);
    expect(lease).toBeDefined();
    expect(await takeLease(redis, key, 500)).toBeUndefined();
    await lease?.release();
    const again = await takeLease(redis, key, 500);
    expect(again).toBeDefined();
    await again?.release();
  });
});
