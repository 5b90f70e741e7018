/** Process entry: read the configuration, start serving, shut down gracefully on SIGTERM/SIGINT. */
import { ConfigError, describeConfig, isLoopback, loadConfig, type Config } from './config.ts';
import { demoEnabled } from './demo.ts';
import { createLogger, type Logger } from './logger.ts';
import { createServer } from 'node:http';
import { setHeapGrowing } from './heap-growing.ts';
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

/** The first lines for a person at the terminal: where it listens, where files go, who may upload, the demo. */
function startupWords(config: Config, where: Runtime['locations']): string[] {
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
  const lines = [
    `tus uploads go to ${where.tus} (any tus 1.0 client: Uppy, tus-js-client, …); the result of one is at ${origin}/uploads/<id>`,
    `files: uploads are staged in ${where.staging} until complete; only re-encoded images are published, to ${where.public}, at ${where.publicBaseUrl}/…; upload state in ${where.sharedState}`,
  ];
  if (config.authMode === 'none') {
    lines.push(
      isLoopback(config.HOST)
        ? `auth is off (AUTH_MODE=none): anyone who reaches ${config.HOST}:${config.PORT} may upload, which on a loopback address means only programs on this machine; set AUTH_MODE=jwt or hook before listening on another address`
        : `auth is off (AUTH_MODE=none, as set): anyone who reaches ${config.HOST}:${config.PORT} may upload`,
    );
  } else {
    lines.push(`auth is on (AUTH_MODE=${config.authMode}): every upload request needs a credential (see README "Who may upload")`);
  }
  lines.push(
    demoEnabled(config)
      ? `demo page: open ${origin}/ in a browser to upload images with Uppy and see what the server publishes`
      : `demo page off (AUTH_MODE=${config.authMode}${isLoopback(config.HOST) ? '' : `, HOST=${config.HOST}`}); DEMO=1 serves it at ${origin}/`,
  );
  return lines;
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
  setHeapGrowing(config.HEAP_GROWING_PERCENT);
  log.info({ config: describeConfig(config), ...runtime.locations }, `tusgate listening on ${runtime.locations.tus}`);
  for (const line of startupWords(config, runtime.locations)) log.info(line);
  await recoverSoon(runtime, config, log);
}

/** Start-up work (leftovers, interrupted finishes); a store that is down delays it, it does not stop the server. */
async function recoverSoon(runtime: Runtime, config: Config, log: Logger, attempt = 1): Promise<void> {
  try {
    const { leftovers, redone } = await runtime.recover();
    if (leftovers > 0) log.info({ count: leftovers }, 'removed half-written artifacts of an earlier process');
    if (redone > 0) log.info({ count: redone }, 'redoing interrupted finishes');
  } catch (error) {
    const wait = Math.min(config.FINISH_RETRY_MAX_MS, config.FINISH_RETRY_BASE_MS * 2 ** (attempt - 1));
    log.warn({ err: error, retryInMs: wait }, 'start-up recovery failed (a store is unavailable); retried');
    setTimeout(() => void recoverSoon(runtime, config, log, attempt + 1), wait).unref();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`tusgate: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
