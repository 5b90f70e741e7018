/**
 * The finish: once every byte of an allowed upload is staged, re-encode it, publish only
 * the artifact under a server-made key, record the result, and drop the staged original.
 *
 * Exactly once in effect, across crashes and instances:
 * - one instance finishes an upload at a time: it holds the `finish:<id>` lease, and its
 *   state writes carry that lease's fence, so a finisher that lost it cannot record;
 * - the artifact's name is chosen once and kept in the `processing` state, so a redo
 *   writes the same key (atomically) instead of a second artifact;
 * - the staged original is dropped only after the result is recorded; a cleanup that
 *   fails is logged and retried, never reported to the client as a failure;
 * - a finish that failed for a passing reason stays `processing` and is redone with
 *   exponential backoff (on start-up, on a timer, or when a status request finds it due);
 * - a staged original that vanished ends the upload `failed` with E_ORIGINAL_LOST.
 */
import { freeBuffer } from '../storage/free-buffer.ts';
import { artifactKey, newId } from '../storage/keys.ts';
import type { Lease, Leases } from '../storage/leases.ts';
import type { PublicStore } from '../storage/public-store.ts';
import { StagedOriginalMissing, type StagedFile } from '../storage/staging.ts';
import {
  phaseless,
  StaleFenceError,
  type Artifact,
  type StateOf,
  type StoredError,
  type UploadState,
  type UploadStateStore,
} from '../storage/upload-state.ts';
import { Refusal, isErrorCode, isRefusal } from './errors.ts';
import type { Policy } from './policy.ts';
import type { Slots } from './slots.ts';
import { transcode, type TranscodeOptions } from './transcode.ts';

export interface FinishLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface FinishDeps {
  states: UploadStateStore;
  leases: Leases;
  claimTtlMs: number;
  publicStore: PublicStore;
  /** The staged original as a local file (a path into the staging store, or a temporary copy). */
  stagedFile(id: string): Promise<StagedFile>;
  /** Drops the staged original of an upload whose result is recorded. */
  discardStaged(id: string): Promise<void>;
  publicBaseUrl: string;
  /** The limits and output of an upload's profile (`default` when it names none). */
  profile(name: string | undefined): { policy: Policy; transcode: TranscodeOptions };
  slots: Slots;
  /** FINISH_QUEUE_MAX: finishes running or waiting for a slot before new uploads are refused. */
  queueMax: number;
  retry: { baseMs: number; maxMs: number };
  /** How long a finish waits for another instance's result, and how often it looks. */
  waitForOthersMs: number;
  pollMs: number;
  log: FinishLog;
  /** Told of every outcome (metrics). */
  observe?: (outcome: FinishOutcome, ms: number) => void;
  /** Told of every result once it is recorded (webhooks). */
  onResult?: (state: StateOf<'done'> | StateOf<'failed'>) => Promise<void>;
}

export type FinishOutcome = { state: 'done'; artifact: Artifact; profile?: string } | { state: 'failed'; error: StoredError };

const claimKey = (id: string): string => `finish:${id}`;

