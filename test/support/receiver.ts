/**
 * A webhook receiver on 127.0.0.1, as an application would run one: every request is
 * verified with `standardwebhooks`' `Webhook.verify` (the reference implementation of the
 * Standard Webhooks convention tusgate follows), and its answer is decided by the test.
 * It can be closed and started again on the same port (a receiver that was down).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export function webhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export interface WebhookPayload {
  type: string;
  timestamp: string;
  data: {
    uploadId: string;
    owner: string | null;
    profile: string | null;
    meta: Record<string, string>;
    metadata: Record<string, string>;
    artifact?: {
      id: string;
      url: string;
      format: string;
      width: number;
      height: number;
      bytes: number;
      original: { bytes: number; sha256: string };
    };
    error?: { code: string; message: string };
  };
}

export interface Reception {
  id: string;
  timestamp: number;
  signature: string;
  contentType: string | undefined;
  body: string;
  /** What Webhook.verify returned, or undefined when it threw (see `error`). */
  payload?: WebhookPayload;
  error?: string;
  /** The status this receiver answered (or will answer, after a delay); 0: it never answers ('hang'). */
  answered: number;
  at: number;
}

/** An answer: a status, a status after a delay, or none at all (the request hangs until the receiver closes). */
export type Answer = number | { status: number; delayMs: number } | 'hang';

/** What to answer to the n-th request (0-based) overall and the n-th of its webhook-id (a request that fails verification gets 400). */
export type Behaviour = (n: number, ofId: number) => Answer;

export class Receiver {
  readonly receptions: Reception[] = [];
  private server?: Server;
  private waiters = new Set<() => void>();
  port = 0;

  constructor(
    readonly secret: string,
    public behave: Behaviour = () => 204,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Listens (on `port`, or the port of an earlier listen, or a free one). */
  async listen(port = this.port): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Reserves a port without listening (a receiver that is down), for WEBHOOK_URL. */
  async reserve(): Promise<this> {
    await this.listen(0);
    await this.close();
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(Buffer.from(chunk as Uint8Array));
    const body = Buffer.concat(chunks).toString('utf8');
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : '';
    };
    const id = header('webhook-id');
    let payload: WebhookPayload | undefined;
    let error: string | undefined;
    try {
      payload = new Webhook(this.secret).verify(body, {
        'webhook-id': id,
        'webhook-timestamp': header('webhook-timestamp'),
        'webhook-signature': header('webhook-signature'),
      }) as WebhookPayload;
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    const ofId = this.of(id).length;
    const answer: Answer = error ? 400 : this.behave(this.receptions.length, ofId);
    const status = answer === 'hang' ? 0 : typeof answer === 'number' ? answer : answer.status;
    const timestamp = Number(header('webhook-timestamp'));
    const signature = header('webhook-signature');
    this.receptions.push({ id, timestamp, signature, contentType: req.headers['content-type'], body, payload, error, answered: status, at: Date.now() });
    for (const wake of this.waiters) wake();
    if (answer === 'hang') return;
    if (typeof answer === 'object') await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    if (!res.destroyed) res.writeHead(status).end(status >= 300 ? 'no' : '');
  }

  /** Every request with this webhook-id, in arrival order. */
  of(id: string): Reception[] {
    return this.receptions.filter((reception) => reception.id === id);
  }

  /** The webhook-ids received, each once. */
  ids(): string[] {
    return [...new Set(this.receptions.map((reception) => reception.id))];
  }

  /** Verified events this receiver accepted (2xx), in arrival order, one per webhook-id. */
  accepted(): Array<{ id: string; payload: WebhookPayload }> {
    const seen = new Set<string>();
    const out: Array<{ id: string; payload: WebhookPayload }> = [];
    for (const reception of this.receptions) {
      if (!reception.payload || reception.answered < 200 || reception.answered >= 300 || seen.has(reception.id)) continue;
      seen.add(reception.id);
      out.push({ id: reception.id, payload: reception.payload });
    }
    return out;
  }

  /** Accepted events of one upload (and type). */
  eventsOf(uploadId: string, type?: string): WebhookPayload[] {
    return this.accepted()
      .map((event) => event.payload)
      .filter((payload) => payload.data.uploadId === uploadId && (type === undefined || payload.type === type));
  }

  /** Resolves when `done()` holds (checked at every reception), or rejects after `timeoutMs`. */
  waitFor(done: () => boolean, timeoutMs = 15_000, what = 'webhooks'): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${what} not received within ${timeoutMs} ms; got ${JSON.stringify(this.summary())}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Waits until the upload has an accepted event of each of `types`; returns them in that order. */
  async waitForEvents(uploadId: string, types: string[], timeoutMs = 15_000): Promise<WebhookPayload[]> {
    await this.waitFor(() => types.every((type) => this.eventsOf(uploadId, type).length > 0), timeoutMs, `${types.join(', ')} of ${uploadId}`);
    return types.map((type) => this.eventsOf(uploadId, type)[0] as WebhookPayload);
  }

  summary(): Array<{ id: string; type?: string; uploadId?: string; answered: number; error?: string }> {
    return this.receptions.map((r) => ({ id: r.id, type: r.payload?.type, uploadId: r.payload?.data.uploadId, answered: r.answered, error: r.error }));
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
