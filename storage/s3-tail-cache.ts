/**
 * The tail objects this process wrote, kept in memory until the part they begin is
 * uploaded, so that part is not downloaded back from S3 (with one instance, or when the
 * same instance gets the next PATCHes): the tail then crosses the network once into S3
 * as a tail object and once inside its part. An entry is used only when S3 lists the
 * object with the same ETag (another instance's write under the same key is never
 * mistaken for ours). Bounded by `maxBytes` for the whole process: past it, the oldest
 * entries go, and their tails are downloaded as before.
 */
interface Entry {
  etag: string;
  /** The object's start in the upload (what its `x-amz-meta-tus-start` says). */
  start: number;
  bytes: Buffer;
}

export class TailCache {
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  set(key: string, etag: string | undefined, start: number, bytes: Buffer): void {
    this.delete(key);
    if (!etag || bytes.length > this.maxBytes) return;
    this.entries.set(key, { etag, start, bytes });
    this.total += bytes.length;
    for (const [oldest, entry] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.total -= entry.bytes.length;
    }
  }

  /** What this process wrote as `key`, if it is the object S3 lists with `etag`. */
  get(key: string, etag: string | undefined): { start: number; bytes: Buffer } | undefined {
    const entry = this.entries.get(key);
    return entry && etag !== undefined && entry.etag === etag ? entry : undefined;
  }

  delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.total -= entry.bytes.length;
  }

  get size(): number {
    return this.total;
  }
}
