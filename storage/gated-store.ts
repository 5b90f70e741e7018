/**
 * The gated data store: a DataStore decorator around the staging store (FileStore or
 * S3Store) that holds back the first bytes of every upload until the gate has judged them.
 *
 * - pending: bytes are read from the request body and kept (in memory for this request,
 *   in the upload's state between requests) but never reach the staging store. The offset
 *   reported to clients is the number of bytes held.
 * - allowed: the held bytes are handed to the staging store followed by the untouched
 *   request stream; later PATCHes go straight through.
 * - refused: the upload is removed from staging, its state says `refused`, and the
 *   refusal is thrown as `{ status_code, body }`, which @tus/server sends as the response.
 *
 * Every write happens under the upload's lock and carries its fence. Missing state is
 * never read as "nothing received": it is rebuilt from the staging store (bytes there
 * were allowed, and are judged again where they can be read back), or the request fails.
 * A pending upload's offset is its held bytes, answered without asking staging for its
 * own (on S3, a listing): staging is asked while the gate reads the body of a PATCH, and
 * before the gate acts on a verdict. Bytes there under a pending state mean the state store
 * lost its later writes (a Redis that came back older): the state is repaired to allowed
 * and the PATCH refused with 409, after which the client's HEAD learns the staged offset.
 * The gate itself is passed in as a function: storage does not know image formats.
 */
import { Readable } from 'node:stream';
import { DataStore, ERRORS, Upload } from '@tus/utils';
import { fencedStream, LeaseLostError } from './fenced-stream.ts';
import type { Lease } from './leases.ts';
import type { UploadLocker } from './upload-locker.ts';
import {
  OWNER_KEY,
  phaseless,
  PROFILE_KEY,
  StaleFenceError,
  type StateOf,
  type UploadState,
  type UploadStateStore,
} from './upload-state.ts';

export interface RefusalLike extends Error {
  status_code: number;
  body: string;
  code: string;
}

export type GateDecision = { kind: 'need-more' } | { kind: 'allow' } | { kind: 'refuse'; refusal: RefusalLike };

/** Judges the first bytes of an upload (by its profile, in its state); `complete` means they are all of it. */
export type Judge = (prefix: Buffer, complete: boolean, state: UploadState) => Promise<GateDecision>;

/** What the server knows of a new upload beyond the tus request: who, with which profile. */
export type Annotation = Pick<UploadState, 'owner' | 'profile' | 'account' | 'meta' | 'metadata'>;

export interface VerdictEvent {
  id: string;
  decision: GateDecision;
  /** Bytes of the upload the gate had seen when it decided. */
  bytesSeen: number;
}

export interface GatedStoreOptions {
  staging: DataStore;
  /** Annotations waiting for their upload's creation at most (a request that failed in between leaves one). */
  maxAnnotations: number;
  /** The first `bytes` of a staged upload, where the staging store can read them back (file staging). */
  readHead?: (id: string, bytes: number) => Promise<Buffer | undefined>;
  /** The upload without its offset, where staging's getUpload costs more (StagingStore.describe). */
  describe?: (id: string) => Promise<Upload>;
  states: UploadStateStore;
  locker: UploadLocker;
  judge: Judge;
  judgeAt: JudgeSchedule;
  /** How much of a staged upload is read back to judge it again when its state is lost. */
  rejudgeBytes: number;
  /** Lease checks against the lock store happen every this many bytes (and at the end). */
  fenceCheckBytes: number;
  /** UPLOAD_EXPIRES_AFTER_MS (0: never). */
  expirationMs: number;
  /** Allowed verdicts remembered in memory (they never change). */
  cacheSize: number;
  /** The error later requests get for an upload that was refused or has ended. */
  endedError: (state: UploadState) => RefusalLike;
  /** The error a request gets when its lock was lost under it. */
  lockLostError: () => RefusalLike;
  onVerdict?: (event: VerdictEvent) => void;
  /** Told when an upload's state was missing and rebuilt from the staging store. */
  onRebuilt?: (id: string, state: UploadState) => void;
  /** Told when an upload is created (its first state is written), and when the gate refused one. */
  onCreated?: (state: UploadState) => Promise<void>;
  onRefused?: (state: UploadState) => Promise<void>;
}

