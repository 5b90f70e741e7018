/** Builds a running tusgate from its configuration: stores, gate, finish, tus server, app. */
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Server as TusServer } from '@tus/server';
import { Refusal } from '../hooks/errors.ts';
import { Finisher } from '../hooks/finish.ts';
import { judge, SNIFF_BYTES } from '../hooks/gate.ts';
import { defaultProfile, type Profile, type Profiles } from '../hooks/profiles.ts';
import { Slots } from '../hooks/slots.ts';
import { configureSharp } from '../hooks/transcode.ts';
import { GatedStore, type GateDecision } from '../storage/gated-store.ts';
import type { UploadState } from '../storage/upload-state.ts';
import { createApp } from './app.ts';
import { createAuthenticator } from './auth/index.ts';
import { answerClientError } from './client-errors.ts';
import { authOptionsOf, MEMORY_BOUNDS, profilesOf, type Config } from './config.ts';
import { createEvents, eventData, type Events } from './events.ts';
import { refusalOf, type InProcessHooks } from './hooks-module.ts';
import { installLingeringClose } from './lingering-close.ts';
import { requestLogger, type Logger } from './logger.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { createQuotas } from './quotas.ts';
import { createStores, type Stores } from './stores.ts';
import { createTusServer } from './tus.ts';
import { createDelivery } from './webhooks/from-config.ts';
import type { WebhookDelivery } from './webhooks/deliver.ts';

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
  profiles: Profiles;
  events: Events;
  /** Delivers the stored webhook events (started by the server, not by the sweep command). */
  delivery?: WebhookDelivery;
}

/** An extra gate rule of the application's (HOOKS_MODULE onVerdict): it may refuse; if it fails, the upload is refused. */
async function askApp(onVerdict: NonNullable<InProcessHooks['onVerdict']>, state: UploadState, log: Logger): Promise<GateDecision> {
  let reason: string | undefined;
  try {
    reason = refusalOf(await onVerdict(eventData(state)));
  } catch (error) {
    log.error({ err: error, uploadId: state.id }, 'HOOKS_MODULE onVerdict failed: the upload is refused');
    reason = 'The application could not check this upload; try again later.';
  }
  return reason === undefined ? { kind: 'allow' } : { kind: 'refuse', refusal: new Refusal('E_REFUSED_BY_APP', reason) };
}

/** Everything but HTTP: also used by the sweep command (which stores events but delivers none). */
export async function createCore(config: Config, log: Logger, hooks: InProcessHooks = {}): Promise<Core> {
  configureSharp(config.SHARP_THREADS);
  const profiles = profilesOf(config);
  const profile = (name: string | undefined): Profile => profiles.get(name ?? 'default') ?? defaultProfile(profiles);
  let lastRedisError = 0;
  const slots = new Slots(config.TRANSCODE_CONCURRENCY);
  const metrics = createMetrics(() => slots.queued);
  const stores = await createStores(config, {
    onRedisError: (error) => {
      // one line per second at most: ioredis reports every reconnection attempt
      if (Date.now() - lastRedisError < 1000) return;
      lastRedisError = Date.now();
      log.warn({ err: error }, 'Redis connection error (requests that need it answer 503 E_STATE_UNAVAILABLE)');
    },
    onS3Request: (store, command) => metrics.s3Requests.inc({ store, command }),
  });
  const delivery = await createDelivery(config, stores, metrics, log);
  if (delivery) metrics.pendingWebhooks.read = () => delivery.pending();
  const events = createEvents(delivery, hooks, log);
  const store = new GatedStore({
    staging: stores.staging.store,
    maxAnnotations: MEMORY_BOUNDS.creationAnnotations,
    readHead: stores.staging.readHead,
    describe: stores.staging.describe,
    states: stores.states,
    locker: stores.locker,
    judge: async (prefix, complete, state): Promise<GateDecision> => {
      const verdict = await judge(prefix, complete, profile(state.profile).policy);
      if (verdict.kind === 'refuse') return { kind: 'refuse', refusal: verdict.refusal };
      if (verdict.kind === 'allow' && hooks.onVerdict) return askApp(hooks.onVerdict, state, log);
      return verdict;
    },
    // first at file-type's sample, then each time the held bytes doubled, by at most GATE_JUDGE_STEP_BYTES
    judgeAt: { first: SNIFF_BYTES, maxStep: config.GATE_JUDGE_STEP_BYTES },
    onCreated: (state) => events.emit('upload.created', state),
    onRefused: (state) => events.emit('upload.refused', state),
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
    profile,
    slots,
    queueMax: config.FINISH_QUEUE_MAX,
    retry: { baseMs: config.FINISH_RETRY_BASE_MS, maxMs: config.FINISH_RETRY_MAX_MS },
    waitForOthersMs: config.TRANSCODE_TIMEOUT_MS * 2,
    pollMs: config.LOCK_POLL_MS,
    log,
    onResult: (state) => events.emit(state.phase === 'done' ? 'artifact.published' : 'upload.failed', state),
    observe: (outcome, ms) => {
      metrics.transcodeSeconds.observe({ outcome: outcome.state }, ms / 1000);
      if (outcome.state === 'done') metrics.artifacts.inc({ format: outcome.artifact.format });
      else metrics.refusals.inc({ code: outcome.error.code, stage: 'finish' });
    },
  });
  const tus = createTusServer({ config, profiles, store, finisher, log, metrics, locker: stores.locker, onCreate: hooks.onCreate });
  return { metrics, stores, store, finisher, tus, profiles, events, delivery };
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

export async function createRuntime(config: Config, log: Logger, hooks: InProcessHooks = {}): Promise<Runtime> {
  const core = await createCore(config, log, hooks);
  const { stores, store, finisher, tus } = core;
  const state = {
    ready: false,
    shuttingDown: false,
    busy: () => finisher.busy,
    onTooSlow: (ctx: { req: IncomingMessage }, received: number) => {
      core.metrics.slowReceives.inc();
      requestLogger(ctx.req, log).warn(
        { received, windowMs: config.RECEIVE_RATE_WINDOW_MS, minBytesPerSecond: config.MIN_RECEIVE_BYTES_PER_S },
        'request body arrives slower than MIN_RECEIVE_BYTES_PER_S: connection closed (the upload stays resumable)',
      );
    },
  };
  const app = createApp(
    {
      config,
      tus,
      states: stores.states,
      store,
      finisher,
      leases: stores.leases,
      publicStore: stores.publicStore,
      media: stores.diskPublic,
      state,
      metrics: core.metrics,
      log,
      profiles: core.profiles,
      quotas: createQuotas(config, stores.states, stores.redis),
      authenticate: createAuthenticator(authOptionsOf(config)),
      onDeleted: (deleted) => core.events.emit('artifact.deleted', deleted),
    },
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
    recover: async () => {
      const warning = await stores.durabilityWarning();
      if (warning) log.warn(warning);
      core.delivery?.start();
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
