/**
 * What S3 listed for an upload (its parts and its tail objects), reused while this process
 * holds the upload's lock: @tus/server and the gated store ask for the upload several times
 * in one PATCH (three getUpload, then the write), and under the lock nobody else changes
 * it (a holder that lost its lock is fenced), so one listing serves them all. An entry is
 * used only under the very lease it was listed under, while that lease is valid; every
 * write, declaration and removal drops it. Without a lease (no locker given, or a request
 * that holds no lock) nothing is reused.
 */
import type { Part } from '@aws-sdk/client-s3';
import type { TailObject } from './s3-tail.ts';

/** The lease this process holds on an upload's lock, if any (UploadLocker.leaseOf). */
export type HeldLease = (id: string) => { valid(): boolean } | undefined;

export interface Listing {
  parts: Part[];
  objects: TailObject[];
  /** The size of the object `<id>`, when it exists (the upload is complete). */
  whole: number | undefined;
}

export class ListingMemo {
  private readonly entries = new Map<string, { lease: object; listing: Listing }>();

  constructor(
    private readonly heldLease: HeldLease | undefined,
    /** Entries left by requests that ended without a write (a HEAD, a refused PATCH) are dropped oldest first past this. */
    private readonly maxEntries: number,
  ) {}

  get(id: string): Listing | undefined {
    const lease = this.heldLease?.(id);
    const entry = this.entries.get(id);
    if (!lease || !entry || entry.lease !== lease || !lease.valid()) return undefined;
    return entry.listing;
  }

  set(id: string, listing: Listing): void {
    const lease = this.heldLease?.(id);
    if (!lease) return;
    this.entries.delete(id);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(id, { lease, listing });
  }

  forget(id: string): void {
    this.entries.delete(id);
  }
}
