/**
 * One contract for both lockers: the in-process leases and the Redis leases (a real
 * redis-server, from the suite's global setup). Then what only a shared lock can suffer:
 * a lock key that vanishes under its holder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ERRORS } from '@tus/utils';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MemoryLeases, type Leases } from '../../storage/leases.ts';
import { RedisLeases } from '../../storage/redis-leases.ts';
import { RedisUploadStateStore } from '../../storage/redis-upload-state.ts';
import { lockKey, UploadLocker } from '../../storage/upload-locker.ts';
import { newId } from '../../storage/keys.ts';
import { FileUploadStateStore, StaleFenceError } from '../../storage/upload-state.ts';

const { redisUrl } = inject('services');
const connections: Redis[] = [];

afterAll(() => {
  for (const connection of connections) connection.disconnect();
});

function connect(): Redis {
  const redis = new Redis(redisUrl);
  connections.push(redis);
  return redis;
}

/** Several "processes" sharing one lock store: each call is another instance. */
type Instances = () => Leases;

const kinds: Array<[string, () => Instances]> = [
  [
    'memory',
    () => {
      const shared = new MemoryLeases();
      return () => shared;
    },
  ],
  [
    'redis',
    () => {
      const prefix = `leasetest-${Math.random().toString(36).slice(2)}:`;
      return () => new RedisLeases({ redis: connect(), subscriber: connect(), prefix });
    },
  ],
];

const never = () => new AbortController().signal;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts the attempts to take a lease: a waiter must sleep, not spin. */
function counting(leases: Leases): { leases: Leases; takes: () => number } {
  let takes = 0;
  const counted: Leases = Object.create(leases) as Leases;
  counted.take = (key, ttl) => {
    takes += 1;
    return leases.take(key, ttl);
  };
  return { leases: counted, takes: () => takes };
}