/** When the gate judges a held prefix: at `first` bytes, then each time it has doubled, by at most `maxStep` bytes. */
export interface JudgeSchedule {
  first: number;
  maxStep: number;
}

function nextJudgeAt(seen: number, { first, maxStep }: JudgeSchedule): number {
  return seen < first ? first : seen + Math.min(seen, maxStep);
}

export class GatedStore extends DataStore {
  readonly staging: DataStore;
  private readonly allowed = new Set<string>();
  private readonly annotations = new Map<string, Annotation>();

  constructor(private readonly options: GatedStoreOptions) {
    super();
    this.staging = options.staging;
    this.extensions = options.staging.extensions.filter((extension) => extension !== 'concatentation');
  }

  override getExpiration(): number {
    return this.staging.getExpiration();
  }

  /** Attaches what the server knows of upload `id` to its coming creation. */
  annotate(id: string, annotation: Annotation): void {
    if (this.annotations.size >= this.options.maxAnnotations) {
      const oldest = this.annotations.keys().next().value;
      if (oldest !== undefined) this.annotations.delete(oldest);
    }
    this.annotations.set(id, annotation);
  }

  override async create(upload: Upload): Promise<Upload> {
    const annotation = this.annotations.get(upload.id) ?? {};
    this.annotations.delete(upload.id);
    const created = await this.staging.create(upload);
    const createdAt = created.creation_date ? Date.parse(created.creation_date) : Date.now();
    const state: UploadState = {
      phase: 'pending',
      held: 0,
      id: created.id,
      createdAt,
      expiresAt: this.options.expirationMs > 0 ? createdAt + this.options.expirationMs : null,
      size: created.size ?? null,
      updatedAt: Date.now(),
      ...annotation,
    };
    await this.options.states.put(state, this.lease(created.id));
    await this.options.onCreated?.(state);
    return created;
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    await this.staging.declareUploadLength(id, length);
    const state = await this.options.states.get(id);
    if (state) await this.options.states.put({ ...state, size: length, updatedAt: Date.now() }, this.lease(id));
  }

  /** Expired uploads are removed by the sweeper (server/sweeper.ts), which knows the upload state. */
  override async deleteExpired(): Promise<number> {
    return 0;
  }

  override async remove(id: string): Promise<void> {
    this.allowed.delete(id);
    await this.options.states.delete(id, this.lease(id));
    await this.staging.remove(id);
  }

  /** Drops the staged bytes of an upload (its result is recorded, or it expired). */
  async discardStaged(id: string): Promise<void> {
    this.allowed.delete(id);
    await this.staging.remove(id).catch((error: unknown) => {
      if (!isMissing(error)) throw error;
    });
  }

  /** The lease of the request working on `id` in this process, as a fence for state writes. */
  private lease(id: string): Lease | undefined {
    return this.options.locker.leaseOf(id);
  }

