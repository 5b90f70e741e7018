/** Prometheus metrics (prom-client), served at GET /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  refusals: Counter<'code' | 'stage'>;
  gateVerdicts: Counter<'verdict'>;
  gateBytesSeen: Histogram;
  artifacts: Counter<'format'>;
  transcodeSeconds: Histogram<'outcome'>;
  transcodesWaiting: Gauge;
  requests: Counter<'method' | 'status'>;
  slowReceives: Counter;
  locksLost: Counter;
  statesRebuilt: Counter<'phase'>;
  s3Requests: Counter<'store' | 'command'>;
  webhooks: Counter<'outcome'>;
  /** Reads the webhook events waiting in the outbox when scraped (set once the delivery exists). */
  webhooksPending: Gauge;
  pendingWebhooks: { read?: () => Promise<number> };
}

/** `waiting` reads the number of finishes waiting for a transcode slot when scraped. */
export function createMetrics(waiting: () => number): Metrics {
  const registry = new Registry();
  const pendingWebhooks: Metrics['pendingWebhooks'] = {};
  collectDefaultMetrics({ register: registry, prefix: 'tusgate_' });
  const registers = [registry];
  return {
    registry,
    refusals: new Counter({ name: 'tusgate_refusals_total', help: 'Refusals by error code and stage (creation, gate, finish, protocol)', labelNames: ['code', 'stage'], registers }),
    gateVerdicts: new Counter({ name: 'tusgate_gate_verdicts_total', help: 'Verdicts of the first-bytes gate', labelNames: ['verdict'], registers }),
    gateBytesSeen: new Histogram({
      name: 'tusgate_gate_bytes_seen',
      help: 'Bytes of an upload the gate had seen when it decided',
      buckets: [64, 512, 4096, 16384, 65536, 131072, 262144, 1048576],
      registers,
    }),
    artifacts: new Counter({ name: 'tusgate_artifacts_published_total', help: 'Artifacts published', labelNames: ['format'], registers }),
    transcodeSeconds: new Histogram({
      name: 'tusgate_finish_seconds',
      help: 'Duration of the finish (wait for a slot, decode, encode, publish)',
      labelNames: ['outcome'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
    transcodesWaiting: new Gauge({
      name: 'tusgate_finish_waiting',
      help: 'Finishes waiting for a transcode slot',
      registers,
      collect() {
        this.set(waiting());
      },
    }),
    requests: new Counter({ name: 'tusgate_http_requests_total', help: 'HTTP requests by method and status', labelNames: ['method', 'status'], registers }),
    slowReceives: new Counter({
      name: 'tusgate_slow_receives_total',
      help: 'Request bodies cut for arriving slower than MIN_RECEIVE_BYTES_PER_S',
      registers,
    }),
    locksLost: new Counter({ name: 'tusgate_locks_lost_total', help: 'Requests stopped because their upload lock was lost', registers }),
    webhooks: new Counter({
      name: 'tusgate_webhook_attempts_total',
      help: 'Webhook events by outcome: delivered, retried (an attempt failed), dead (given up)',
      labelNames: ['outcome'],
      registers,
    }),
    webhooksPending: new Gauge({
      name: 'tusgate_webhooks_pending',
      help: 'Webhook events stored in the outbox and not delivered yet',
      registers,
      async collect() {
        const read = pendingWebhooks.read;
        if (read) this.set(await read().catch(() => Number.NaN));
      },
    }),
    pendingWebhooks,
    statesRebuilt: new Counter({
      name: 'tusgate_states_rebuilt_total',
      help: 'Upload states found missing and rebuilt from the staging store',
      labelNames: ['phase'],
      registers,
    }),
    s3Requests: new Counter({
      name: 'tusgate_s3_requests_total',
      help: 'Requests to S3 by store (staging, public) and command, what S3 bills (a request the SDK retried counts once)',
      labelNames: ['store', 'command'],
      registers,
    }),
  };
}
