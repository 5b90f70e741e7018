/** Builds a running tusgate from its configuration: stores, gate, finish, tus server, app. */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Server as TusServer } from '@tus/server';
import { Refusal } from '../hooks/errors.ts';
import { Finisher } from '../hooks/finish.ts';
import { judge } from '../hooks/gate.ts';
import { Slots } from '../hooks/slots.ts';
import { configureSharp } from '../hooks/transcode.ts';
import { GatedStore, type GateDecision } from '../storage/gated-store.ts';
import type { UploadState } from '../storage/upload-state.ts';
import { createApp } from './app.ts';
import { answerClientError } from './client-errors.ts';
import { policyOf, type Config } from './config.ts';
import { installLingeringClose } from './lingering-close.ts';
import { requestLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createStores, type Stores } from './stores.ts';
import { createTusServer } from './tus.ts';

function endedError(state: UploadState): Refusal {
  if (state.phase === 'refused') {
    return new Refusal('E_UPLOAD_REFUSED', `This upload was refused (${state.error.code}): ${state.error.message}`);
  }
  return new Refusal('E_UPLOAD_COMPLETE', 'This upload is complete; its result is at /uploads/:id.');
}

export interface Core {
  metrics: Metrics;
  stores: Stores;
  store: GatedStore;
  finisher: Finisher;
  tus: TusServer;
}

/** Everything but HTTP: also used by the sweep command. */
export function createCore(config: Config, log: Logger): Core {
  configureSharp(config.SHARP_THREADS);
  const policy = policyOf(config);
  const stores = createStores(config);
  const slots = new Slots(config.TRANSCODE_CONCURRENCY);
  const metrics = createMetrics(() => slots.queued);
  const store = new GatedStore({
    staging: stores.staging.store,
    readHead: stores.staging.readHead,
    states: stores.states,
    locker: stores.locker,
    judge: async (prefix, complete): Promise<GateDecision> => {
      const verdict = await judge(prefix, complete, policy);
      return verdict.kind === 'refuse' ? { kind: 'refuse', refusal: verdict.refusal } : verdict;
    },
    rejudgeBytes: config.GATE_METADATA_BYTES,
    fenceCheckBytes: config.FENCE_CHECK_BYTES,
    expirationMs: config.UPLOAD_EXPIRES_AFTER_MS,
    cacheSize: config.STATE_CACHE_SIZE,
    endedError,
    lockLostError: () => {
      metrics.locksLost.inc();
      return new Refusal('E_LOCK_LOST', 'This request lost its lock on the upload (another request took it over); send HEAD and resume.');
    },
    onVerdict: ({ id, decision, bytesSeen }) => {
      metrics.gateVerdicts.inc({ verdict: decision.kind });
      metrics.gateBytesSeen.observe(bytesSeen);
      if (decision.kind === 'refuse') {
        metrics.refusals.inc({ code: decision.refusal.code, stage: 'gate' });
        log.warn({ uploadId: id, code: decision.refusal.code, reason: decision.refusal.message, bytesSeen }, 'upload refused by the gate');
      } else {
        log.info({ uploadId: id, bytesSeen }, 'upload allowed by the gate');
      }
    },
    onRebuilt: (id, state) => {
      metrics.statesRebuilt.inc({ phase: state.phase });
      log.warn({ uploadId: id, phase: state.phase }, 'upload state was missing: rebuilt from the staging store');
    },
  });
  const finisher = new Finisher({
    states: stores.states,
    leases: stores.leases,
    claimTtlMs: Math.max(config.LOCK_TTL_MS, 5_000),
    publicStore: stores.publicStore,
    stagedFile: (id) => stores.staging.stagedFile(id),
    discardStaged: (id) => store.discardStaged(id),
    publicBaseUrl: config.publicBaseUrl,
    policy,
    transcode: {
      format: config.OUTPUT_FORMAT,
      quality: config.OUTPUT_QUALITY,
      longEdge: config.OUTPUT_LONG_EDGE,
      animation: config.ANIMATION,
      timeoutSeconds: Math.ceil(config.TRANSCODE_TIMEOUT_MS / 1000),
    },
    slots,
    queueMax: config.FINISH_QUEUE_MAX,
    retry: { baseMs: config.FINISH_RETRY_BASE_MS, maxMs: config.FINISH_RETRY_MAX_MS },
    waitForOthersMs: config.TRANSCODE_TIMEOUT_MS * 2,
    pollMs: config.LOCK_POLL_MS,
    log,
    observe: (outcome, ms) => {
      metrics.transcodeSeconds.observe({ outcome: outcome.state }, ms / 1000);
      if (outcome.state === 'done') metrics.artifacts.inc({ format: outcome.artifact.format });
      else metrics.refusals.inc({ code: outcome.error.code, stage: 'finish' });
    },
  });
  const tus = createTusServer({ config, policy, store, finisher, log, metrics, locker: stores.locker });
  return { metrics, stores, store, finisher, tus };
}

