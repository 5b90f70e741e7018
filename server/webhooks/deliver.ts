/**
 * Durable, signed, at-least-once webhooks.
 *
 * - `enqueue` stores the event in the outbox (durable when it resolves) and nudges the loop;
 *   it never waits for the HTTP call.
 * - The loop polls the outbox for due events (every `pollMs`, at once when nudged, and when
 *   a retry it scheduled comes due) and sends each under a lease `webhook:<eventId>`, so one
 *   instance at a time attempts an event; an event whose lease is taken is skipped. Under
 *   the lease the record is read again: one delivered or rescheduled meanwhile is skipped.
 * - An attempt is one signed POST (Standard Webhooks), bounded by `timeoutMs`. A 2xx
 *   delivers it (removed); anything else, a timeout or a network error is retried with
 *   exponential backoff and full jitter, with the same `webhook-id` and the same body (the
 *   `webhook-timestamp` header is the attempt's time, signed again). Once `retryForMs` has
 *   passed since the event, the next failure gives it up: moved to the dead records,
 *   counted, logged at error level with its id. The last retry is scheduled no later than
 *   that deadline, and every event gets at least one attempt however old it is.
 * - `stop` starts nothing new and waits for the attempts in flight to end and be recorded
 *   (each is bounded by `timeoutMs`): nothing is left half done.
 *
 * At least once, not exactly once: a crash between a 2xx and the outbox's removal, or a
 * Redis lease lost during an attempt, sends the event again, with the same `webhook-id`, on
 * which receivers de-duplicate.
 */
import type { Leases } from '../../storage/leases.ts';
import { CorruptOutboxRecordError, type Outbox, type OutboxEntry } from '../../storage/outbox.ts';
import { eventBody, newEvent, type EventDataFor, type WebhookEvent, type WebhookEventType } from '../../storage/webhook-events.ts';
import { createSigner } from './signing.ts';

export interface WebhookLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface WebhookMetrics {
  delivered(): void;
  retried(): void;
  dead(): void;
}

export const WEBHOOK_DEFAULTS = {
  /** WEBHOOK_TIMEOUT_MS: one attempt, from the request to the response's status. */
  timeoutMs: 10_000,
  /** WEBHOOK_RETRY_FOR_MS: how long after the event failures are retried. */
  retryForMs: 24 * 60 * 60 * 1000,
  /** The first retry's delay bound; it doubles with each attempt, up to `maxDelayMs`. */
  baseDelayMs: 5_000,
  maxDelayMs: 60 * 60 * 1000,
  /** How often the outbox is read when nothing nudges the loop. */
  pollMs: 1_000,
  /** Attempts in flight at once, per instance. */
  concurrency: 8,
} as const;

/** How long stop() waits, beyond `timeoutMs`, for an attempt's outcome to be recorded. */
const RECORD_GRACE_MS = 2_000;

export interface WebhookDeliveryOptions {
  /** The receiver (WEBHOOK_URL). */
  url: string;
  /** The Standard Webhooks secret, `whsec_<base64>` (WEBHOOK_SECRET). */
  secret: string;
  outbox: Outbox;
  /** RedisLeases across instances, MemoryLeases in one process. */
  leases: Leases;
  timeoutMs?: number;
  retryForMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  pollMs?: number;
  concurrency?: number;
  log: WebhookLog;
  metrics?: WebhookMetrics;
}

export interface WebhookDelivery {
  /** Stores a new event durably (rejects if it could not be stored), then nudges the loop. */
  enqueue<T extends WebhookEventType>(type: T, data: EventDataFor<T>): Promise<void>;
  start(): void;
  /** Starts nothing new; resolves when the attempts in flight have ended (at most about timeoutMs). */
  stop(): Promise<void>;
  pending(): Promise<number>;
}

/** The delay before retry number `attempts` (1 for the first retry): full jitter over an exponential bound. */
export function retryDelay(attempts: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const bound = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.floor(random() * bound);
}

export function leaseKey(eventId: string): string {
  return `webhook:${eventId}`;
}

type Outcome = { ok: true; status: number } | { ok: false; error: string };

