/**
 * Removes expired, unfinished uploads from the staging store (including S3 multipart
 * uploads and their parts) and the gate's held prefixes. With several instances, a lease
 * in Redis lets one sweep at a time.
 */
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Core } from './runtime.ts';

export interface SweepResult {
  /** False when another instance holds the sweep lease. */
  ran: boolean;
  uploads: number;
  prefixes: number;
}

export async function sweepOnce(core: Core, config: Config, log: Logger): Promise<SweepResult> {
  if (config.UPLOAD_EXPIRES_AFTER_MS === 0) return { ran: false, uploads: 0, prefixes: 0 };
  const lease = core.stores.claim ? await core.stores.claim('sweep', Math.max(config.LOCK_TTL_MS, 60_000)) : { release: async () => {} };
  if (!lease) {
    log.debug('another instance is sweeping');
    return { ran: false, uploads: 0, prefixes: 0 };
  }
  try {
    const uploads = await core.tus.cleanUpExpiredUploads();
    const prefixes = (await core.stores.gateState.sweep?.(config.UPLOAD_EXPIRES_AFTER_MS)) ?? 0;
    log.info({ uploads, prefixes }, 'swept expired uploads');
    return { ran: true, uploads, prefixes };
  } finally {
    await lease.release();
  }
}

/** Sweeps every SWEEP_INTERVAL_MS; returns a function that stops it. */
export function startSweeper(core: Core, config: Config, log: Logger): () => void {
  if (config.SWEEP_INTERVAL_MS === 0 || config.UPLOAD_EXPIRES_AFTER_MS === 0) return () => {};
  const timer = setInterval(() => {
    sweepOnce(core, config, log).catch((error: unknown) => log.error({ err: error }, 'sweep failed'));
  }, config.SWEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