export class Finisher {
  private readonly running = new Map<string, Promise<FinishOutcome>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly deps: FinishDeps) {}

  /** Finishes an upload; concurrent calls for one id share one run. */
  finish(id: string): Promise<FinishOutcome> {
    const current = this.running.get(id);
    if (current) return current;
    const run = this.run(id).finally(() => this.running.delete(id));
    this.running.set(id, run);
    return run;
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** Finishes running here or waiting for a slot. */
  get load(): number {
    return this.running.size;
  }

  /** True when a new upload would have no finish slot in sight (FINISH_QUEUE_MAX). */
  get busy(): boolean {
    return this.deps.queueMax > 0 && this.running.size >= this.deps.queueMax;
  }

  /** Starts a finish without waiting for it, if it is not running here and is due. */
  finishInBackground(id: string, state?: UploadState): void {
    if (this.running.has(id)) return;
    if (state?.phase === 'processing' && state.retryAt > Date.now()) return;
    this.finish(id).catch((error: unknown) => this.deps.log.warn({ uploadId: id, err: error }, 'finish failed; it will be retried'));
  }

  /**
   * Redoes the finishes left unfinished: in `processing`, or recorded with their staged
   * original still to drop (an index: no scan of every record). One that another instance
   * is running is waited for, not redone.
   */
  async recover(): Promise<number> {
    const ids = await this.deps.states.processing();
    for (const id of ids) {
      const state = await this.deps.states.get(id);
      if (state?.phase === 'processing') {
        this.deps.log.info({ uploadId: id, attempts: state.attempts }, 'redoing an interrupted finish');
        this.later(id, Math.max(0, state.retryAt - Date.now()));
      } else if ((state?.phase === 'done' || state?.phase === 'failed') && state.staged) {
        this.later(id, 0); // its result is recorded: only the staged original is left to drop
      }
    }
    return ids.length;
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private later(id: string, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.finishInBackground(id);
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private async run(id: string): Promise<FinishOutcome> {
    const deadline = Date.now() + this.deps.waitForOthersMs;
    for (;;) {
      const claim = await this.deps.leases.take(claimKey(id), this.deps.claimTtlMs);
      if (claim) {
        try {
          return await this.runClaimed(id, claim);
        } catch (error) {
          if (!(error instanceof StaleFenceError)) throw error;
          // another instance took the finish over: its result counts
        } finally {
          await claim.release();
        }
      }
      const outcome = outcomeOf(await this.deps.states.get(id));
      if (outcome) return outcome;
      if (Date.now() > deadline) throw new Error(`the finish of ${id} by another instance did not end in time`);
      await this.deps.leases.released(claimKey(id), this.deps.pollMs);
    }
  }

  private async runClaimed(id: string, claim: Lease): Promise<FinishOutcome> {
    const { states, log } = this.deps;
    const state = await states.get(id);
    if (!state) throw new Error(`upload ${id} has no state to finish`);
    const ended = outcomeOf(state);
    if (ended) {
      if ((state.phase === 'done' || state.phase === 'failed') && state.staged) await this.cleanup(state, claim);
      return ended;
    }
    if (state.phase === 'pending') throw new Error(`upload ${id} is not allowed yet`);
    const processing: StateOf<'processing'> =
      state.phase === 'processing'
        ? { ...state, updatedAt: Date.now() }
        : { ...state, phase: 'processing', name: newId(), attempts: 0, retryAt: Date.now(), updatedAt: Date.now() };
    await states.put(processing, claim);
    const started = Date.now();
    let result: StateOf<'done'> | StateOf<'failed'>;
    try {
      const artifact = await this.deps.slots.run(() => this.publish(processing));
      result = { ...phaseless(processing), phase: 'done', artifact, staged: true, size: artifact.original.bytes, updatedAt: Date.now() };
      log.info({ uploadId: id, ...artifact, ms: Date.now() - started }, 'artifact published');
    } catch (error) {
      const refusal = isRefusal(error)
        ? error
        : error instanceof StagedOriginalMissing
          ? new Refusal('E_ORIGINAL_LOST', "The upload's bytes were lost before they could be processed; upload the file again.")
          : undefined;
      if (!refusal) {
        await this.retryLater(processing, claim, error);
        throw error;
      }
      result = { ...phaseless(processing), phase: 'failed', error: refusal.toJSON(), staged: true, updatedAt: Date.now() };
      log.warn({ uploadId: id, code: refusal.code, reason: refusal.message, ms: Date.now() - started }, 'upload failed at finish');
    }
    await states.put(result, claim);
    await this.deps.onResult?.(result);
    await this.cleanup(result, claim);
    const outcome = outcomeOf(result);
    if (!outcome) throw new Error(`upload ${id}: a result that is no outcome`);
    this.deps.observe?.(outcome, Date.now() - started);
    return outcome;
  }

  /** A finish that failed for a passing reason (a store, a network): redone with backoff. */
  private async retryLater(state: StateOf<'processing'>, claim: Lease, error: unknown): Promise<void> {
    const { baseMs, maxMs } = this.deps.retry;
    const attempts = state.attempts + 1;
    const wait = Math.min(maxMs, baseMs * 2 ** (attempts - 1)) * (0.5 + Math.random() / 2);
    const retryAt = Date.now() + Math.round(wait);
    this.deps.log.warn({ uploadId: state.id, err: error, attempts, retryInMs: Math.round(wait) }, 'finish failed; it will be retried');
    await this.deps.states.put({ ...state, attempts, retryAt, updatedAt: Date.now() }, claim).catch(() => {});
    this.later(state.id, retryAt - Date.now());
  }

  /** Drops the staged original once the result is recorded; a failure is retried later, not reported. */
  private async cleanup(state: StateOf<'done'> | StateOf<'failed'>, claim: Lease): Promise<void> {
    try {
      await this.deps.discardStaged(state.id);
      await this.deps.states.put({ ...state, staged: false, updatedAt: Date.now() }, claim);
    } catch (error) {
      this.deps.log.warn({ uploadId: state.id, err: error }, 'the staged original could not be dropped yet; retried later');
      this.later(state.id, this.deps.retry.baseMs);
    }
  }

  private async publish({ id, name, profile }: StateOf<'processing'>): Promise<Artifact> {
    const staged = await this.deps.stagedFile(id);
    const { policy, transcode: output } = this.deps.profile(profile);
    let image;
    try {
      image = await transcode(staged.path, policy, output);
    } finally {
      await staged.release();
    }
    const key = artifactKey(name, image.format);
    const bytes = image.data.length;
    await this.deps.publicStore.put(key, image.data, image.mime);
    // The artifact (about 1 MB) is the store's now. Left to the collector it would wait for
    // a major collection as external memory: with finishes back to back, tens of MB. (Only
    // after a put that succeeded: a failed one may still have a socket write of it pending.)
    freeBuffer(image.data);
    return {
      id,
      url: `${this.deps.publicBaseUrl}/${key}`,
      key,
      format: image.format,
      width: image.width,
      height: image.height,
      bytes,
      original: { bytes: staged.bytes, sha256: staged.sha256 },
    };
  }
}


export function outcomeOf(state: UploadState | undefined): FinishOutcome | undefined {
  if (state?.phase === 'done') return { state: 'done', artifact: state.artifact, ...(state.profile ? { profile: state.profile } : {}) };
  if (state?.phase === 'failed' || state?.phase === 'refused') return { state: 'failed', error: state.error };
  if (state?.phase === 'deleted') return { state: 'failed', error: { code: 'E_GONE', message: 'The artifact of this upload was deleted by its owner.' } };
  return undefined;
}

/** The refusal a client gets for a failed finish. */
export function failureRefusal(error: StoredError): Refusal {
  return new Refusal(isErrorCode(error.code) ? error.code : 'E_INTERNAL', error.message);
}

/** What clients see of an artifact (the key is an internal detail). */
export function publicView(artifact: Artifact): Omit<Artifact, 'key'> {
  const { key: _key, ...view } = artifact;
  return view;
}