function failureText(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `timed out after ${timeoutMs} ms`;
  if (error instanceof Error) {
    const { cause } = error;
    if (typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string') return `${error.message}: ${cause.code}`;
    return error.message;
  }
  return String(error);
}

export function createWebhookDelivery(options: WebhookDeliveryOptions): WebhookDelivery {
  const { url, outbox, leases, log, metrics } = options;
  const timeoutMs = options.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs;
  const retryForMs = options.retryForMs ?? WEBHOOK_DEFAULTS.retryForMs;
  const baseDelayMs = options.baseDelayMs ?? WEBHOOK_DEFAULTS.baseDelayMs;
  const maxDelayMs = options.maxDelayMs ?? WEBHOOK_DEFAULTS.maxDelayMs;
  const pollMs = options.pollMs ?? WEBHOOK_DEFAULTS.pollMs;
  const concurrency = Math.max(1, options.concurrency ?? WEBHOOK_DEFAULTS.concurrency);
  const leaseTtlMs = Math.max(10_000, timeoutMs * 2 + RECORD_GRACE_MS);
  const signer = createSigner(options.secret);
  const protocol = URL.canParse(url) ? new URL(url).protocol : '';
  if (protocol !== 'http:' && protocol !== 'https:') throw new Error(`WEBHOOK_URL must be an http(s) URL: ${url}`);

  let running = false;
  let looping: Promise<void> | undefined;
  let nudged = false;
  /** The earliest retry this instance scheduled that has not come due yet. */
  let soonest = Number.POSITIVE_INFINITY;
  let wake: (() => void) | undefined;
  const inFlight = new Map<string, Promise<void>>();

  function nudge(): void {
    nudged = true;
    wake?.();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      wake = done;
      function done() {
        clearTimeout(timer);
        if (wake === done) wake = undefined;
        resolve();
      }
    });
  }

  async function send(event: WebhookEvent): Promise<Outcome> {
    const body = eventBody(event);
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { ...signer.headers(event.id, body, new Date()), 'user-agent': 'tusgate-webhooks' },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
      return { ok: false, error: `HTTP ${response.status}` };
    } catch (error) {
      return { ok: false, error: failureText(error, timeoutMs) };
    }
  }

  /** Records one attempt's outcome. */
  async function settle(entry: OutboxEntry, outcome: Outcome): Promise<void> {
    const { event } = entry;
    const attempts = entry.attempts + 1;
    const fields = { eventId: event.id, type: event.type, uploadId: event.data.uploadId, attempts };
    if (outcome.ok) {
      await outbox.remove(event.id);
      metrics?.delivered();
      log.info({ ...fields, status: outcome.status }, 'webhook delivered');
      return;
    }
    const now = Date.now();
    const deadline = Date.parse(event.timestamp) + retryForMs;
    if (now >= deadline) {
      await outbox.dead(event.id, { attempts, lastError: outcome.error });
      metrics?.dead();
      log.error({ ...fields, error: outcome.error, retryForMs }, `webhook ${event.id} given up: still failing ${retryForMs} ms after the event (moved to the dead records)`);
      return;
    }
    const nextAt = Math.min(deadline, now + retryDelay(attempts, baseDelayMs, maxDelayMs));
    await outbox.reschedule(event.id, attempts, nextAt, outcome.error);
    metrics?.retried();
    log.warn({ ...fields, error: outcome.error, retryInMs: nextAt - now }, 'webhook attempt failed, will retry');
    soonest = Math.min(soonest, nextAt);
  }

  /** One attempt under the event's lease; false when there was nothing to do (taken, or done meanwhile). */
  async function attempt(id: string): Promise<boolean> {
    const lease = await leases.take(leaseKey(id), leaseTtlMs);
    if (!lease) return false;
    try {
      const entry = await outbox.get(id);
      // done meanwhile, or stopped before anything was sent: nothing to record
      if (!entry || entry.nextAt > Date.now() || !running) return false;
      await settle(entry, await send(entry.event));
      return true;
    } finally {
      await lease.release().catch((error: unknown) => log.warn({ eventId: id, err: error }, 'webhook lease release failed'));
    }
  }

  async function dispatch(): Promise<void> {
    const room = concurrency - inFlight.size;
    if (room <= 0) return;
    const entries = await outbox.due(Date.now(), room + inFlight.size);
    for (const entry of entries) {
      if (!running || inFlight.size >= concurrency) break;
      const id = entry.event.id;
      if (inFlight.has(id)) continue;
      const run = attempt(id).then(
        (acted) => {
          inFlight.delete(id);
          if (acted) nudge();
        },
        (error: unknown) => {
          inFlight.delete(id);
          log.error({ eventId: id, err: error }, 'webhook attempt could not be recorded; it stays pending');
        },
      );
      inFlight.set(id, run);
    }
  }

  async function loop(): Promise<void> {
    while (running) {
      nudged = false;
      if (soonest <= Date.now()) soonest = Number.POSITIVE_INFINITY;
      try {
        await dispatch();
      } catch (error) {
        if (error instanceof CorruptOutboxRecordError) {
          log.error({ eventId: error.id, err: error }, 'webhook outbox record does not parse; moved to the dead records');
          metrics?.dead();
          nudged = true;
        } else {
          log.error({ err: error }, 'webhook outbox unavailable');
        }
      }
      if (!running) break;
      if (nudged) continue;
      await sleep(Math.max(0, Math.min(pollMs, soonest - Date.now())));
    }
  }

  function start(): void {
    if (running) return;
    running = true;
    // a loop still finishing its last pass after a stop sees `running` again and goes on
    looping ??= loop().finally(() => {
      looping = undefined;
      if (running) {
        running = false;
        start();
      }
    });
  }

  return {
    async enqueue(type, data) {
      const event = newEvent(type, data);
      await outbox.add(event);
      if (running) nudge();
    },

    start,

    async stop() {
      running = false;
      wake?.();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs + RECORD_GRACE_MS);
      });
      try {
        await Promise.race([Promise.all([looping, Promise.allSettled(inFlight.values())]), bound]);
      } finally {
        clearTimeout(timer);
      }
    },

    pending: () => outbox.pending(),
  };
}
