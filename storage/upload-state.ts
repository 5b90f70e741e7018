/**
 * The one record of an upload: which phase it is in, when it was made, until when it can
 * be resumed, and what became of it. Every other piece of state (the gate's held prefix,
 * the verdict, the result) lives in it, with one lifetime:
 *
 *   pending (held prefix) ─▶ allowed ─▶ processing ─▶ done
 *        └─▶ refused                         └─▶ failed
 *
 * - pending and allowed: kept until the upload expires (forever when expiry is off);
 * - processing: kept until the finish ends (it is redone after a crash);
 * - done, failed, refused: kept for the result retention, then removed.
 *
 * Writes may carry a fence (a lease's key and token): the store applies them only while
 * that lease is current, so a writer that lost its lock cannot write, even before it knows.
 * Stored JSON is parsed with a schema; a record that does not parse is an error, never "absent".
 */
import { mkdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { createEmptyFile, readFileIfExists, removeFile, writeFileAtomic } from './atomic-file.ts';
import { isId } from './keys.ts';
import type { Fence } from './leases.ts';

const storedError = z.object({ code: z.string(), message: z.string() });
export type StoredError = z.infer<typeof storedError>;

const artifact = z.object({
  id: z.string(),
  url: z.string(),
  key: z.string(),
  format: z.enum(['webp', 'avif']),
  width: z.number().int(),
  height: z.number().int(),
  bytes: z.number().int(),
  /** What the server received, for a client to check against what it sent. */
  original: z.object({ bytes: z.number().int(), sha256: z.string() }),
});
export type Artifact = z.infer<typeof artifact>;

const base = {
  id: z.string().refine(isId, 'not an upload id'),
  /** ms since the epoch. */
  createdAt: z.number().int(),
  /** When an unfinished upload stops being resumable (ms since the epoch); null: never. */
  expiresAt: z.number().int().nullable(),
  /** The declared Upload-Length; null while deferred. */
  size: z.number().int().nullable(),
  updatedAt: z.number().int(),
  /** Who uploads (the subject that created it), and with which profile: set by the layers above. */
  owner: z.string().optional(),
  profile: z.string().optional(),
  /** Who is charged for it (quotas, active uploads): the subject, or the client's address. */
  account: z.string().optional(),
  /** Attached by the application (a token's `meta`), and the client metadata the operator keeps. */
  meta: z.record(z.string(), z.string()).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
};

export const uploadStateSchema = z.discriminatedUnion('phase', [
  /** `held`: how many bytes the gate holds back (the offset clients see). */
  z.object({ ...base, phase: z.literal('pending'), held: z.number().int().min(0) }),
  z.object({ ...base, phase: z.literal('allowed') }),
  z.object({
    ...base,
    phase: z.literal('processing'),
    /** The artifact's server-made name, chosen once so a redo writes the same key. */
    name: z.string().refine(isId, 'not a server-made name'),
    attempts: z.number().int().min(0),
    /** When a failed attempt may be redone (ms since the epoch). */
    retryAt: z.number().int(),
  }),
  /** `staged`: the staged original still has to be dropped (a cleanup that failed is retried). */
  z.object({ ...base, phase: z.literal('done'), artifact, staged: z.boolean() }),
  z.object({ ...base, phase: z.literal('failed'), error: storedError, staged: z.boolean() }),
  z.object({ ...base, phase: z.literal('refused'), error: storedError }),
  /** The owner deleted the artifact (DELETE /uploads/:id). */
  z.object({ ...base, phase: z.literal('deleted'), artifact }),
]);

export type UploadState = z.infer<typeof uploadStateSchema>;
export type Phase = UploadState['phase'];
export type StateOf<P extends Phase> = Extract<UploadState, { phase: P }>;

export const FINISHED: ReadonlySet<Phase> = new Set<Phase>(['done', 'failed', 'refused', 'deleted']);

/** In the `processing` index: a finish to redo, or a result whose staged original is still to drop. */
export function unfinishedWork(state: UploadState): boolean {
  return state.phase === 'processing' || ((state.phase === 'done' || state.phase === 'failed') && state.staged);
}

/** Upload metadata keys the server sets at creation (a client's values for them are dropped). */
export const OWNER_KEY = 'tusgate-owner';
export const PROFILE_KEY = 'tusgate-profile';

/** The index key of an account (its active uploads): a digest, so no subject reaches a path or key as is. */
export function accountKey(account: string): string {
  return createHash('sha256').update(account).digest('hex').slice(0, 32);
}

/** The fields every phase shares (to move a record to another phase); absent ones stay absent in JSON. */
export function phaseless(state: UploadState) {
  const { id, createdAt, expiresAt, size, updatedAt, owner, profile, account, meta, metadata } = state;
  return { id, createdAt, expiresAt, size, updatedAt, owner, profile, account, meta, metadata };
}

export function parseState(raw: string): UploadState {
  return uploadStateSchema.parse(JSON.parse(raw));
}

/** How long a record must be kept from `now` (ms), or null for no limit. */
export function keepFor(state: UploadState, now: number, retentionMs: number): number | null {
  if (FINISHED.has(state.phase)) return retentionMs === 0 ? null : retentionMs;
  if (state.phase === 'processing' || state.expiresAt === null) return null;
  // an unfinished upload: until it expires, and the retention after that, so the sweeper
  // (and a client asking) still finds it; never shorter than its upload's life
  return Math.max(0, state.expiresAt - now) + (retentionMs === 0 ? 24 * 60 * 60 * 1000 : retentionMs);
}

/** A fenced write whose lease is no longer current. */
export class StaleFenceError extends Error {
  override name = 'StaleFenceError';
  constructor(readonly id: string) {
    super(`upload ${id}: the lock or claim this write was made under is no longer held`);
  }
}

/** The state store cannot be reached (Redis down): a request fails closed and may be retried. */
export class StateUnavailableError extends Error {
  override name = 'StateUnavailableError';
  constructor(cause: unknown) {
    super(`the upload state store is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface UploadStateStore {
  get(id: string): Promise<UploadState | undefined>;
  /** The bytes the gate holds back for a pending upload (empty for any other). */
  prefix(id: string): Promise<Buffer>;
  /** Writes the record (and, for `pending`, its held prefix, whose length must be `held`). */
  put(state: UploadState, fence?: Fence, prefix?: Buffer): Promise<void>;
  delete(id: string, fence?: Fence): Promise<void>;
  /** Ids with unfinished work: in `processing`, or a staged original to drop (an index: no scan of every record). */
  processing(): Promise<string[]>;
  /** How many unfinished uploads (pending, allowed, processing) an account has (an index). */
  activeCount(account: string): Promise<number>;
  /** Ids of unfinished uploads whose expiry is before `now`, and of finished ones past retention. */
  expired(now: number): Promise<string[]>;
  close?(): Promise<void>;
}

export interface FileStateOptions {
  directory: string;
  retentionMs: number;
  /** Whether a fence is current (the in-process leases). */
  holds(fence: Fence): boolean;
}

/**
 * Local files: `<id>.json` (the record) and `<id>.prefix` (the held bytes) under
 * `directory`, and an empty `processing/<id>` marker as the index of unfinished finishes.
 * Each file is replaced atomically and durably; the prefix is written before the record
 * that counts its bytes, so a crash between the two leaves extra bytes, never missing ones.
 */
export class FileUploadStateStore implements UploadStateStore {
  private readonly processingDir: string;
  /** The uploads this process marks as held, and until when (see mark). */
  private readonly marked = new Map<string, number>();

  constructor(private readonly options: FileStateOptions) {
    this.processingDir = path.join(options.directory, 'processing');
    // at once: a directory that cannot be made is the constructor's error (start-up reports it)
    mkdirSync(this.processingDir, { recursive: true });
  }

  private file(id: string, kind: 'json' | 'prefix'): string {
    if (!isId(id)) throw new Error(`not an upload id: ${id}`);
    return path.join(this.options.directory, `${id}.${kind}`);
  }

  private check(id: string, fence?: Fence): void {
    if (fence && !this.options.holds(fence)) throw new StaleFenceError(id);
  }

  async get(id: string): Promise<UploadState | undefined> {
    const raw = await readFileIfExists(this.file(id, 'json'));
    return raw ? parseState(raw.toString('utf8')) : undefined;
  }

  async prefix(id: string): Promise<Buffer> {
    const state = await this.get(id);
    if (state?.phase !== 'pending' || state.held === 0) return Buffer.alloc(0);
    const bytes = await readFileIfExists(this.file(id, 'prefix'));
    if (!bytes || bytes.length < state.held) {
      throw new Error(`upload ${id}: the held prefix has ${bytes?.length ?? 0} bytes, its record counts ${state.held}`);
    }
    return bytes.subarray(0, state.held);
  }

  async put(state: UploadState, fence?: Fence, prefix?: Buffer): Promise<void> {
    this.check(state.id, fence);
    if (state.phase === 'pending' && prefix) await writeFileAtomic(this.file(state.id, 'prefix'), prefix);
    this.check(state.id, fence);
    // the index is written before the record it points at, and dropped after: an entry
    // without its record is harmless (readers check the record), a record without its entry is not
    const marker = path.join(this.processingDir, state.id);
    if (unfinishedWork(state)) await createEmptyFile(marker);
    await writeFileAtomic(this.file(state.id, 'json'), JSON.stringify(state));
    await this.applyMark(state.id);
    if (!unfinishedWork(state)) await removeFile(marker);
    if (state.phase !== 'pending') await removeFile(this.file(state.id, 'prefix'));
    if (state.account) {
      const active = path.join(this.accountDir(state.account), state.id);
      if (FINISHED.has(state.phase)) await removeFile(active);
      else if (state.phase === 'pending' && state.held === 0) {
        await fs.mkdir(path.dirname(active), { recursive: true });
        await createEmptyFile(active);
      }
    }
  }

  private accountDir(account: string): string {
    return path.join(this.options.directory, 'accounts', accountKey(account));
  }

  async activeCount(account: string): Promise<number> {
    const entries = await fs.readdir(this.accountDir(account)).catch(() => []);
    return entries.filter(isId).length;
  }

  async delete(id: string, fence?: Fence): Promise<void> {
    this.check(id, fence);
    const state = await this.get(id).catch(() => undefined);
    if (state?.account) await removeFile(path.join(this.accountDir(state.account), id));
    await removeFile(this.file(id, 'json'));
    await removeFile(this.file(id, 'prefix'));
    await removeFile(path.join(this.processingDir, id));
  }

  /**
   * HeldMarks (upload-locker.ts) for the processes that cannot see this one's in-memory
   * leases: a held upload's record has an mtime in the future, the time its mark lapses
   * unless refreshed. A record this process rewrites while it holds the upload keeps the
   * mark (put re-applies it). No record: nothing to mark. A mark that cannot be set ages
   * out, as a lapsed lock does.
   */
  async mark(id: string, until: number): Promise<void> {
    this.marked.set(id, until);
    await this.applyMark(id);
  }

  async unmark(id: string): Promise<void> {
    if (!this.marked.delete(id)) return;
    const now = new Date();
    await fs.utimes(this.file(id, 'json'), now, now).catch(() => {});
  }

  async isMarked(id: string): Promise<boolean> {
    const stat = await fs.stat(this.file(id, 'json')).catch(() => undefined);
    return stat !== undefined && stat.mtimeMs > Date.now();
  }

  private async applyMark(id: string): Promise<void> {
    const until = this.marked.get(id);
    if (until !== undefined) await fs.utimes(this.file(id, 'json'), new Date(), new Date(until)).catch(() => {});
  }

  async processing(): Promise<string[]> {
    return (await fs.readdir(this.processingDir)).filter(isId);
  }

  /** The sweeper's scan (never on a request path): every record is read. */
  async expired(now: number): Promise<string[]> {
    const ids: string[] = [];
    for (const entry of await fs.readdir(this.options.directory)) {
      const id = entry.slice(0, -'.json'.length);
      if (!entry.endsWith('.json') || !isId(id)) continue;
      const state = await this.get(id).catch(() => undefined);
      if (state && isExpired(state, now, this.options.retentionMs)) ids.push(id);
    }
    return ids;
  }
}

/** An unfinished upload past its expiry, or a finished one past its retention. */
export function isExpired(state: UploadState, now: number, retentionMs: number): boolean {
  if (FINISHED.has(state.phase)) return retentionMs > 0 && state.updatedAt + retentionMs <= now;
  return state.phase !== 'processing' && state.expiresAt !== null && state.expiresAt <= now;
}