describe.each(kinds)('the %s locker', (_kind, make) => {
  it('excludes a second holder, asks the first to release, and wakes the waiter on release', async () => {
    const instance = make();
    const a = new UploadLocker(instance(), { ttlMs: 2000, timeoutMs: 5000, pollMs: 5000 });
    const { leases, takes } = counting(instance());
    const b = new UploadLocker(leases, { ttlMs: 2000, timeoutMs: 5000, pollMs: 5000 });
    const first = a.newLock('u1');
    let asked = 0;
    await first.lock(never(), () => {
      asked += 1;
    });
    const second = b.newLock('u1');
    let got = 0;
    const waiting = second.lock(never(), () => {}).then(() => (got = Date.now()));
    await sleep(400);
    expect(got).toBe(0);
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(takes()).toBeLessThanOrEqual(2); // it slept: no spinning while the holder works
    const released = Date.now();
    await first.unlock();
    await waiting;
    expect(got - released).toBeLessThan(1000); // woken by the release, not by the 5 s poll
    await second.unlock();
  });

  it('times out with ERR_LOCK_TIMEOUT and gives up on abort', async () => {
    const instance = make();
    const locker = new UploadLocker(instance(), { ttlMs: 2000, timeoutMs: 300, pollMs: 100 });
    const holder = locker.newLock('u2');
    await holder.lock(never(), () => {});
    await expect(new UploadLocker(instance(), locker.options).newLock('u2').lock(never(), () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    const controller = new AbortController();
    const attempt = new UploadLocker(instance(), { ...locker.options, timeoutMs: 5000 }).newLock('u2').lock(controller.signal, () => {});
    setTimeout(() => controller.abort(), 100);
    await expect(attempt).rejects.toBe(ERRORS.ABORTED);
    await holder.unlock();
  });

  it('fences: a token is current while held, stale once released or taken by another', async () => {
    const instance = make();
    const leases = instance();
    const first = await leases.take('k', 2000);
    expect(first).toBeDefined();
    if (!first) return;
    expect(await leases.take('k', 2000)).toBeUndefined();
    expect(await leases.holds(first)).toBe(true);
    expect(first.valid()).toBe(true);
    await first.release();
    expect(await leases.holds(first)).toBe(false);
    const second = await instance().take('k', 2000);
    expect(second && (await leases.holds(second))).toBe(true);
    expect(await leases.holds(first)).toBe(false);
    await second?.release();
  });

  it('holds a lock past its ttl while the holder lives (renewal), and tryLock never asks', async () => {
    const instance = make();
    const locker = new UploadLocker(instance(), { ttlMs: 300, timeoutMs: 200, pollMs: 50 });
    const holder = locker.newLock('u3');
    let asked = 0;
    await holder.lock(never(), () => {
      asked += 1;
    });
    await sleep(900); // three ttls
    const other = new UploadLocker(instance(), locker.options);
    expect(await other.tryLock('u3')).toBeUndefined();
    expect(asked).toBe(0);
    await expect(other.newLock('u3').lock(never(), () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await holder.unlock();
  });
});

describe('a shared lock whose key vanishes (Redis restart, failover)', () => {
  it('tells the holder at once (lost, not valid) and keeps the next holder waiting out the old ttl', async () => {
    const prefix = `leasetest-${Math.random().toString(36).slice(2)}:`;
    const admin = connect();
    const a = new RedisLeases({ redis: connect(), subscriber: connect(), prefix });
    const b = new RedisLeases({ redis: connect(), subscriber: connect(), prefix });
    const ttl = 900;
    const held = await a.take(lockKey('u4'), ttl);
    expect(held).toBeDefined();
    if (!held) return;
    await admin.del(`${prefix}${lockKey('u4')}`);
    const started = Date.now();
    const next = await b.take(lockKey('u4'), ttl);
    const waited = Date.now() - started;
    expect(next).toBeDefined();
    // the old holder learned of the loss (its renewal found another owner) before the new one could write
    expect(held.lost.aborted).toBe(true);
    expect(held.valid()).toBe(false);
    expect(waited).toBeGreaterThan(ttl / 3);
    expect(await b.holds(held)).toBe(false);
    await next?.release();
  });

  it('confirms a holder only while the key in Redis is its own, and nobody without a lease', async () => {
    const prefix = `leasetest-${Math.random().toString(36).slice(2)}:`;
    const admin = connect();
    const locker = new UploadLocker(new RedisLeases({ redis: connect(), subscriber: connect(), prefix }), { ttlMs: 60_000, timeoutMs: 100, pollMs: 50 });
    expect(await locker.confirms('u5')).toBe(false);
    const lease = await locker.tryLock('u5');
    expect(await locker.confirms('u5')).toBe(true);
    await admin.set(`${prefix}${lockKey('u5')}`, 'another-instance');
    expect(lease?.valid()).toBe(true); // its next renewal would tell it; Redis tells it now
    expect(await locker.confirms('u5')).toBe(false);
    await locker.leases.close?.();
  });

  it('rejects a state write fenced by a lost lock, in the same script as the write', async () => {
    const prefix = `statetest-${Math.random().toString(36).slice(2)}:`;
    const redis = connect();
    const leases = new RedisLeases({ redis, subscriber: connect(), prefix });
    const states = new RedisUploadStateStore({ redis, prefix, retentionMs: 0 });
    const id = 'a'.repeat(32);
    const lease = await leases.take(lockKey(id), 2000);
    if (!lease) throw new Error('no lease');
    const state = { phase: 'pending', held: 3, id, createdAt: 1, expiresAt: null, size: 10, updatedAt: 1 } as const;
    await states.put(state, lease, Buffer.from('abc'));
    expect((await states.prefix(id)).toString()).toBe('abc');
    await redis.del(`${prefix}${lockKey(id)}`);
    await expect(states.put({ ...state, held: 4 }, lease, Buffer.from('abcd'))).rejects.toBeInstanceOf(StaleFenceError);
    expect((await states.prefix(id)).toString()).toBe('abc');
    await lease.release();
    await states.delete(id);
  });
});

describe('in-process locks seen from another process of the host (no Redis: `npm run sweep` beside a server)', () => {
  /** A process: its own in-memory leases and its own state store, on the shared DATA_DIR. */
  const processOn = (directory: string, ttlMs: number) => {
    const leases = new MemoryLeases();
    const states = new FileUploadStateStore({ directory, retentionMs: 0, holds: (fence) => leases.holdsNow(fence) });
    return { states, locker: new UploadLocker(leases, { ttlMs, timeoutMs: 200, pollMs: 50, marks: states }) };
  };

  it('marks a held upload for the other process past its ttl, keeps the mark over a rewrite of its record, and clears it on release', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'tusgate-marks-'));
    try {
      const server = processOn(directory, 300);
      const sweep = processOn(directory, 300);
      const id = newId();
      const state = { phase: 'pending', held: 0, id, createdAt: 1, expiresAt: 2, size: 10, updatedAt: 1 } as const;
      await server.states.put(state);
      const free = await sweep.locker.tryLock(id);
      expect(free, 'a record nobody holds').toBeDefined();
      if (free) await sweep.locker.unlock(id, free);

      const holder = server.locker.newLock(id);
      await holder.lock(never(), () => {});
      await sleep(50);
      expect(await sweep.locker.tryLock(id), 'held by the other process').toBeUndefined();
      await server.states.put({ ...state, updatedAt: 2 }, server.locker.leaseOf(id));
      expect(await sweep.locker.tryLock(id), 'its record rewritten by the holder').toBeUndefined();
      await sleep(900); // three ttls: renewed
      expect(await sweep.locker.tryLock(id), 'past the ttl, the holder alive').toBeUndefined();
      await holder.unlock();
      expect(await sweep.locker.tryLock(id), 'released').toBeDefined();
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
