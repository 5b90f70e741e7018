/**
 * Graceful shutdown: stop accepting, refuse new uploads, let in-flight requests (and
 * finishes) end up to SHUTDOWN_TIMEOUT_MS, then cut what is left and exit 0. Unfinished
 * uploads stay resumable: their bytes and held prefixes are on disk.
 */
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import type { Runtime } from './runtime.ts';

export function installShutdown(runtime: Runtime, config: Config, log: Logger, stopSweeper: () => void): void {
  let started = false;
  const shutdown = (signal: string) => {
    if (started) return;
    started = true;
    runtime.state.shuttingDown = true;
    stopSweeper();
    runtime.core.finisher.stop();
    log.info({ signal, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutting down');
    const deadline = setTimeout(() => {
      log.warn('shutdown timeout reached: closing the remaining connections');
      runtime.http.closeAllConnections();
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    // Last resort: nothing (a log destination that no longer drains, a store that hangs on
    // close) may keep the process from exiting.
    setTimeout(() => process.exit(0), config.SHUTDOWN_TIMEOUT_MS + config.SHUTDOWN_HARD_EXIT_MS).unref();
    runtime.http.close(() => {
      clearTimeout(deadline);
      log.info('all connections closed');
      Promise.resolve(runtime.core.delivery?.stop())
        .then(() => runtime.core.stores.close())
        .catch((error: unknown) => log.warn({ err: error }, 'closing the stores failed'))
        .finally(() => process.exit(0));
    });
    runtime.http.closeIdleConnections();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}
