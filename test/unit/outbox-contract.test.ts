/**
 * One contract for both webhook outboxes: files under a directory and Redis (a real
 * redis-server, from the suite's global setup). Each kind can also be "restarted" (a new
 * object over the same directory or key prefix, on a new connection) and have a stored
 * record damaged behind its back.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { newEvent, type WebhookEvent } from '../../storage/webhook-events.ts';
import { CorruptOutboxRecordError, FileOutbox, type Outbox } from '../../storage/outbox.ts';
import { RedisOutbox } from '../../storage/redis-outbox.ts';
import { tempDir } from '../support/server.ts';

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

interface Kind {
  /** Another object over the same store (a restarted process). */
  open(): Outbox;
  /** Replaces the stored pending record of `id` with bytes that do not parse. */
  damage(id: string, garbage: string): Promise<void>;
}

const kinds: Array<[string, () => Kind]> = [
  [
    'file',
    () => {
      const directory = tempDir('outbox-');
      return {
        open: () => new FileOutbox({ directory }),
        damage: (id, garbage) => fs.writeFile(path.join(directory, 'pending', `${id}.json`), garbage),
      };
    },
  ],
  [
    'redis',
    () => {
      const prefix = `outboxtest-${Math.random().toString(36).slice(2)}:`;
      const admin = connect();
      return {
        open: () => new RedisOutbox({ redis: connect(), prefix }),
        damage: async (id, garbage) => {
          await admin.hset(`${prefix}outbox:event:${id}`, 'event', garbage);
        },
      };
    },
  ],
];

const base = { owner: 'alice', profile: 'avatar', meta: { tenant: 't1' }, metadata: { filename: 'cat.jpg' } };

let uploads = 0;

/** An event of its own upload: an event's id names its upload and type (webhook-events.ts). */
function event(uploadId = (uploads += 1).toString(16).padStart(32, 'a')): WebhookEvent {
  return newEvent('upload.created', { uploadId, ...base });
}

describe.each(kinds)('the %s outbox', (_kind, make) => {
  it('keeps what is added, durable for the next object over the same store, and parses it back', async () => {
    const kind = make();
    const outbox = kind.open();
    const published = newEvent('artifact.published', {
      uploadId: 'b'.repeat(32),
      ...base,
      artifact: { id: 'b'.repeat(32), url: 'http://x/media/b.webp', format: 'webp', width: 10, height: 20, bytes: 300, original: { bytes: 400, sha256: 'f'.repeat(64) } },
    });
    await outbox.add(published, 1000);
    expect(await outbox.pending()).toBe(1);
    const restarted = kind.open();
    expect(await restarted.pending()).toBe(1);
    expect(await restarted.get(published.id)).toEqual({ event: published, attempts: 0, nextAt: 1000 });
    expect(await restarted.due(1000, 10)).toEqual([{ event: published, attempts: 0, nextAt: 1000 }]);
  });

  it('returns what is due, earliest first, up to the limit, and nothing scheduled later', async () => {
    const outbox = make().open();
    const [a, b, c] = [event(), event(), event()];
    if (!a || !b || !c) throw new Error('no events');
    await outbox.add(a, 3000);
    await outbox.add(b, 1000);
    await outbox.add(c, 9000);
    expect((await outbox.due(5000, 10)).map((entry) => entry.event.id)).toEqual([b.id, a.id]);
    expect((await outbox.due(5000, 1)).map((entry) => entry.event.id)).toEqual([b.id]);
    expect(await outbox.due(500, 10)).toEqual([]);
    expect(await outbox.due(5000, 0)).toEqual([]);
  });

  it('reschedules (attempts, next time, last error) without resurrecting a removed event', async () => {
    const kind = make();
    const outbox = kind.open();
    const one = event();
    await outbox.add(one, 1000);
    await outbox.reschedule(one.id, 1, 8000, 'HTTP 500');
    expect(await outbox.due(5000, 10)).toEqual([]);
    expect(await kind.open().get(one.id)).toEqual({ event: one, attempts: 1, nextAt: 8000, lastError: 'HTTP 500' });
    expect(await outbox.due(8000, 10)).toHaveLength(1);
    await outbox.remove(one.id);
    expect(await outbox.pending()).toBe(0);
    expect(await outbox.get(one.id)).toBeUndefined();
    await outbox.reschedule(one.id, 2, 9000, 'HTTP 500');
    expect(await outbox.get(one.id)).toBeUndefined();
    expect(await outbox.due(10_000, 10)).toEqual([]);
    expect(await kind.open().pending()).toBe(0);
    await outbox.remove(one.id); // twice: a no-op
  });

  it('moves a given-up event aside: kept for inspection with its final attempt, counted, no longer pending', async () => {
    const kind = make();
    const outbox = kind.open();
    const [gone, kept] = [event(), event()];
    if (!gone || !kept) throw new Error('no events');
    await outbox.add(gone, 1000);
    await outbox.add(kept, 1000);
    await outbox.dead(gone.id, { attempts: 7, lastError: 'timed out after 10 ms' });
    expect(await outbox.pending()).toBe(1);
    expect(await outbox.deadCount()).toBe(1);
    expect((await outbox.due(5000, 10)).map((entry) => entry.event.id)).toEqual([kept.id]);
    expect(await outbox.get(gone.id)).toBeUndefined();
    const restarted = kind.open();
    expect(await restarted.deadCount()).toBe(1);
    const dead = await restarted.getDead(gone.id);
    expect(dead).toMatchObject({ event: gone, attempts: 7, lastError: 'timed out after 10 ms' });
    expect(dead?.deadAt).toBeGreaterThan(Date.now() - 60_000);
    // dying again, or dying once removed: no-ops
    await outbox.dead(gone.id);
    expect(await outbox.deadCount()).toBe(1);
    await outbox.remove(kept.id);
    await outbox.dead(kept.id);
    expect(await outbox.deadCount()).toBe(1);
    expect(await outbox.getDead(kept.id)).toBeUndefined();
  });

  it('refuses an invalid event before storing it', async () => {
    const outbox = make().open();
    const bad = { ...event(), id: '../../etc/passwd' };
    await expect(outbox.add(bad)).rejects.toThrow();
    const untyped = { ...event(), type: 'upload.exploded' } as unknown as WebhookEvent;
    await expect(outbox.add(untyped)).rejects.toThrow();
    const published = { ...event(), type: 'artifact.published' } as const; // no artifact
    await expect(outbox.add(published)).rejects.toThrow();
    expect(await outbox.pending()).toBe(0);
  });

  it('a stored record that does not parse is an error naming it, moved aside so the others go on', async () => {
    const kind = make();
    const outbox = kind.open();
    const [broken, fine] = [event(), event()];
    if (!broken || !fine) throw new Error('no events');
    await outbox.add(broken, 1000);
    await outbox.add(fine, 2000);
    await kind.damage(broken.id, '{"type":"upload.created"');
    const restarted = kind.open();
    const error = await restarted.due(5000, 10).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CorruptOutboxRecordError);
    expect(error instanceof CorruptOutboxRecordError && error.id).toBe(broken.id);
    expect(await restarted.deadCount()).toBe(1);
    expect(await restarted.pending()).toBe(1);
    expect((await restarted.due(5000, 10)).map((entry) => entry.event.id)).toEqual([fine.id]);
  });
});
