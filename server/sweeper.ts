/**
 * The sweep: removes unfinished uploads past their expiry (their staged bytes, S3
 * multipart uploads and parts included, and their state) and the records of finished
 * uploads past RESULT_RETENTION_MS. One instance sweeps at a time (the `sweep` lease).
 *
 * It respects the upload's other users: it takes each upload's lock without asking
 * anyone to let go (a busy upload is skipped, not interrupted), it never touches an
 * upload whose bytes are all staged or whose finish is under way, and it reads the
 * staged size from the staging store itself, not from a stale offset in its metadata.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isMissing } from '../storage/gated-store.ts';
import { isId } from '../storage/keys.ts';
import type { Lease } from '../storage/leases.ts';
import { FINISHED, isExpired } from '../storage/upload-state.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Core } from './runtime.ts';

export interface SweepResult {
  /** False when another instance holds the sweep lease. */
  ran: boolean;
  /** Unfinished uploads removed. */
  uploads: number;
  /** Records of finished uploads removed after their retention. */
  results: number;
  /** Expired uploads left alone: busy, complete, or being finished. */
  skipped: number;
}

type Outcome = 'upload' | 'result' | 'skipped' | 'none';

export async function sweepOnce(core: Core, config: Config, log: Logger): Promise<SweepResult> {
  const result: SweepResult = { ran: false, uploads: 0, results: 0, skipped: 0 };
  const lease = await core.stores.leases.take('sweep', Math.max(config.LOCK_TTL_MS, 60_000));
  if (!lease) {
    log.debug('another instance is sweeping');
    return result;
  }
  result.ran = true;
  try {
    const now = Date.now();
    const count = (outcome: Outcome) => {
      if (outcome === 'upload') result.uploads += 1;
      else if (outcome === 'result') result.results += 1;
      else if (outcome === 'skipped') result.skipped += 1;
    };
    for (const id of await core.stores.states.expired(now)) count(await underLock(core, id, () => sweepOne(core, config, id, now, log)));
    if (config.TUS_STORE === 'file' && config.UPLOAD_EXPIRES_AFTER_MS > 0) {
      for (const id of await orphans(core, config, now)) count(await underLock(core, id, () => sweepOrphan(core, id, log)));
    }
    log.info({ ...result }, 'swept expired uploads');
    return result;
  } finally {
    await lease.release();
  }
}

/** Runs `work` holding the upload's lock, or skips the upload if someone holds it. */
async function underLock(core: Core, id: string, work: (lock: Lease) => Promise<Outcome>): Promise<Outcome> {
  const lock = await core.stores.locker.tryLock(id);
  if (!lock) return 'skipped';
  try {
    return await work(lock);
  } finally {
    await core.stores.locker.unlock(id, lock);
  }
}

async function sweepOne(core: Core, config: Config, id: string, now: number, log: Logger): Promise<Outcome> {
  const { states } = core.stores;
  const state = await states.get(id);
  if (!state) {
    await states.delete(id); // an index entry whose record lapsed
    return 'none';
  }
  if (!isExpired(state, now, config.RESULT_RETENTION_MS)) return 'none';
  if (FINISHED.has(state.phase)) {
    if ((state.phase === 'done' || state.phase === 'failed') && state.staged) await core.store.discardStaged(id);
    await states.delete(id, core.stores.locker.leaseOf(id));
    return 'result';
  }
  const staged = await core.stores.staging.store.getUpload(id).catch((error: unknown) => {
    if (isMissing(error)) return undefined;
    throw error;
  });
  if (staged && staged.size !== undefined && staged.offset >= staged.size) {
    // every byte is here: the finish comes (or is redone), the upload is no longer "unfinished"
    return 'skipped';
  }
  await core.store.remove(id).catch((error: unknown) => {
    if (!isMissing(error)) throw error;
  });
  log.info({ uploadId: id, phase: state.phase, offset: staged?.offset ?? 0 }, 'upload expired');
  await core.events.emit('upload.expired', state);
  return 'upload';
}

/** Staged uploads of file staging with no state at all (a process died before writing it), past expiry. */
async function orphans(core: Core, config: Config, now: number): Promise<string[]> {
  const directory = path.join(config.dataDir, 'staging');
  const entries = await fs.readdir(directory).catch(() => []);
  const ids: string[] = [];
  for (const entry of entries) {
    const id = entry.slice(0, -'.json'.length);
    if (!entry.endsWith('.json') || !isId(id) || (await core.stores.states.get(id))) continue;
    // a record that cannot be read is not swept: only what is known to be old (or gone) is
    const upload = await core.stores.staging.store.getUpload(id).catch((error: unknown) => (isMissing(error) ? undefined : 'unreadable'));
    if (upload === 'unreadable') continue;
    const created = upload?.creation_date ? Date.parse(upload.creation_date) : 0;
    if (created + config.UPLOAD_EXPIRES_AFTER_MS <= now) ids.push(id);
  }
  return ids;
}

async function sweepOrphan(core: Core, id: string, log: Logger): Promise<Outcome> {
  if (await core.stores.states.get(id)) return 'none';
  await core.store.discardStaged(id);
  log.info({ uploadId: id }, 'expired upload without state removed');
  return 'upload';
}

/** Sweeps every SWEEP_INTERVAL_MS; returns a function that stops it. */
export function startSweeper(core: Core, config: Config, log: Logger): () => void {
  if (config.SWEEP_INTERVAL_MS === 0) return () => {};
  const timer = setInterval(() => {
    sweepOnce(core, config, log).catch((error: unknown) => log.error({ err: error }, 'sweep failed'));
  }, config.SWEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
