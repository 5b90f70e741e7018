/** Process entry: read the configuration, start serving, shut down gracefully on SIGTERM/SIGINT. */
import { ConfigError, describeConfig, loadConfig, type Config } from './config.ts';
import { createLogger } from './logger.ts';
import { createServer } from 'node:http';
import { createRuntime, type Runtime } from './runtime.ts';
import { loadHooksModule } from './hooks-module.ts';
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

/** METRICS_PORT: /metrics on a port of its own (for a scraper on a private network), and nothing else there. */
async function serveMetricsPort(runtime: Runtime, config: Config): Promise<void> {
  const { registry } = runtime.core.metrics;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { code: 'E_NOT_FOUND', message: 'Only GET /metrics is served here.' } }));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.METRICS_PORT, config.HOST, () => resolve());
  });
  server.unref();
}

async function main(): Promise<void> {
  const config = readConfig();
  const log = createLogger(config.LOG_LEVEL);
  const runtime = await createRuntime(config, log, await loadHooksModule(config.HOOKS_MODULE));
  const stopSweeper = startSweeper(runtime.core, config, log);
  installShutdown(runtime, config, log, stopSweeper);
  await new Promise<void>((resolve, reject) => {
    runtime.http.once('error', reject);
    runtime.http.listen(config.PORT, config.HOST, () => resolve());
  });
  if (config.METRICS_PORT !== undefined) await serveMetricsPort(runtime, config);
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
