/**
 * @tus/server's `Locker` on top of leases (leases.ts), the same for one process and for
 * several (Redis):
 * - a waiter asks the holder to release (@tus/server then ends the holder's request at a
 *   chunk boundary, leaving a resumable offset) and sleeps until the lease is released,
 *   its request is aborted, or `timeoutMs` passes (ERR_LOCK_TIMEOUT): one timer and one
 *   closure per waiter, no spinning;
 * - the holder's lease is kept where the data store finds it (`leaseOf`), so every write
 *   made under the lock carries its fence and stops when the lease is lost.
 */
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils';
import type { Lease, Leases } from './leases.ts';

export interface UploadLockerOptions {
  ttlMs: number;
  timeoutMs: number;
  /** A waiter re-checks at least this often (a release message can be missed). */
  pollMs: number;
  /** Where leases are seen by this process only (no Redis): signs of held locks that other processes on this host can see. */
  marks?: HeldMarks;
}

/**
 * A sign that an upload's lock is held, for other processes on the same host, where the
 * leases live in one process's memory: `npm run sweep` beside a server without Redis. The
 * holder marks the upload when it takes the lock, until `ttlMs` later, renews the mark
 * every `ttlMs`/3 (as a Redis lease is renewed) and removes it on release; a holder that
 * died leaves a mark that lapses. tryLock treats a marked upload as held. A renewal still
 * in flight at the release can land after it: then the mark outlives the lock by one ttl
 * at most (the sweep takes the upload next time).
 */
export interface HeldMarks {
  mark(id: string, until: number): Promise<void>;
  unmark(id: string): Promise<void>;
  isMarked(id: string): Promise<boolean>;
}

export const lockKey = (id: string): string => `lock:${id}`;

export class UploadLocker implements Locker {
  private readonly current = new Map<string, Lease>();
  /** Refreshes of the marks of the locks held here (with `options.marks`). */
  private readonly marking = new Map<Lease, NodeJS.Timeout>();

  constructor(
    readonly leases: Leases,
    readonly options: UploadLockerOptions,
  ) {}

  newLock(id: string): Lock {
    return new UploadLock(this, id);
  }

  /** The lease of the request that holds upload `id` in this process. */
  leaseOf(id: string): Lease | undefined {
    return this.current.get(id);
  }

  /**
   * Whether this process still holds upload `id`'s lock, asked of the leases' authority
   * (Redis) when a lease can be lost: for a write that the fenced body cannot guard, such
   * as recording a multipart upload's id. No lease here: it does not.
   */
  async confirms(id: string): Promise<boolean> {
    const lease = this.current.get(id);
    if (!lease?.valid()) return false;
    return !this.leases.canLose || (await this.leases.holds(lease));
  }

  /** Takes the lock only if it is free, here and (with marks) in the other processes of this host, without asking anyone to release (the sweeper). */
  async tryLock(id: string): Promise<Lease | undefined> {
    const { marks, ttlMs } = this.options;
    if (marks && (await marks.isMarked(id))) return undefined;
    const lease = await this.leases.take(lockKey(id), ttlMs);
    if (lease) this.current.set(id, lease);
    return lease;
  }

  /** @internal */
  held(id: string, lease: Lease, requestRelease: RequestRelease): void {
    this.current.set(id, lease);
    this.leases.onReleaseRequest(lease.key, () => void requestRelease());
    const { marks, ttlMs } = this.options;
    if (marks) {
      const renew = () => void marks.mark(id, Date.now() + ttlMs);
      renew();
      const timer = setInterval(renew, Math.max(1, Math.floor(ttlMs / 3)));
      timer.unref();
      this.marking.set(lease, timer);
    }
  }

  async unlock(id: string, lease: Lease): Promise<void> {
    const marking = this.marking.get(lease);
    if (marking) {
      clearInterval(marking);
      this.marking.delete(lease);
      await this.options.marks?.unmark(id);
    }
    if (this.current.get(id) === lease) {
      this.current.delete(id);
      this.leases.onReleaseRequest(lease.key, undefined);
    }
    await lease.release();
  }
}

class UploadLock implements Lock {
  private lease?: Lease;

  constructor(
    private readonly locker: UploadLocker,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const { leases, options } = this.locker;
    const key = lockKey(this.id);
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      const lease = await leases.take(key, options.ttlMs);
      if (lease) {
        this.lease = lease;
        this.locker.held(this.id, lease, requestRelease);
        return;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw ERRORS.ERR_LOCK_TIMEOUT;
      await leases.askRelease(key);
      await leases.released(key, Math.min(options.pollMs, left), signal);
    }
  }

  async unlock(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await this.locker.unlock(this.id, lease);
  }
}
