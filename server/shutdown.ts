/**
 * Graceful shutdown: stop accepting, refuse new uploads, let in-flight requests (and
 * finishes) end up to SHUTDOWN_TIMEOUT_MS, then cut what is left and exit 0. Unfinished
 * uploads stay resumable: their bytes and held prefixes are on disk.
 */
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Runtime } from './runtime.ts';

/** How long after the shutdown timeout the process exits whatever is still pending. */
const HARD_EXIT_MARGIN_MS = 5_000;

export function installShutdown(runtime: Runtime, config: Config, log: Logger, stopSweeper: () => void): void {
  let started = false;
  const shutdown = (signal: string) => {
    if (started) return;
    started = true;
    runtime.state.shuttingDown = true;
    stopSweeper();
    log.info({ signal, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down');
    const deadline = setTimeout(() => {
      log.warn('shutdown timeout reached: closing the remaining connections');
      runtime.http.closeAllConnections();
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    // Last resort: nothing (a log destination that no longer drains, a store that hangs on
    // close) may keep the process from exiting.
    setTimeout(() => process.exit(0), config.SHUTDOWN_TIMEOUT_MS + HARD_EXIT_MARGIN_MS).unref();
    runtime.http.close(() => {
      clearTimeout(deadline);
      log.info('all connections closed');
      runtime.core.stores
        .close()
        .catch((error: unknown) => log.warn({ err: error }, 'closing the stores failed'))
        .finally(() => process.exit(0));
    });
    runtime.http.closeIdleConnections();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
