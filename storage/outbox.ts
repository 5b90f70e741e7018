/**
 * The webhook outbox: events waiting to be delivered, each with its attempts so far and the
 * time of its next attempt. An event is stored durably before `add` returns, so an event
 * that was enqueued survives a crash or a restart and is delivered at least once.
 *
 *   add ─▶ pending ─(2xx)─▶ remove
 *            │ └─(failure)─▶ reschedule ─▶ pending
 *            └─(gave up)─▶ dead (kept aside for inspection, counted)
 *
 * One interface, two implementations: files under a directory (below, one process) and
 * Redis (redis-outbox.ts, shared by several instances), tested by one contract. Who
 * delivers an event is not the outbox's business: the delivery takes a lease per event.
 *
 * Stored records are parsed with a schema on read. A record that does not parse is an
 * error, never "absent": `due` moves it aside to the dead records (so it stops blocking the
 * others) and throws a CorruptOutboxRecordError naming it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { isEventId, webhookEventSchema, type WebhookEvent } from './webhook-events.ts';
import { isNotFound, readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';

export const outboxRecordSchema = z.object({
  event: webhookEventSchema,
  /** Attempts made so far. */
  attempts: z.number().int().min(0),
  /** When the next attempt may be made (ms since the epoch). */
  nextAt: z.number().int(),
  /** Why the last attempt failed. */
  lastError: z.string().optional(),
  /** When it was given up (ms since the epoch); only on a dead record. */
  deadAt: z.number().int().optional(),
});

export type OutboxEntry = z.infer<typeof outboxRecordSchema>;

export function parseOutboxRecord(raw: string): OutboxEntry {
  return outboxRecordSchema.parse(JSON.parse(raw));
}