  /** The upload's state, rebuilt from staging when it is missing (never from a cache); undefined: no such upload. */
  async stateOf(id: string): Promise<UploadState | undefined> {
    const state = await this.options.states.get(id);
    if (state) return state;
    try {
      return await this.rebuild(id);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  override async getUpload(id: string): Promise<Upload> {
    if (this.allowed.has(id)) {
      try {
        return await this.staging.getUpload(id);
      } catch (error) {
        if (!isMissing(error)) throw error;
        this.allowed.delete(id); // finished elsewhere: the state tells
      }
    }
    const state = (await this.options.states.get(id)) ?? (await this.rebuild(id));
    switch (state.phase) {
      case 'refused':
        throw this.options.endedError(state);
      case 'done':
      case 'deleted':
        return new Upload({ id, size: state.artifact.original.bytes, offset: state.artifact.original.bytes });
      case 'failed':
      case 'processing': {
        // The staged bytes may be gone, but a client resuming must learn the upload is complete.
        const size = state.size ?? (await this.staging.getUpload(id)).offset;
        return new Upload({ id, size, offset: size });
      }
      case 'allowed': {
        const upload = await this.staging.getUpload(id);
        this.rememberAllowed(id);
        return upload;
      }
      case 'pending': {
        // what staging holds is checked by the write (see the header)
        const upload = await (this.options.describe ?? ((id: string) => this.staging.getUpload(id)))(id);
        upload.offset = state.held;
        return upload;
      }
    }
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const lease = this.lease(id);
    if (!lease) throw new Error(`write to upload ${id} without its lock`);
    const input = this.fenced(stream, lease, offset);
    try {
      if (this.allowed.has(id)) return await this.staging.write(input, id, offset);
      const state = (await this.options.states.get(id)) ?? (await this.rebuild(id));
      if (state.phase === 'allowed') {
        this.rememberAllowed(id);
        return await this.staging.write(input, id, offset);
      }
      if (state.phase !== 'pending') throw this.options.endedError(state);
      if (offset !== state.held) throw ERRORS.INVALID_OFFSET;
      // asked now, answered while the gate reads (S3: the listing the staging write then reuses)
      const staged = this.staging.getUpload(id);
      staged.catch(() => {});
      const nothingStaged = async () => {
        const upload = await staged;
        if (upload.offset === 0) return;
        // bytes in staging were allowed; the state lagged behind (see repairAllowed)
        await this.repairAllowed(state, upload);
        throw ERRORS.INVALID_OFFSET;
      };
      return await this.judgeStream(input, state, lease, nothingStaged);
    } catch (error) {
      if (error instanceof LeaseLostError || error instanceof StaleFenceError || lease.lost.aborted || !lease.valid()) {
        throw this.options.lockLostError();
      }
      throw error;
    }
  }

  /** The body, checked against the lock's lease, when a lease can be lost (several instances). */
  private fenced(stream: Readable, lease: Lease, offset: number): Readable {
    const { leases } = this.options.locker;
    if (!leases.canLose) return stream;
    const fenced = fencedStream(lease, (fence) => leases.holds(fence), offset, this.options.fenceCheckBytes);
    stream.on('error', (error) => fenced.destroy(error));
    fenced.once('error', () => stream.unpipe(fenced));
    return stream.pipe(fenced);
  }

  /** Reads and judges the body of a pending upload; `nothingStaged` is awaited before any state is written. */
  private async judgeStream(stream: Readable, state: StateOf<'pending'>, lease: Lease, nothingStaged: () => Promise<void>): Promise<number> {
    const { id } = state;
    const held = await this.options.states.prefix(id);
    const size = state.size ?? undefined;
    let chunks: Buffer[] = held.length > 0 ? [held] : [];
    let seen = held.length;
    let judgeAt = nextJudgeAt(seen, this.options.judgeAt);
    const savePrefix = async () => {
      await nothingStaged();
      if (seen === held.length) return;
      const prefix = Buffer.concat(chunks, seen);
      await this.options.states.put({ ...state, held: seen, updatedAt: Date.now() }, lease, prefix);
    };
    for (;;) {
      let chunk: Buffer | null;
      try {
        chunk = await nextChunk(stream);
      } catch (error) {
        if (!(error instanceof LeaseLostError)) await savePrefix();
        throw error;
      }
      if (chunk !== null) {
        chunks.push(chunk);
        seen += chunk.length;
      }
      const ended = chunk === null;
      const complete = size !== undefined && seen >= size;
      if (!complete && seen < judgeAt) {
        if (!ended) continue;
        await savePrefix();
        return seen;
      }
      const prefix = Buffer.concat(chunks, seen);
      chunks = [prefix];
      const decision = await this.options.judge(prefix, complete, state);
      if (decision.kind === 'need-more') {
        judgeAt = nextJudgeAt(seen, this.options.judgeAt);
        if (!ended) continue;
        await savePrefix();
        return seen;
      }
      await nothingStaged();
      this.options.onVerdict?.({ id, decision, bytesSeen: seen });
      if (decision.kind === 'refuse') {
        await this.refuse(state, decision.refusal, lease);
        throw decision.refusal;
      }
      await this.options.states.put({ ...phaseless(state), phase: 'allowed', updatedAt: Date.now() }, lease);
      this.rememberAllowed(id);
      // Replay the held bytes, then let the rest of the body flow on untouched.
      if (ended || stream.readableEnded) return this.staging.write(Readable.from([prefix]), id, 0);
      stream.unshift(prefix);
      return this.staging.write(stream, id, 0);
    }
  }

  private async refuse(state: UploadState, refusal: RefusalLike, lease?: Lease): Promise<void> {
    const refused: UploadState = { ...phaseless(state), phase: 'refused', error: { code: refusal.code, message: refusal.message }, updatedAt: Date.now() };
    await this.options.states.put(refused, lease);
    await this.discardStaged(state.id);
    await this.options.onRefused?.(refused);
  }

  /**
   * The state of an upload is missing (lost with a Redis that forgot it, or never written
   * by a process that died): rebuild it from the staging store. Bytes reach staging only
   * after the gate allowed them, so staged bytes mean `allowed`; where staging can read
   * them back, the gate judges them again. Without staged bytes, nothing of the upload is
   * kept anywhere: it is pending with nothing held, and the client resends from 0.
   */
  private async rebuild(id: string): Promise<UploadState> {
    const upload = await this.staging.getUpload(id);
    const createdAt = upload.creation_date ? Date.parse(upload.creation_date) : Date.now();
    const owner = upload.metadata?.[OWNER_KEY] ?? undefined;
    const profile = upload.metadata?.[PROFILE_KEY] ?? undefined;
    const base = {
      id,
      createdAt,
      expiresAt: this.options.expirationMs > 0 ? createdAt + this.options.expirationMs : null,
      size: upload.size ?? null,
      updatedAt: Date.now(),
      ...(owner ? { owner, account: `sub:${owner}` } : {}),
      ...(profile ? { profile } : {}),
    };
    const state: UploadState = upload.offset > 0 ? { ...base, phase: 'allowed' } : { ...base, phase: 'pending', held: 0 };
    if (upload.offset > 0) {
      const head = await this.options.readHead?.(id, Math.min(upload.offset, this.options.rejudgeBytes));
      const complete = upload.size !== undefined && head !== undefined && head.length >= upload.size;
      const decision = head ? await this.options.judge(head, complete, state) : undefined;
      if (decision?.kind === 'refuse') {
        this.options.onVerdict?.({ id, decision, bytesSeen: head?.length ?? 0 });
        await this.refuse(state, decision.refusal, this.lease(id));
        const refused = await this.options.states.get(id);
        if (!refused) throw new Error(`upload ${id}: its refusal was not recorded`);
        this.options.onRebuilt?.(id, refused);
        return refused;
      }
    }
    await this.options.states.put(state, this.lease(id));
    this.options.onRebuilt?.(id, state);
    return state;
  }

  private async repairAllowed(state: UploadState, upload: Upload): Promise<Upload> {
    const repaired: UploadState = { ...phaseless(state), phase: 'allowed', updatedAt: Date.now() };
    await this.options.states.put(repaired, this.lease(state.id));
    this.options.onRebuilt?.(state.id, repaired);
    this.rememberAllowed(state.id);
    return upload;
  }

  private rememberAllowed(id: string): void {
    if (this.options.cacheSize === 0) return;
    if (this.allowed.size >= this.options.cacheSize) {
      const oldest = this.allowed.values().next().value;
      if (oldest !== undefined) this.allowed.delete(oldest);
    }
    this.allowed.add(id);
  }
}

export function isMissing(error: unknown): boolean {
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
