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
import type { UploadRecord } from '../storage/records.ts';
import { createApp } from './app.ts';
import { answerClientError } from './client-errors.ts';
import { policyOf, type Config } from './config.ts';
import { installLingeringClose } from './lingering-close.ts';
import type { Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createStores, type Stores } from './stores.ts';
import { createTusServer } from './tus.ts';


function endedError(record: UploadRecord): Refusal {
  if (record.state === 'refused') {
    return new Refusal('E_UPLOAD_REFUSED', `This upload was refused (${record.error.code}): ${record.error.message}`);
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
    gateState: stores.gateState,
    records: stores.records,
    judge: async (prefix, complete): Promise<GateDecision> => {
      const verdict = await judge(prefix, complete, policy);
      return verdict.kind === 'refuse' ? { kind: 'refuse', refusal: verdict.refusal } : verdict;
    },
    endedError,
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
  });
  const claimTtl = Math.max(config.LOCK_TTL_MS, 5_000);
  const finisher = new Finisher({
    records: stores.records,
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
    log,
    claim: stores.claim ? (id) => stores.claim?.(`finish:${id}`, claimTtl) ?? Promise.resolve(undefined) : undefined,
    waitForOthersMs: config.TRANSCODE_TIMEOUT_MS * 2,
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
  const state = { ready: false, shuttingDown: false };
  const app = createApp(
    { config, tus, records: stores.records, store, finisher, log, media: stores.diskPublic, state, metrics: core.metrics },
    log,
  );
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
    recover: async () => ({
      leftovers: (await stores.diskPublic?.removeLeftovers()) ?? 0,
      redone: await finisher.recover(),
    }),
    locations: {
      tus: `http://${config.HOST}:${config.PORT}${config.tusPath}/`,
      staging: config.TUS_STORE === 's3' ? `s3://${config.S3_BUCKET}` : `${config.dataDir}/staging`,
      public: config.PUBLIC_STORE === 's3' ? `s3://${config.PUBLIC_S3_BUCKET}/${config.PUBLIC_S3_KEY_PREFIX}` : `${config.dataDir}/public`,
      publicBaseUrl: config.publicBaseUrl,
      sharedState: config.REDIS_URL ? 'redis' : `${config.dataDir} (single instance)`,
    },
  };
}
