/**
 * The upload state in Redis, for several instances: one hash per upload (`state:<id>`,
 * fields `doc` (the record's JSON) and `prefix` (the held bytes)), so the record and its
 * prefix are written, expire and are lost together, never one without the other. Two
 * indexes: `processing` (a set) and `expiring` (a sorted set by the time the sweeper may
 * remove the upload). Every write is one script: the fence check and the write are atomic.
 */
import type { Redis } from 'ioredis';
import { isId } from './keys.ts';
import type { Fence } from './leases.ts';
import {
  accountKey,
  FINISHED,
  keepFor,
  parseState,
  StaleFenceError,
  StateUnavailableError,
  type UploadState,
  type UploadStateStore,
  unfinishedWork,
} from './upload-state.ts';

const FENCED = `if ARGV[1] ~= '' and redis.call('get', KEYS[4]) ~= ARGV[1] then return 0 end`;

// KEYS: state, processing, expiring, fence key, account's active set; ARGV: token, id, doc, ttl,
// in processing, expiry score, prefix mode, prefix, active ('add' | 'remove' | '')
const PUT = `${FENCED}
if ARGV[9] == 'add' then redis.call('sadd', KEYS[5], ARGV[2]) elseif ARGV[9] == 'remove' then redis.call('srem', KEYS[5], ARGV[2]) end
redis.call('hset', KEYS[1], 'doc', ARGV[3])
if ARGV[7] == 'set' then redis.call('hset', KEYS[1], 'prefix', ARGV[8])
elseif ARGV[7] == 'drop' then redis.call('hdel', KEYS[1], 'prefix') end
if ARGV[4] ~= '' then redis.call('pexpire', KEYS[1], ARGV[4]) else redis.call('persist', KEYS[1]) end
if ARGV[5] == '1' then redis.call('sadd', KEYS[2], ARGV[2]) else redis.call('srem', KEYS[2], ARGV[2]) end
if ARGV[6] ~= '' then redis.call('zadd', KEYS[3], ARGV[6], ARGV[2]) else redis.call('zrem', KEYS[3], ARGV[2]) end
return 1`;

const DELETE = `${FENCED}
redis.call('srem', KEYS[5], ARGV[2])
redis.call('del', KEYS[1])
redis.call('srem', KEYS[2], ARGV[2])
redis.call('zrem', KEYS[3], ARGV[2])
return 1`;

/** How many expired ids one sweep takes at most. */
const EXPIRED_BATCH = 1000;

export interface RedisStateOptions {
  redis: Redis;
  prefix: string;
  retentionMs: number;
}

/** A Redis command that fails (connection lost, Redis down) fails closed: StateUnavailableError. */
export async function reach<T>(command: Promise<T>): Promise<T> {
  try {
    return await command;
  } catch (error) {
    throw new StateUnavailableError(error);
  }
}

export class RedisUploadStateStore implements UploadStateStore {
  constructor(private readonly options: RedisStateOptions) {}

  private keys(id: string, fence?: Fence, account?: string): string[] {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    const { prefix } = this.options;
    return [
      `${prefix}state:${id}`,
      `${prefix}processing`,
      `${prefix}expiring`,
      `${prefix}${fence?.key ?? 'no-fence'}`,
      `${prefix}active:${account ? accountKey(account) : 'none'}`,
    ];
  }

  async activeCount(account: string): Promise<number> {
    return reach(this.options.redis.scard(`${this.options.prefix}active:${accountKey(account)}`));
  }

  async get(id: string): Promise<UploadState | undefined> {
    const [key] = this.keys(id);
    const raw = await reach(this.options.redis.hget(key ?? '', 'doc'));
    return raw === null ? undefined : parseState(raw);
  }

  async prefix(id: string): Promise<Buffer> {
    const [key = ''] = this.keys(id);
    const [doc, bytes] = await reach(this.options.redis.hmgetBuffer(key, 'doc', 'prefix'));
    if (!doc) return Buffer.alloc(0);
    const state = parseState(doc.toString('utf8'));
    if (state.phase !== 'pending' || state.held === 0) return Buffer.alloc(0);
    if (!bytes || bytes.length < state.held) {
      throw new Error(`upload ${id}: the held prefix has ${bytes?.length ?? 0} bytes, its record counts ${state.held}`);
    }
    return bytes.subarray(0, state.held);
  }

  async put(state: UploadState, fence?: Fence, prefix?: Buffer): Promise<void> {
    const now = Date.now();
    const keep = keepFor(state, now, this.options.retentionMs);
    const score = FINISHED.has(state.phase)
      ? this.options.retentionMs > 0
        ? String(state.updatedAt + this.options.retentionMs)
        : ''
      : state.phase !== 'processing' && state.expiresAt !== null
        ? String(state.expiresAt)
        : '';
    const mode = state.phase !== 'pending' ? 'drop' : prefix ? 'set' : 'keep';
    const active = !state.account ? '' : FINISHED.has(state.phase) ? 'remove' : 'add';
    const ok = await reach(this.options.redis.eval(
      PUT,
      5,
      ...this.keys(state.id, fence, state.account),
      fence?.token ?? '',
      state.id,
      JSON.stringify(state),
      keep === null ? '' : String(Math.max(1, Math.ceil(keep))),
      unfinishedWork(state) ? '1' : '0',
      score,
      mode,
      prefix ?? '',
      active,
    ));
    if (Number(ok) !== 1) throw new StaleFenceError(state.id);
  }

  async delete(id: string, fence?: Fence): Promise<void> {
    const account = (await this.get(id).catch(() => undefined))?.account;
    const ok = await reach(this.options.redis.eval(DELETE, 5, ...this.keys(id, fence, account), fence?.token ?? '', id));
    if (Number(ok) !== 1) throw new StaleFenceError(id);
  }

  async processing(): Promise<string[]> {
    return (await reach(this.options.redis.smembers(`${this.options.prefix}processing`))).filter(isId);
  }

  async expired(now: number): Promise<string[]> {
    const ids = await reach(this.options.redis.zrangebyscore(`${this.options.prefix}expiring`, '-inf', now, 'LIMIT', 0, EXPIRED_BATCH));
    return ids.filter(isId);
  }
}