/** A stored record that does not parse; it has been moved aside to the dead records. */
export class CorruptOutboxRecordError extends Error {
  override name = 'CorruptOutboxRecordError';
  constructor(
    readonly id: string,
    cause: unknown,
  ) {
    super(`webhook outbox record ${id} does not parse and was moved to the dead records: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface FinalAttempt {
  attempts: number;
  lastError: string;
}

export interface Outbox {
  /** Stores a new event (validated), due at `nextAt` (default: now); durable when it resolves. */
  add(event: WebhookEvent, nextAt?: number): Promise<void>;
  /** The pending record of `id`, read again (a delivery checks it under its lease). */
  get(id: string): Promise<OutboxEntry | undefined>;
  /** Up to `limit` pending records whose next attempt time is at or before `now`, earliest first. */
  due(now: number, limit: number): Promise<OutboxEntry[]>;
  /** After a failed attempt. A no-op for an id no longer pending (never resurrects one). */
  reschedule(id: string, attempts: number, nextAt: number, lastError: string): Promise<void>;
  /** Delivered: forgets the event. */
  remove(id: string): Promise<void>;
  /**
   * Gave up: moves the record aside (with its final attempts and error, when given), kept
   * for inspection. A no-op for an id no longer pending.
   */
  dead(id: string, final?: FinalAttempt): Promise<void>;
  /** A dead record, for inspection. */
  getDead(id: string): Promise<OutboxEntry | undefined>;
  pending(): Promise<number>;
  deadCount(): Promise<number>;
  close?(): Promise<void>;
}

function checkId(id: string): string {
  if (!isEventId(id)) throw new Error(`not a webhook event id: ${id}`);
  return id;
}

export interface FileOutboxOptions {
  directory: string;
}

/**
 * Local files, for one process: `pending/<id>.json` and `dead/<id>.json` under `directory`,
 * each replaced atomically and durably (storage/atomic-file.ts). Which pending events are
 * due is kept in memory (id → next attempt time), built from the directory when first
 * used and kept by this object's own writes: a poll reads only the records it returns.
 * Dying writes the dead record before removing the pending one; a crash between the two
 * leaves both, and the next start keeps the dead one.
 */
export class FileOutbox implements Outbox {
  private readonly pendingDir: string;
  private readonly deadDir: string;
  private loaded?: Promise<void>;
  private readonly schedule = new Map<string, number>();
  private deadTotal = 0;

  constructor(options: FileOutboxOptions) {
    this.pendingDir = path.join(options.directory, 'pending');
    this.deadDir = path.join(options.directory, 'dead');
  }

  private file(kind: 'pending' | 'dead', id: string): string {
    return path.join(kind === 'pending' ? this.pendingDir : this.deadDir, `${checkId(id)}.json`);
  }

  private ready(): Promise<void> {
    this.loaded ??= this.load();
    return this.loaded;
  }

  private async load(): Promise<void> {
    await fs.mkdir(this.pendingDir, { recursive: true });
    await fs.mkdir(this.deadDir, { recursive: true });
    const dead = new Set(ids(await fs.readdir(this.deadDir)));
    this.deadTotal = dead.size;
    for (const id of ids(await fs.readdir(this.pendingDir))) {
      if (dead.has(id)) {
        await removeFile(this.file('pending', id));
        continue;
      }
      await this.adopt(id);
    }
  }

  /**
   * Takes in the events another process of this DATA_DIR stored (`npm run sweep` writes
   * `upload.expired` here, and this server delivers it). Runs before each look for due events.
   */
  private async adoptNew(): Promise<void> {
    for (const id of ids(await fs.readdir(this.pendingDir))) {
      if (!this.schedule.has(id)) await this.adopt(id);
    }
  }

  private async adopt(id: string): Promise<void> {
    const raw = await readFileIfExists(this.file('pending', id));
    if (!raw) return;
    // an unreadable record is due at once: `due` reads it, moves it aside and says so
    let nextAt = 0;
    try {
      nextAt = parseOutboxRecord(raw.toString('utf8')).nextAt;
    } catch {
      nextAt = 0;
    }
    this.schedule.set(id, nextAt);
  }

  private async read(kind: 'pending' | 'dead', id: string): Promise<OutboxEntry | undefined> {
    const raw = await readFileIfExists(this.file(kind, id));
    return raw ? parseOutboxRecord(raw.toString('utf8')) : undefined;
  }

  async add(event: WebhookEvent, nextAt: number = Date.now()): Promise<void> {
    await this.ready();
    const record = outboxRecordSchema.parse({ event, attempts: 0, nextAt });
    await writeFileAtomic(this.file('pending', record.event.id), JSON.stringify(record));
    this.schedule.set(record.event.id, nextAt);
  }

  async get(id: string): Promise<OutboxEntry | undefined> {
    await this.ready();
    return this.read('pending', id);
  }

  async due(now: number, limit: number): Promise<OutboxEntry[]> {
    await this.ready();
    await this.adoptNew();
    const ids = [...this.schedule]
      .filter(([, at]) => at <= now)
      .sort((a, b) => a[1] - b[1])
      .slice(0, Math.max(0, limit))
      .map(([id]) => id);
    const entries: OutboxEntry[] = [];
    for (const id of ids) {
      let raw: Buffer | undefined;
      try {
        raw = await readFileIfExists(this.file('pending', id));
        if (!raw) {
          this.schedule.delete(id);
          continue;
        }
        entries.push(parseOutboxRecord(raw.toString('utf8')));
      } catch (error) {
        if (raw === undefined) throw error;
        await this.quarantine(id, raw);
        throw new CorruptOutboxRecordError(id, error);
      }
    }
    return entries;
  }

  /** Moves an unparseable pending record, bytes as they are, to the dead records. */
  private async quarantine(id: string, raw: Buffer): Promise<void> {
    await writeFileAtomic(this.file('dead', id), raw);
    await removeFile(this.file('pending', id));
    this.schedule.delete(id);
    this.deadTotal += 1;
  }

  async reschedule(id: string, attempts: number, nextAt: number, lastError: string): Promise<void> {
    await this.ready();
    const record = await this.read('pending', id);
    if (!record) return;
    const next = outboxRecordSchema.parse({ ...record, attempts, nextAt, lastError });
    await writeFileAtomic(this.file('pending', id), JSON.stringify(next));
    this.schedule.set(id, nextAt);
  }

  async remove(id: string): Promise<void> {
    await this.ready();
    await removeFile(this.file('pending', id));
    this.schedule.delete(id);
  }

  async dead(id: string, final?: FinalAttempt): Promise<void> {
    await this.ready();
    const record = await this.read('pending', id);
    if (!record) return;
    const dead = outboxRecordSchema.parse({ ...record, ...final, deadAt: Date.now() });
    const existed = await exists(this.file('dead', id));
    await writeFileAtomic(this.file('dead', id), JSON.stringify(dead));
    await removeFile(this.file('pending', id));
    this.schedule.delete(id);
    if (!existed) this.deadTotal += 1;
  }

  async getDead(id: string): Promise<OutboxEntry | undefined> {
    await this.ready();
    return this.read('dead', id);
  }

  async pending(): Promise<number> {
    await this.ready();
    return this.schedule.size;
  }

  async deadCount(): Promise<number> {
    await this.ready();
    return this.deadTotal;
  }
}

/** The event ids among a directory's entries (temporary files and strays are skipped). */
function ids(entries: string[]): string[] {
  return entries.filter((entry) => entry.endsWith('.json')).map((entry) => entry.slice(0, -'.json'.length)).filter(isEventId);
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}
