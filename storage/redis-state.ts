/**
 * Shared state for several instances, in Redis: the gate's held-back prefixes and verdicts,
 * and the result records. Every instance sees the same state, so a chunk can land on any.
 */
import type { Redis } from 'ioredis';
import type { GateState, GateStateStore } from './gate-state.ts';
import { isId } from './keys.ts';
import type { RecordStore, UploadRecord } from './records.ts';

function checked(id: string): string {
  if (!isId(id)) throw new Error(`not an upload id: ${id}`);
  return id;
}

export class RedisGateStateStore implements GateStateStore {
  /** `ttlMs`: how long a prefix or verdict is kept (the upload's expiry, with a margin). */
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  private key(id: string, kind: 'prefix' | 'allowed'): string {
    return `${this.prefix}gate:${checked(id)}:${kind}`;
  }

  async get(id: string): Promise<GateState> {
    const [allowed, prefix] = await this.redis.multi().exists(this.key(id, 'allowed')).getBuffer(this.key(id, 'prefix')).exec() ?? [];
    if (allowed?.[1] === 1) return { verdict: 'allowed' };
    const bytes = prefix?.[1];
    return { verdict: 'pending', prefix: Buffer.isBuffer(bytes) ? bytes : Buffer.alloc(0) };
  }

  async savePrefix(id: string, prefix: Buffer): Promise<void> {
    await this.redis.set(this.key(id, 'prefix'), prefix, 'PX', this.ttlMs);
  }

  async markAllowed(id: string): Promise<void> {
    await this.redis.multi().set(this.key(id, 'allowed'), '1', 'PX', this.ttlMs).del(this.key(id, 'prefix')).exec();
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.key(id, 'prefix'), this.key(id, 'allowed'));
  }
}

export class RedisRecordStore implements RecordStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string): string {
    return `${this.prefix}record:${checked(id)}`;
  }

  private get processingSet(): string {
    return `${this.prefix}processing`;
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const raw = await this.redis.get(this.key(id));
    return raw ? (JSON.parse(raw) as UploadRecord) : undefined;
  }

  async put(record: UploadRecord): Promise<void> {
    const tx = this.redis.multi().set(this.key(record.id), JSON.stringify(record));
    if (record.state === 'processing') tx.sadd(this.processingSet, record.id);
    else tx.srem(this.processingSet, record.id);
    await tx.exec();
  }

  async listProcessing(): Promise<string[]> {
    return (await this.redis.smembers(this.processingSet)).filter(isId);
  }
}
