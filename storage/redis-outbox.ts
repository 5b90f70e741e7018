/**
 * The webhook outbox in Redis, shared by several instances. One hash per pending event
 * (`outbox:event:<id>`: the event's JSON and its attempts, next attempt time and last
 * error as separate fields, so a reschedule rewrites only those), a sorted set `outbox:due`
 * by next attempt time as the index a poll reads, and for the dead: the hash renamed to
 * `outbox:dead:<id>` and a sorted set `outbox:dead` by the time it was given up. Every write
 * is one MULTI or one script, so the record and its index never disagree; an add is as
 * durable as the Redis it was written to (its AOF fsync policy).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { z } from 'zod';
import { isEventId, webhookEventSchema, type WebhookEvent } from './webhook-events.ts';
import { CorruptOutboxRecordError, outboxRecordSchema, type FinalAttempt, type Outbox, type OutboxEntry } from './outbox.ts';

// KEYS: event, due; ARGV: id, attempts, nextAt, lastError
const RESCHEDULE = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'attempts', ARGV[2], 'nextAt', ARGV[3], 'lastError', ARGV[4])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
return 1`;

// KEYS: event, due, dead record, dead index; ARGV: id, deadAt, attempts and lastError ('': keep them)
const DEAD = `
if redis.call('exists', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' then redis.call('hset', KEYS[1], 'attempts', ARGV[3], 'lastError', ARGV[4]) end
redis.call('hset', KEYS[1], 'deadAt', ARGV[2])
redis.call('rename', KEYS[1], KEYS[3])
redis.call('zrem', KEYS[2], ARGV[1])
redis.call('zadd', KEYS[4], ARGV[2], ARGV[1])
return 1`;

// KEYS: event, due; ARGV: id. An index entry whose record is gone (never made by this code).
const FORGET_STRAY = `
if redis.call('exists', KEYS[1]) == 0 then redis.call('zrem', KEYS[2], ARGV[1]) end
return 1`;

const integer = z
  .string()
  .regex(/^-?\d+$/)
  .transform(Number);

const storedHash = z.object({
  event: z.string(),
  attempts: integer,
  nextAt: integer,
  lastError: z.string().optional(),
  deadAt: integer.optional(),
});

function parseHash(hash: Record<string, string>): OutboxEntry {
  const fields = storedHash.parse(hash);
  return outboxRecordSchema.parse({ ...fields, event: webhookEventSchema.parse(JSON.parse(fields.event)) });
}

/** Runs a MULTI; any command's error (or a discarded transaction) is thrown. */
async function exec(multi: ChainableCommander): Promise<void> {
  const results = await multi.exec();
  if (!results) throw new Error('webhook outbox: the transaction was discarded');
  for (const [error] of results) if (error) throw error;
}

export interface RedisOutboxOptions {
  redis: Redis;
  /** Prepended to every key (REDIS_KEY_PREFIX). */
  prefix: string;
}

export class RedisOutbox implements Outbox {
  private readonly dueKey: string;
  private readonly deadIndex: string;

  constructor(private readonly options: RedisOutboxOptions) {
    this.dueKey = `${options.prefix}outbox:due`;
    this.deadIndex = `${options.prefix}outbox:dead`;
  }

  private eventKey(id: string): string {
    if (!isEventId(id)) throw new Error(`not a webhook event id: ${id}`);
    return `${this.options.prefix}outbox:event:${id}`;
  }

  private deadKey(id: string): string {
    if (!isEventId(id)) throw new Error(`not a webhook event id: ${id}`);
    return `${this.options.prefix}outbox:dead:${id}`;
  }

  async add(event: WebhookEvent, nextAt: number = Date.now()): Promise<void> {
    const record = outboxRecordSchema.parse({ event, attempts: 0, nextAt });
    const { id } = record.event;
    await exec(
      this.options.redis
        .multi()
        .hset(this.eventKey(id), 'event', JSON.stringify(record.event), 'attempts', '0', 'nextAt', String(nextAt))
        .zadd(this.dueKey, nextAt, id),
    );
  }

  async get(id: string): Promise<OutboxEntry | undefined> {
    const hash = await this.options.redis.hgetall(this.eventKey(id));
    return Object.keys(hash).length === 0 ? undefined : parseHash(hash);
  }

  async due(now: number, limit: number): Promise<OutboxEntry[]> {
    if (limit <= 0) return [];
    const { redis } = this.options;
    const ids = (await redis.zrangebyscore(this.dueKey, '-inf', now, 'LIMIT', 0, limit)).filter(isEventId);
    if (ids.length === 0) return [];
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.eventKey(id));
    const results = (await pipeline.exec()) ?? [];
    const entries: OutboxEntry[] = [];
    for (const [index, id] of ids.entries()) {
      const [error, value] = results[index] ?? [new Error('no reply'), undefined];
      if (error) throw error;
      const hash = z.record(z.string(), z.string()).parse(value);
      if (Object.keys(hash).length === 0) {
        // removed since the range was read (or a stray index entry)
        await redis.eval(FORGET_STRAY, 2, this.eventKey(id), this.dueKey, id);
        continue;
      }
      try {
        entries.push(parseHash(hash));
      } catch (cause) {
        await this.moveToDead(id);
        throw new CorruptOutboxRecordError(id, cause);
      }
    }
    return entries;
  }

  async reschedule(id: string, attempts: number, nextAt: number, lastError: string): Promise<void> {
    await this.options.redis.eval(RESCHEDULE, 2, this.eventKey(id), this.dueKey, id, String(attempts), String(nextAt), lastError);
  }

  async remove(id: string): Promise<void> {
    await exec(this.options.redis.multi().del(this.eventKey(id)).zrem(this.dueKey, id));
  }

  async dead(id: string, final?: FinalAttempt): Promise<void> {
    await this.moveToDead(id, final);
  }

  private async moveToDead(id: string, final?: FinalAttempt): Promise<void> {
    await this.options.redis.eval(
      DEAD,
      4,
      this.eventKey(id),
      this.dueKey,
      this.deadKey(id),
      this.deadIndex,
      id,
      String(Date.now()),
      final ? String(final.attempts) : '',
      final?.lastError ?? '',
    );
  }

  async getDead(id: string): Promise<OutboxEntry | undefined> {
    const hash = await this.options.redis.hgetall(this.deadKey(id));
    return Object.keys(hash).length === 0 ? undefined : parseHash(hash);
  }

  async pending(): Promise<number> {
    return this.options.redis.zcard(this.dueKey);
  }

  async deadCount(): Promise<number> {
    return this.options.redis.zcard(this.deadIndex);
  }
}
