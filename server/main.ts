/** Process entry: read the configuration, start serving, shut down gracefully on SIGTERM/SIGINT. */
import { ConfigError, describeConfig, loadConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { createRuntime } from './runtime.ts';
import { installShutdown } from './shutdown.ts';
import { startSweeper } from './sweeper.ts';

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tusgate: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger(config.LOG_LEVEL);
  const runtime = createRuntime(config, log);
  const stopSweeper = startSweeper(runtime.core, config, log);
  installShutdown(runtime, config, log, stopSweeper);
  await new Promise<void>((resolve, reject) => {
    runtime.http.once('error', reject);
    runtime.http.listen(config.PORT, config.HOST, () => resolve());
  });
  runtime.state.ready = true;
  log.info({ config: describeConfig(config), ...runtime.locations }, `tusgate listening on ${runtime.locations.tus}`);
  const { leftovers, redone } = await runtime.recover();
  if (leftovers > 0) log.info({ count: leftovers }, 'removed half-written artifacts of an earlier process');
  if (redone > 0) log.info({ count: redone }, 'redoing interrupted finishes');
}

main().catch((error: unknown) => {
  process.stderr.write(`tusgate: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
