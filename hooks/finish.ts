/**
 * The finish: once every byte of an allowed upload is staged, re-encode it, publish only
 * the artifact under a server-made key, record the result, and drop the staged original.
 *
 * Exactly once in effect, even across a crash:
 * - the artifact's name is chosen once and kept in the `processing` record, so a redo
 *   writes the same key (atomically) instead of a second artifact;
 * - the staged original is dropped only after the result is recorded;
 * - records left in `processing` are redone at start-up and on a status request.
 */
import type { PublicStore } from '../storage/public-store.ts';
import type { Artifact, RecordStore, StoredError, UploadRecord } from '../storage/records.ts';
import { artifactKey, newId } from '../storage/keys.ts';
import { Refusal, isRefusal, type ErrorCode } from './errors.ts';
import type { Policy } from './policy.ts';
import type { Slots } from './slots.ts';
import { transcode, type TranscodeOptions } from './transcode.ts';

export interface StagedFile {
  path: string;
  bytes: number;
  sha256: string;
  release(): Promise<void>;
}

export interface FinishLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface FinishDeps {
  records: RecordStore;
  publicStore: PublicStore;
  /** The staged original as a local file (a path into the staging store, or a temporary copy). */
  stagedFile(id: string): Promise<StagedFile>;
  /** Drops the staged original and the gate's state of an upload whose result is recorded. */
  discardStaged(id: string): Promise<void>;
  publicBaseUrl: string;
  policy: Policy;
  transcode: TranscodeOptions;
  slots: Slots;
  log: FinishLog;
  /**
   * With several instances: claims the finish of an upload for this instance, or answers
   * undefined when another instance is doing it. Without it, every finish is local.
   */
  claim?: (id: string) => Promise<{ release(): Promise<void> } | undefined>;
  /** How long a finish waits for another instance's result before giving up. */
  waitForOthersMs?: number;
  /** Told of every outcome (metrics). */
  observe?: (outcome: FinishOutcome, ms: number) => void;
}

export type FinishOutcome = { state: 'done'; artifact: Artifact } | { state: 'failed'; error: StoredError };

export class Finisher {
  private readonly running = new Map<string, Promise<FinishOutcome>>();

  constructor(private readonly deps: FinishDeps) {}

  /** Finishes an upload; concurrent calls for one id share one run. */
  finish(id: string, size: number): Promise<FinishOutcome> {
    const current = this.running.get(id);
    if (current) return current;
    const run = this.run(id, size).finally(() => this.running.delete(id));
    this.running.set(id, run);
    return run;
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** Redoes every finish a previous process left in `processing`. */
  async recover(): Promise<number> {
    const ids = await this.deps.records.listProcessing();
    for (const id of ids) {
      const record = await this.deps.records.get(id);
      if (record?.state !== 'processing') continue;
      this.deps.log.info({ uploadId: id }, 'redoing an interrupted finish');
      this.finish(id, record.size).catch((error: unknown) => {
        this.deps.log.warn({ uploadId: id, err: error }, 'interrupted finish failed again');
      });
    }
    return ids.length;
  }

  private async run(id: string, size: number): Promise<FinishOutcome> {
    const claim = this.deps.claim ? await this.deps.claim(id) : { release: async () => {} };
    if (!claim) return this.awaitOther(id);
    try {
      return await this.runClaimed(id, size);
    } finally {
      await claim.release();
    }
  }

  /** Another instance is finishing this upload: wait for the result it records. */
  private async awaitOther(id: string): Promise<FinishOutcome> {
    const deadline = Date.now() + (this.deps.waitForOthersMs ?? 120_000);
    for (;;) {
      const outcome = outcomeOf(await this.deps.records.get(id));
      if (outcome) return outcome;
      if (Date.now() > deadline) throw new Error(`the finish of ${id} by another instance did not end in time`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async runClaimed(id: string, size: number): Promise<FinishOutcome> {
    const { records, log } = this.deps;
    const existing = await records.get(id);
    const ended = outcomeOf(existing);
    if (ended) {
      await this.deps.discardStaged(id);
      return ended;
    }
    const name = existing?.state === 'processing' ? existing.name : newId();
    if (!existing) {
      await records.put({ state: 'processing', id, size, name, since: new Date().toISOString() });
    }
    const started = Date.now();
    let record: UploadRecord;
    try {
      const artifact = await this.deps.slots.run(() => this.publish(id, name));
      record = { state: 'done', id, size, artifact, at: new Date().toISOString() };
      log.info({ uploadId: id, ...artifact, ms: Date.now() - started }, 'artifact published');
    } catch (error) {
      if (!isRefusal(error)) throw error; // an infrastructure failure: stays `processing`, redone later
      record = { state: 'failed', id, size, error: error.toJSON(), at: new Date().toISOString() };
      log.warn({ uploadId: id, code: error.code, reason: error.message, ms: Date.now() - started }, 'upload failed at finish');
    }
    await records.put(record);
    await this.deps.discardStaged(id);
    const outcome = outcomeOf(record) as FinishOutcome;
    this.deps.observe?.(outcome, Date.now() - started);
    return outcome;
  }

  private async publish(id: string, name: string): Promise<Artifact> {
    const staged = await this.deps.stagedFile(id);
    let image;
    try {
      image = await transcode(staged.path, this.deps.policy, this.deps.transcode);
    } finally {
      await staged.release();
    }
    const key = artifactKey(name, image.format);
    await this.deps.publicStore.put(key, image.data, image.mime);
    return {
      id,
      url: `${this.deps.publicBaseUrl}/${key}`,
      key,
      format: image.format,
      width: image.width,
      height: image.height,
      bytes: image.data.length,
      original: { bytes: staged.bytes, sha256: staged.sha256 },
    };
  }
}

function outcomeOf(record: UploadRecord | undefined): FinishOutcome | undefined {
  if (record?.state === 'done') return { state: 'done', artifact: record.artifact };
  if (record?.state === 'failed') return { state: 'failed', error: record.error };
  return undefined;
}

/** The refusal a client gets for a failed finish. */
export function failureRefusal(error: StoredError): Refusal {
  return new Refusal(error.code as ErrorCode, error.message);
}

/** What clients see of an artifact (the key is an internal detail). */
export function publicView(artifact: Artifact): Omit<Artifact, 'key'> {
  const { key: _key, ...view } = artifact;
  return view;
}
