/** Builds a running tusgate from its configuration: stores, gate, finish, tus server, app. */
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import { Finisher } from '../hooks/finish.ts';
import { judge } from '../hooks/gate.ts';
import type { Policy } from '../hooks/policy.ts';
import { Slots } from '../hooks/slots.ts';
import { configureSharp } from '../hooks/transcode.ts';
import { Refusal } from '../hooks/errors.ts';
import { FileGateStateStore } from '../storage/gate-state.ts';
import { GatedStore, type GateDecision } from '../storage/gated-store.ts';
import { DiskPublicStore } from '../storage/public-store.ts';
import { FileRecordStore, type UploadRecord } from '../storage/records.ts';
import { createFileStaging } from '../storage/staging.ts';
import { createApp } from './app.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { installLingeringClose } from './lingering-close.ts';
import { createTusServer } from './tus.ts';

export function policyOf(config: Config): Policy {
  return {
    allowedTypes: config.ALLOWED_TYPES,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    maxPixels: config.MAX_PIXELS,
    maxDimension: config.MAX_DIMENSION,
    maxFrames: config.MAX_FRAMES,
    maxTotalPixels: config.MAX_TOTAL_PIXELS,
    windowBytes: config.GATE_WINDOW_BYTES,
  };
}

function endedError(record: UploadRecord): Refusal {
  if (record.state === 'refused') {
    return new Refusal('E_UPLOAD_REFUSED', `This upload was refused (${record.error.code}): ${record.error.message}`);
  }
  return new Refusal('E_UPLOAD_COMPLETE', 'This upload is complete; its result is at /uploads/:id.');
}

export interface Runtime {
  http: HttpServer;
  state: { ready: boolean; shuttingDown: boolean };
  finisher: Finisher;
  /** Work to do once the server listens: clean leftovers, redo interrupted finishes. */
  recover(): Promise<{ leftovers: number; redone: number }>;
  /** Where the stores live, for the start-up log. */
  locations: Record<string, string>;
}

export function createRuntime(config: Config, log: Logger): Runtime {
  configureSharp(config.SHARP_THREADS);
  const policy = policyOf(config);
  const dir = (name: string) => path.join(config.dataDir, name);
  const staging = createFileStaging({ directory: dir('staging'), expirationMs: config.UPLOAD_EXPIRES_AFTER_MS });
  const records = new FileRecordStore(dir('records'));
  const publicStore = new DiskPublicStore(dir('public'));

  const store = new GatedStore({
    staging: staging.store,
    gateState: new FileGateStateStore(dir('gate')),
    records,
    judge: async (prefix, complete): Promise<GateDecision> => {
      const verdict = await judge(prefix, complete, policy);
      return verdict.kind === 'refuse' ? { kind: 'refuse', refusal: verdict.refusal } : verdict;
    },
    endedError,
    onVerdict: ({ id, decision, bytesSeen }) => {
      if (decision.kind === 'refuse') {
        log.warn({ uploadId: id, code: decision.refusal.code, reason: decision.refusal.message, bytesSeen }, 'upload refused by the gate');
      } else {
        log.info({ uploadId: id, bytesSeen }, 'upload allowed by the gate');
      }
    },
  });

  const finisher = new Finisher({
    records,
    publicStore,
    stagedFile: async (id) => ({ path: path.join(dir('staging'), id), release: async () => {} }),
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
    slots: new Slots(config.TRANSCODE_CONCURRENCY),
    log,
  });

  const state = { ready: false, shuttingDown: false };
  const tus = createTusServer({ config, policy, store, finisher, log });
  const app = createApp({ config, tus, records, store, finisher, log, media: publicStore, state }, log);
  const http = createServer(app.callback());
  // Long PATCH bodies must not be cut by Node's request timeout; idle sockets are cut instead.
  http.requestTimeout = 0;
  http.headersTimeout = 60_000;
  http.setTimeout(config.IDLE_TIMEOUT_MS);
  http.on('connection', (socket: Socket) => installLingeringClose(socket, config.REFUSAL_LINGER_MS));
  return {
    http,
    state,
    finisher,
    recover: async () => ({ leftovers: await publicStore.removeLeftovers(), redone: await finisher.recover() }),
    locations: {
      tus: `http://${config.HOST}:${config.PORT}${config.tusPath}/`,
      staging: dir('staging'),
      public: dir('public'),
      publicBaseUrl: config.publicBaseUrl,
    },
  };
}
