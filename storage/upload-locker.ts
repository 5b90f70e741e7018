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
}

export const lockKey = (id: string): string => `lock:${id}`;

export class UploadLocker implements Locker {
  private readonly current = new Map<string, Lease>();

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

  /** Takes the lock only if it is free, without asking anyone to release (the sweeper). */
  async tryLock(id: string): Promise<Lease | undefined> {
    const lease = await this.leases.take(lockKey(id), this.options.ttlMs);
    if (lease) this.current.set(id, lease);
    return lease;
  }

  /** @internal */
  held(id: string, lease: Lease, requestRelease: RequestRelease): void {
    this.current.set(id, lease);
    this.leases.onReleaseRequest(lease.key, () => void requestRelease());
  }

  async unlock(id: string, lease: Lease): Promise<void> {
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
