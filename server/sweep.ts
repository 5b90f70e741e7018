/** `npm run sweep`: one sweep of expired uploads, for operators and cron. Same configuration as the server. */
import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createCore } from './runtime.ts';
import { sweepOnce } from './sweeper.ts';

async function sweep(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const core = await createCore(config, log);
  try {
    const result = await sweepOnce(core, config, log);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await core.stores.close();
  }
}

// as the server's start-up (main.ts): one line that says why, no stack trace, exit 1
sweep().catch((error: unknown) => {
  process.stderr.write(`tusgate sweep: failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