export interface Runtime {
  http: HttpServer;
  core: Core;
  state: { ready: boolean; shuttingDown: boolean };
  /** Work to do once the server listens: clean leftovers, redo interrupted finishes. */
  recover(): Promise<{ leftovers: number; redone: number }>;
  /** Where the stores live, for the start-up log. */
  locations: Record<string, string>;
}

export function createRuntime(config: Config, log: Logger): Runtime {
  const core = createCore(config, log);
  const { stores, store, finisher, tus } = core;
  const state = {
    ready: false,
    shuttingDown: false,
    busy: () => finisher.busy,
    onTooSlow: (ctx: { req: import('node:http').IncomingMessage }, received: number) => {
      core.metrics.slowReceives.inc();
      requestLogger(ctx.req, log).warn(
        { received, windowMs: config.RECEIVE_RATE_WINDOW_MS, minBytesPerSecond: config.MIN_RECEIVE_BYTES_PER_S },
        'request body arrives slower than MIN_RECEIVE_BYTES_PER_S: connection closed (the upload stays resumable)',
      );
    },
  };
  const app = createApp({ config, tus, states: stores.states, store, finisher, media: stores.diskPublic, state, metrics: core.metrics }, log);
  // Node checks the headers timeout every connectionsCheckingInterval (30 s by default)
  const http = createServer({ connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.HEADERS_TIMEOUT_MS / 2)) }, app.callback());
  // Long PATCH bodies must not be cut by Node's request timeout; idle sockets are cut instead.
  http.requestTimeout = 0;
  http.headersTimeout = config.HEADERS_TIMEOUT_MS;
  http.setTimeout(config.IDLE_TIMEOUT_MS);
  http.on('connection', (socket: Socket) => installLingeringClose(socket, config.REFUSAL_LINGER_MS));
  http.on('clientError', answerClientError(log, core.metrics, config.HEADERS_TIMEOUT_MS));
  return {
    http,
    core,
    state,
    recover: async () => {
      const warning = await stores.durabilityWarning();
      if (warning) log.warn(warning);
      return {
        leftovers: (await stores.diskPublic?.removeLeftovers()) ?? 0,
        redone: await finisher.recover(),
      };
    },
    locations: {
      tus: `http://${config.HOST}:${config.PORT}${config.tusPath}/`,
      staging: config.TUS_STORE === 's3' ? `s3://${config.S3_BUCKET}` : `${config.dataDir}/staging`,
      public: config.PUBLIC_STORE === 's3' ? `s3://${config.PUBLIC_S3_BUCKET}/${config.PUBLIC_S3_KEY_PREFIX}` : `${config.dataDir}/public`,
      publicBaseUrl: config.publicBaseUrl,
      sharedState: config.REDIS_URL ? 'redis' : `${config.dataDir}/state (single instance)`,
    },
  };
}
