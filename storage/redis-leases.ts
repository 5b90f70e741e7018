/**
 * Leases in Redis, shared by every instance.
 *
 * - Take: `SET key token NX PX ttl`, in a script that also keeps `key:until`, the time
 *   (Redis clock) until which the current holder may still act. When the key vanished
 *   before that time (a Redis restart or failover lost it, not an expiry), the new holder
 *   waits it out before it may write: by then the old holder has either noticed the loss
 *   at its renewal, or its own `valid()` has turned false.
 * - Hold: renewed every ttl/3 by a script that checks ownership. A renewal that finds
 *   another owner (or none) aborts `lost` at once; one that fails keeps being retried, and
 *   `valid()` turns false when the last confirmed renewal is older than the ttl.
 * - Release: compare-and-delete, then a message wakes the waiters on any instance.
 */
import type { Redis } from 'ioredis';
import { delay, newToken, Waiters, type Fence, type Lease, type Leases } from './leases.ts';
import { reach } from './redis-upload-state.ts';

const NOW = `local t = redis.call('time') local now = t[1] * 1000 + math.floor(t[2] / 1000)`;

const TAKE = `
if redis.call('exists', KEYS[1]) == 1 then return -1 end
${NOW}
local wait = 0
local holder = tonumber(redis.call('get', KEYS[2]) or '0')
if holder > now then wait = holder - now end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('set', KEYS[2], now + tonumber(ARGV[2]), 'PX', tonumber(ARGV[2]) * 2)
return wait`;

const RENEW = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
${NOW}
redis.call('pexpire', KEYS[1], ARGV[2])
redis.call('set', KEYS[2], now + tonumber(ARGV[2]), 'PX', tonumber(ARGV[2]) * 2)
return 1`;

const RELEASE = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[2])
return 1`;

export interface RedisLeasesOptions {
  redis: Redis;
  /** A second connection, only for subscriptions. */
  subscriber: Redis;
  /** Prepended to every key (REDIS_KEY_PREFIX). */
  prefix: string;
}

export class RedisLeases implements Leases {
  readonly canLose = true;
  private readonly waiters = new Waiters();
  private readonly askers = new Map<string, () => void>();
  private subscribed?: Promise<unknown>;
  private readonly renewals = new Set<NodeJS.Timeout>();

  constructor(private readonly options: RedisLeasesOptions) {}

  private full(key: string): string {
    return `${this.options.prefix}${key}`;
  }

  /** One subscription per process, to the asks and the releases of every key. */
  private listen(): Promise<unknown> {
    this.subscribed ??= (async () => {
      const { subscriber, prefix } = this.options;
      const asks = `${prefix}lease-ask:`;
      const releases = `${prefix}lease-released:`;
      subscriber.on('pmessage', (_pattern: string, channel: string) => {
        if (channel.startsWith(asks)) this.askers.get(channel.slice(asks.length))?.();
        else if (channel.startsWith(releases)) this.waiters.wake(channel.slice(releases.length));
      });
      await subscriber.psubscribe(`${asks}*`, `${releases}*`);
    })();
    return this.subscribed;
  }

  async take(key: string, ttlMs: number): Promise<Lease | undefined> {
    await this.listen();
    const { redis } = this.options;
    const token = newToken();
    const full = this.full(key);
    const marker = `${full}:until`;
    const sent = Date.now();
    const wait = Number(await reach(redis.eval(TAKE, 2, full, marker, token, ttlMs)));
    if (wait < 0) return undefined;
    let confirmed = sent;
    const lost = new AbortController();
    const renewal = setInterval(() => {
      const at = Date.now();
      redis.eval(RENEW, 2, full, marker, token, ttlMs).then(
        (ours) => {
          if (Number(ours) === 1) confirmed = at;
          else lose();
        },
        () => {
          if (Date.now() - confirmed > ttlMs) lose();
        },
      );
    }, Math.max(50, Math.floor(ttlMs / 3)));
    renewal.unref();
    this.renewals.add(renewal);
    const stop = () => {
      clearInterval(renewal);
      this.renewals.delete(renewal);
    };
    const lose = () => {
      stop();
      if (!lost.signal.aborted) lost.abort(new Error(`lease ${key} lost`));
    };
    const lease: Lease = {
      key,
      token,
      lost: lost.signal,
      valid: () => !lost.signal.aborted && Date.now() - confirmed < ttlMs,
      release: async () => {
        stop();
        if (Number(await redis.eval(RELEASE, 2, full, marker, token)) === 1) {
          await redis.publish(`${this.options.prefix}lease-released:${key}`, '1');
        }
      },
    };
    if (wait > 0) {
      // the key vanished while its holder may still act: let that holder notice first
      await delay(wait);
    }
    return lease;
  }

  async holds(fence: Fence): Promise<boolean> {
    return (await reach(this.options.redis.get(this.full(fence.key)))) === fence.token;
  }

  async released(key: string, maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    await this.listen();
    const waiting = this.waiters.wait(key, maxWaitMs, signal);
    // released between the caller's try and this wait: do not sleep on it
    if ((await this.options.redis.exists(this.full(key))) === 0) this.waiters.wake(key);
    return waiting;
  }

  async askRelease(key: string): Promise<void> {
    await this.options.redis.publish(`${this.options.prefix}lease-ask:${key}`, '1');
  }

  onReleaseRequest(key: string, listener: (() => void) | undefined): void {
    if (listener) this.askers.set(key, listener);
    else this.askers.delete(key);
  }

  async close(): Promise<void> {
    for (const renewal of this.renewals) clearInterval(renewal);
    this.renewals.clear();
  }
}
