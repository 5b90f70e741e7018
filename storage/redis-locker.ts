/**
 * A distributed lock for @tus/server's `Locker`, in Redis.
 *
 * - Acquire: `SET key token NX PX ttl`. A waiter that finds the lock taken publishes a
 *   release request on the lock's channel; the holder (any instance) hears it and calls its
 *   `requestRelease` callback, which makes @tus/server end the holder's request gracefully
 *   (the same contract as the in-memory locker). The waiter retries until it gets the lock,
 *   its request is aborted, or `acquireTimeoutMs` passes (then ERR_LOCK_TIMEOUT).
 * - Hold: the expiry is renewed every ttl/3 while the holder works; a holder that dies
 *   stops renewing, so its lock expires and a waiter takes it.
 * - Release: compare-and-delete, so a lock that expired and was taken by another is left alone.
 */
import { randomBytes } from 'node:crypto';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { ERRORS } from '@tus/utils';
import type { Redis } from 'ioredis';

const RELEASE_IF_OURS = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const RENEW_IF_OURS = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export interface RedisLockerOptions {
  /** Commands. */
  redis: Redis;
  /** A second connection, used only to subscribe to release requests. */
  subscriber: Redis;
  prefix: string;
  ttlMs: number;
  acquireTimeoutMs: number;
  retryMs?: number;
}

export class RedisLocker implements Locker {
  /** Release callbacks of the locks held in this process, by key. */
  private readonly holders = new Map<string, RequestRelease>();
  private subscribed?: Promise<unknown>;

  constructor(readonly options: RedisLockerOptions) {}

  newLock(id: string): Lock {
    return new RedisLock(this, `${this.options.prefix}lock:${id}`);
  }

  /** Subscribes once per process to every lock's release channel. */
  listen(): Promise<unknown> {
    this.subscribed ??= (async () => {
      const { subscriber, prefix } = this.options;
      subscriber.on('pmessage', (_pattern: string, channel: string) => {
        const key = channel.slice(`${prefix}release:`.length);
        void this.holders.get(key)?.();
      });
      await subscriber.psubscribe(`${prefix}release:*`);
    })();
    return this.subscribed;
  }

  hold(key: string, release: RequestRelease): void {
    this.holders.set(key, release);
  }

  drop(key: string): void {
    this.holders.delete(key);
  }

  requestRelease(key: string): Promise<number> {
    return this.options.redis.publish(`${this.options.prefix}release:${key}`, '1');
  }
}

class RedisLock implements Lock {
  private readonly token = randomBytes(16).toString('hex');
  private renewal?: NodeJS.Timeout;

  constructor(
    private readonly locker: RedisLocker,
    private readonly key: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const { redis, ttlMs, acquireTimeoutMs, retryMs = 50 } = this.locker.options;
    await this.locker.listen();
    const deadline = Date.now() + acquireTimeoutMs;
    let asked = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      const got = await redis.set(this.key, this.token, 'PX', ttlMs, 'NX');
      if (got === 'OK') break;
      if (!asked) {
        await this.locker.requestRelease(this.key);
        asked = true;
      }
      if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await sleep(retryMs, signal);
    }
    this.locker.hold(this.key, requestRelease);
    this.renewal = setInterval(() => {
      redis.eval(RENEW_IF_OURS, 1, this.key, this.token, ttlMs).catch(() => {});
    }, Math.max(100, Math.floor(ttlMs / 3)));
    this.renewal.unref();
  }

  async unlock(): Promise<void> {
    clearInterval(this.renewal);
    this.locker.drop(this.key);
    await this.locker.options.redis.eval(RELEASE_IF_OURS, 1, this.key, this.token);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export interface Lease {
  release(): Promise<void>;
}

/**
 * Takes `key` for this instance unless another holds it: the lease is renewed every ttl/3
 * until released, and lapses `ttlMs` after its holder dies.
 */
export async function takeLease(redis: Redis, key: string, ttlMs: number): Promise<Lease | undefined> {
  const token = randomBytes(16).toString('hex');
  if ((await redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
  const renewal = setInterval(() => {
    redis.eval(RENEW_IF_OURS, 1, key, token, ttlMs).catch(() => {});
  }, Math.max(100, Math.floor(ttlMs / 3)));
  renewal.unref();
  return {
    async release() {
      clearInterval(renewal);
      await redis.eval(RELEASE_IF_OURS, 1, key, token);
    },
  };
}
