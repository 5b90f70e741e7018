/**
 * Leases: exclusive, expiring claims on a key (an upload's lock, a finish, the sweep), each
 * with a token that fences the writes made under it. One interface, two implementations:
 * in this process (below) and in Redis (redis-leases.ts), tested by one contract.
 *
 * A lease knows at once when it is lost: its `lost` signal aborts when a renewal fails or
 * finds another owner, and `valid()` turns false when its last confirmed renewal is older
 * than its ttl (a stalled event loop), so a holder can stop before its next byte.
 */
import { randomBytes } from 'node:crypto';

export interface Fence {
  key: string;
  token: string;
}

export interface Lease extends Fence {
  /** Aborts when the lease is lost (not when it is released). */
  readonly lost: AbortSignal;
  /** False once the lease may have lapsed. Synchronous, cheap: checked per chunk. */
  valid(): boolean;
  release(): Promise<void>;
}

export interface Leases {
  /** Whether a lease can be lost while held (across processes); writes are fenced only then. */
  readonly canLose: boolean;
  /** Takes `key` if nobody holds it. */
  take(key: string, ttlMs: number): Promise<Lease | undefined>;
  /** Whether `fence` is the current holder of its key (asks the store: the authority). */
  holds(fence: Fence): Promise<boolean>;
  /** Resolves when `key` is released (or after `maxWaitMs`, or on `signal`): waiters wait, they do not spin. */
  released(key: string, maxWaitMs: number, signal?: AbortSignal): Promise<void>;
  /** Asks the holder of `key`, in whichever process, to let go; `onRequest` hears such asks for keys held here. */
  askRelease(key: string): Promise<void>;
  onReleaseRequest(key: string, listener: (() => void) | undefined): void;
  close?(): Promise<void>;
}

export function newToken(): string {
  return randomBytes(16).toString('hex');
}

/** Resolves after `ms`, early on `signal`. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Wakes the waiters of a key: each waiter is one closure, removed when it resolves. */
export class Waiters {
  private readonly byKey = new Map<string, Set<() => void>>();

  wait(key: string, maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.byKey.get(key) === waiters) this.byKey.delete(key);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      signal?.addEventListener('abort', done, { once: true });
      if (signal?.aborted) return done();
      waiters.add(done);
    });
  }

  wake(key: string): void {
    for (const done of [...(this.byKey.get(key) ?? [])]) done();
  }
}

/**
 * Leases of one process (single instance). They cannot be lost: the process that holds
 * one is the only one that could take it, so a lease lives until it is released (the
 * ttl matters only across processes).
 */
export class MemoryLeases implements Leases {
  readonly canLose = false;
  private readonly held = new Map<string, string>();
  private readonly waiters = new Waiters();
  private readonly askers = new Map<string, () => void>();

  async take(key: string): Promise<Lease | undefined> {
    if (this.held.has(key)) return undefined;
    const token = newToken();
    this.held.set(key, token);
    return {
      key,
      token,
      lost: new AbortController().signal,
      valid: () => this.held.get(key) === token,
      release: async () => {
        if (this.held.get(key) !== token) return;
        this.held.delete(key);
        this.waiters.wake(key);
      },
    };
  }

  /** Synchronous form, for the in-process state store. */
  holdsNow(fence: Fence): boolean {
    return this.held.get(fence.key) === fence.token;
  }

  async holds(fence: Fence): Promise<boolean> {
    return this.holdsNow(fence);
  }

  released(key: string, maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    if (!this.held.has(key)) return Promise.resolve();
    return this.waiters.wait(key, maxWaitMs, signal);
  }

  async askRelease(key: string): Promise<void> {
    this.askers.get(key)?.();
  }

  onReleaseRequest(key: string, listener: (() => void) | undefined): void {
    if (listener) this.askers.set(key, listener);
    else this.askers.delete(key);
  }
}
