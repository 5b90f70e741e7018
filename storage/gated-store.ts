/**
 * The gated data store: a DataStore decorator around the staging store (FileStore or
 * S3Store) that holds back the first bytes of every upload until the gate has judged them.
 *
 * - pending: bytes are read from the request body and kept (in memory for this request,
 *   in the GateStateStore between requests) but never reach the staging store. The offset
 *   reported to clients is the number of bytes held.
 * - allowed: the held bytes are handed to the staging store followed by the untouched
 *   request stream; later PATCHes go straight through (one map lookup).
 * - refused: the upload is removed from staging, a `refused` record is written, and the
 *   refusal is thrown as `{ status_code, body }`, which @tus/server sends as the response.
 *
 * The gate itself is passed in as a function: storage does not know image formats.
 */
import { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import type { GateStateStore } from './gate-state.ts';
import type { RecordStore, UploadRecord } from './records.ts';

export interface RefusalLike extends Error {
  status_code: number;
  body: string;
  code: string;
}

export type GateDecision = { kind: 'need-more' } | { kind: 'allow' } | { kind: 'refuse'; refusal: RefusalLike };

/** Judges the first bytes of an upload; `complete` means they are all of it. */
export type Judge = (prefix: Buffer, complete: boolean) => Promise<GateDecision>;

export interface VerdictEvent {
  id: string;
  decision: GateDecision;
  /** Bytes of the upload the gate had seen when it decided. */
  bytesSeen: number;
}

export interface GatedStoreOptions {
  staging: DataStore;
  gateState: GateStateStore;
  records: RecordStore;
  judge: Judge;
  /** The error later requests get for an upload that was refused or has ended. */
  endedError: (record: UploadRecord) => RefusalLike;
  onVerdict?: (event: VerdictEvent) => void;
}

/** How many allowed verdicts are remembered in memory (they never change, so any is safe to forget). */
const ALLOWED_CACHE_SIZE = 10_000;

export class GatedStore extends DataStore {
  readonly staging: DataStore;
  private readonly allowed = new Set<string>();

  constructor(private readonly options: GatedStoreOptions) {
    super();
    this.staging = options.staging;
    this.extensions = options.staging.extensions.filter((extension) => extension !== 'concatentation');
  }

  override getExpiration(): number {
    return this.staging.getExpiration();
  }

  override async create(upload: Upload): Promise<Upload> {
    return this.staging.create(upload);
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    return this.staging.declareUploadLength(id, length);
  }

  override async deleteExpired(): Promise<number> {
    return this.staging.deleteExpired();
  }

  override async remove(id: string): Promise<void> {
    this.allowed.delete(id);
    await this.options.gateState.delete(id);
    await this.staging.remove(id);
  }

  /** Drops the staged bytes and gate state of an upload whose result is recorded. */
  async discardStaged(id: string): Promise<void> {
    this.allowed.delete(id);
    await this.options.gateState.delete(id);
    await this.staging.remove(id).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  override async getUpload(id: string): Promise<Upload> {
    if (this.allowed.has(id)) {
      try {
        return await this.staging.getUpload(id);
      } catch (error) {
        if (!isMissing(error)) throw error;
        this.allowed.delete(id); // finished elsewhere: the record tells
      }
    }
    const record = await this.options.records.get(id);
    if (record?.state === 'refused') throw this.options.endedError(record);
    if (record?.state === 'done' || record?.state === 'failed') {
      // The staged bytes are gone, but a client resuming must learn the upload is complete.
      return new Upload({ id, size: record.size, offset: record.size });
    }
    const upload = await this.staging.getUpload(id);
    const state = await this.options.gateState.get(id);
    if (state.verdict === 'allowed') {
      this.rememberAllowed(id);
    } else {
      upload.offset = state.prefix.length;
    }
    return upload;
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    if (this.allowed.has(id)) return this.staging.write(stream, id, offset);
    const record = await this.options.records.get(id);
    if (record) throw this.options.endedError(record);
    const state = await this.options.gateState.get(id);
    if (state.verdict === 'allowed') {
      this.rememberAllowed(id);
      return this.staging.write(stream, id, offset);
    }
    if (offset !== state.prefix.length) throw ERRORS.INVALID_OFFSET;
    const upload = await this.staging.getUpload(id);
    return this.judgeStream(stream, id, upload.size, state.prefix);
  }

  private async judgeStream(stream: Readable, id: string, size: number | undefined, held: Buffer): Promise<number> {
    const chunks: Buffer[] = held.length > 0 ? [held] : [];
    let seen = held.length;
    let ended = false;
    for (;;) {
      let chunk: Buffer | null;
      try {
        chunk = await nextChunk(stream);
      } catch (error) {
        if (seen > held.length) await this.options.gateState.savePrefix(id, Buffer.concat(chunks, seen));
        throw error;
      }
      if (chunk === null) {
        ended = true;
      } else {
        chunks.push(chunk);
        seen += chunk.length;
      }
      const complete = size !== undefined && seen >= size;
      const prefix = Buffer.concat(chunks, seen);
      const decision = await this.options.judge(prefix, complete);
      if (decision.kind === 'need-more') {
        if (!ended) continue;
        if (seen > held.length) await this.options.gateState.savePrefix(id, prefix);
        return seen;
      }
      this.options.onVerdict?.({ id, decision, bytesSeen: seen });
      if (decision.kind === 'refuse') {
        await this.refuse(id, decision.refusal);
        throw decision.refusal;
      }
      await this.options.gateState.markAllowed(id);
      this.rememberAllowed(id);
      // Replay the held bytes, then let the rest of the body flow on untouched.
      if (ended || stream.readableEnded) return this.staging.write(Readable.from([prefix]), id, 0);
      stream.unshift(prefix);
      return this.staging.write(stream, id, 0);
    }
  }

  private async refuse(id: string, refusal: RefusalLike): Promise<void> {
    await this.options.records.put({
      state: 'refused',
      id,
      error: { code: refusal.code, message: refusal.message },
      at: new Date().toISOString(),
    });
    await this.discardStaged(id);
  }

  private rememberAllowed(id: string): void {
    if (this.allowed.size >= ALLOWED_CACHE_SIZE) {
      const oldest = this.allowed.values().next().value;
      if (oldest !== undefined) this.allowed.delete(oldest);
    }
    this.allowed.add(id);
  }
}

function isMissing(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('status_code' in error)) return false;
  return error.status_code === 404 || error.status_code === 410;
}

/** The next chunk of a paused stream, or null at its end. Leaves the stream paused. */
async function nextChunk(stream: Readable): Promise<Buffer | null> {
  for (;;) {
    const chunk: unknown = stream.read();
    if (chunk !== null) return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    if (stream.readableEnded) return null;
    if (stream.destroyed) throw stream.errored ?? new Error('upload stream closed before its end');
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        stream.off('readable', onReady);
        stream.off('end', onReady);
        stream.off('close', onReady);
        stream.off('error', settle);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => settle();
      stream.on('readable', onReady);
      stream.on('end', onReady);
      stream.on('close', onReady);
      stream.on('error', settle);
    });
  }
}
